"""Explorers that stay interactive on the static site, with no kernel.

They are anywidgets: the front-end code (``js/*.js``) travels inside the saved widget state,
so the built page runs it in the browser. Every number the page can show is computed here, in
Python, by :mod:`cnn_course.arith` and friends, and shipped as a table: the JavaScript only
looks values up and draws, so there is one source of truth for the formulas.
"""

from __future__ import annotations

from pathlib import Path

import anywidget
import traitlets

from cnn_course.arith import conv_output_size, conv_params

_JS = Path(__file__).parent / "js"

CONV_RANGES = {  # control: (lowest, highest)
    "n": (3, 16), "kernel_size": (1, 7), "padding": (0, 4), "stride": (1, 4),
    "dilation": (1, 3), "in_channels": (1, 8), "out_channels": (1, 64),
}


def conv_output_table() -> dict[str, int | str]:
    """Output size, or the reason there is none, for every combination of the controls.

    Keys are ``"n,k,p,s,d"``; values are the size or ``arith``'s own error message.
    """
    table: dict[str, int | str] = {}
    (n0, n1), (k0, k1), (p0, p1), (s0, s1), (d0, d1) = (
        CONV_RANGES[name] for name in ("n", "kernel_size", "padding", "stride", "dilation"))
    for n in range(n0, n1 + 1):
        for k in range(k0, k1 + 1):
            for p in range(p0, p1 + 1):
                for s in range(s0, s1 + 1):
                    for d in range(d0, d1 + 1):
                        try:
                            value: int | str = conv_output_size(n, k, p, s, d)
                        except ValueError as problem:
                            value = str(problem)
                        table[f"{n},{k},{p},{s},{d}"] = value
    return table


def conv_params_table() -> dict[str, int]:
    """Parameter count for every ``"c_in,c_out,k"`` the controls allow."""
    (c0, c1), (o0, o1), (k0, k1) = (CONV_RANGES[name] for name in
                                    ("in_channels", "out_channels", "kernel_size"))
    return {f"{c},{o},{k}": conv_params(c, o, k)
            for c in range(c0, c1 + 1) for o in range(o0, o1 + 1) for k in range(k0, k1 + 1)}


class ConvArithmeticExplorer(anywidget.AnyWidget):
    """Output size, parameter count and kernel placement of a Conv2d, live in any browser."""

    _esm = _JS / "conv_arithmetic.js"
    _css = _JS / "explorers.css"
    ranges = traitlets.Dict(CONV_RANGES).tag(sync=True)
    output_sizes = traitlets.Dict().tag(sync=True)
    param_counts = traitlets.Dict().tag(sync=True)
    values = traitlets.Dict({"n": 7, "kernel_size": 3, "padding": 0, "stride": 1,
                             "dilation": 1, "in_channels": 1, "out_channels": 1,
                             "out_row": 0, "out_col": 0}).tag(sync=True)

    def __init__(self, **kwargs) -> None:
        super().__init__(output_sizes=conv_output_table(), param_counts=conv_params_table(),
                         **kwargs)
