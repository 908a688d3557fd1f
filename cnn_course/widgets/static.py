"""Explorers that stay interactive on the static site, with no kernel.

They are anywidgets: the front-end code (``js/*.js``) travels inside the saved widget state,
so the built page runs it in the browser. Every number the page can show is computed here, in
Python, by :mod:`cnn_course.arith` and friends, and shipped as a table: the JavaScript only
looks values up and draws, so there is one source of truth for the formulas.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import traitlets

from cnn_course.arith import conv_output_size, conv_params
from cnn_course.messages import N_, tr
from cnn_course.widgets.frontend import CSS, Explorer, esm, in_every_language

if TYPE_CHECKING:
    import torch


CONV_RANGES = {  # control: (lowest, highest)
    "n": (3, 16), "kernel_size": (1, 7), "padding": (0, 4), "stride": (1, 4),
    "dilation": (1, 3), "in_channels": (1, 8), "out_channels": (1, 64),
}


def output_size_or_reason(n: int, k: int, p: int, s: int, d: int) -> int | str:
    """``conv_output_size(n, k, p, s, d)``, or its error message when there is no output."""
    try:
        return conv_output_size(n, k, p, s, d)
    except ValueError as problem:
        return str(problem)


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
                        table[f"{n},{k},{p},{s},{d}"] = output_size_or_reason(n, k, p, s, d)
    return table


def conv_params_table() -> dict[str, int]:
    """Parameter count for every ``"c_in,c_out,k"`` the controls allow."""
    (c0, c1), (o0, o1), (k0, k1) = (CONV_RANGES[name] for name in
                                    ("in_channels", "out_channels", "kernel_size"))
    return {f"{c},{o},{k}": conv_params(c, o, k)
            for c in range(c0, c1 + 1) for o in range(o0, o1 + 1) for k in range(k0, k1 + 1)}


class ConvArithmeticExplorer(Explorer):
    """Output size, parameter count and kernel placement of a Conv2d, live in any browser."""

    _esm = esm("conv_arithmetic.js")
    _css = CSS
    ranges = traitlets.Dict(CONV_RANGES).tag(sync=True)
    output_sizes = traitlets.Dict().tag(sync=True)
    param_counts = traitlets.Dict().tag(sync=True)
    values = traitlets.Dict({"n": 7, "kernel_size": 3, "padding": 0, "stride": 1,
                             "dilation": 1, "in_channels": 1, "out_channels": 1,
                             "out_row": 0, "out_col": 0}).tag(sync=True)

    reasons = traitlets.Dict().tag(sync=True)   # language -> key -> why there is no output

    def __init__(self, **kwargs) -> None:
        reasons = in_every_language(lambda: {key: reason for key, reason
                                             in conv_output_table().items()
                                             if isinstance(reason, str)})
        super().__init__(output_sizes=conv_output_table(), param_counts=conv_params_table(),
                         reasons=reasons, **kwargs)


# ---- pooling --------------------------------------------------------------------------------

POOL_SIZES, POOL_STRIDES = (1, 2, 3, 4), (1, 2, 3, 4)


def pooling_tables(feature_map) -> dict[str, dict]:
    """For every kernel, stride and mode: the output size (or why there is none) and the pooled
    values of ``feature_map`` [H, W], computed by ``F.max_pool2d`` / ``F.avg_pool2d``."""
    import torch.nn.functional as F

    x = feature_map[None, None].float()
    tables: dict[str, dict] = {}
    for k in POOL_SIZES:
        for s in POOL_STRIDES:
            try:
                size = conv_output_size(tuple(feature_map.shape), k, 0, s)
            except ValueError as problem:
                for mode in ("max", "avg"):
                    tables[f"{mode},{k},{s}"] = {"problem": str(problem)}
                continue
            for mode, pool in (("max", F.max_pool2d), ("avg", F.avg_pool2d)):
                out = pool(x, k, stride=s)[0, 0]
                assert tuple(out.shape) == size
                tables[f"{mode},{k},{s}"] = {"size": list(size),
                                             "values": out.round(decimals=2).tolist()}
    return tables


class PoolingExplorer(Explorer):
    """Max or average pooling of a real feature map, with the window of one output cell."""

    _esm = esm("pooling.js")
    _css = CSS
    feature_map = traitlets.List().tag(sync=True)
    tables = traitlets.Dict().tag(sync=True)
    values = traitlets.Dict({"mode": "max", "kernel_size": 2, "stride": 2, "out_row": 0,
                             "out_col": 0}).tag(sync=True)
    reasons = traitlets.Dict().tag(sync=True)   # language -> key -> why there is no output

    def __init__(self, size: int = 12, **kwargs) -> None:
        import torch.nn.functional as F

        from cnn_course.images import sample_photo
        from cnn_course.reference.conv import vertical_edge_kernel

        photo = sample_photo(4 * size)[None]                   # [1, 1, 4size, 4size]
        edges = F.conv2d(photo, vertical_edge_kernel()[None, None], padding=1)
        feature_map = F.avg_pool2d(edges.abs(), 4)[0, 0]        # [size, size], a real edge map
        feature_map = (feature_map / feature_map.max()).round(decimals=2)
        reasons = in_every_language(lambda: {key: entry["problem"] for key, entry
                                             in pooling_tables(feature_map).items()
                                             if "problem" in entry})
        super().__init__(feature_map=feature_map.tolist(), tables=pooling_tables(feature_map),
                         reasons=reasons, **kwargs)



# ---- optimizer race -------------------------------------------------------------------------

# The surfaces and the optimizers are Chapter 6's own (cnn_course.lessons.optimizers).
RACE_LEARNING_RATES = (0.001, 0.003, 0.01, 0.03, 0.1, 0.3)
RACE_MOMENTA = (0.0, 0.5, 0.9, 0.95)


def race_trajectory(surface: str, make_optimizer, steps: int = 80
                    ) -> tuple[list[list[float]], int | None]:
    """Points visited by ``torch.optim`` on one of Chapter 6's surfaces (rounded for the page),
    and the step it diverged at (``None`` if it did not)."""
    from cnn_course.lessons.optimizers import SURFACES, run_on_surface

    trajectory = run_on_surface(SURFACES[surface], make_optimizer, steps)
    path = [[round(x, 4), round(y, 4)] for x, y in trajectory.points.tolist()]
    return path, trajectory.diverged_at


def race_tables(steps: int = 80, grid: int = 48) -> dict:
    """Every trajectory the race can show, and a coarse grid of each surface for the contours."""
    import math

    from cnn_course.lessons.optimizers import SURFACES, torch_optimizers

    paths: dict[str, dict] = {}  # keys: "surface,learning-rate index,momentum index,name"
    for surface in SURFACES:
        for i, lr in enumerate(RACE_LEARNING_RATES):
            for j, momentum in enumerate(RACE_MOMENTA):
                for name, make in torch_optimizers(lr, momentum).items():
                    if name in ("SGD", "Adagrad", "RMSprop", "Adam") and j != 0:
                        continue  # these do not use the momentum slider: stored once
                    path, diverged = race_trajectory(surface, make, steps)
                    paths[f"{surface},{i},{j},{name}"] = {"path": path, "diverged": diverged}
    grids = {}
    for name, surface in SURFACES.items():
        (x0, x1), (y0, y1) = surface.x_range, surface.y_range
        lowest = surface(*surface.minimum)  # the lowest value in the plotted area
        rows = []
        for i in range(grid):
            y = y1 - (y1 - y0) * (i + 0.5) / grid
            rows.append([round(math.log1p(max(0.0, surface(x0 + (x1 - x0) * (j + 0.5) / grid, y)
                                              - lowest)), 3) for j in range(grid)])
        grids[name] = {"values": rows, "x": [x0, x1], "y": [y0, y1]}
    return {"paths": paths, "grids": grids}


class OptimizerRace(Explorer):
    """Trajectories of SGD, momentum, Nesterov, Adagrad, RMSprop and Adam on 2-D surfaces,
    precomputed with ``torch.optim`` for every learning rate and momentum on the sliders."""

    _esm = esm("optimizer_race.js")
    _css = CSS
    learning_rates = traitlets.List(list(RACE_LEARNING_RATES)).tag(sync=True)
    momenta = traitlets.List(list(RACE_MOMENTA)).tag(sync=True)
    surfaces = traitlets.List().tag(sync=True)
    tables = traitlets.Dict().tag(sync=True)
    values = traitlets.Dict({"surface": "ravine", "lr": 0.03, "momentum": 0.9}).tag(sync=True)

    def __init__(self, steps: int = 80, **kwargs) -> None:
        from cnn_course.lessons.optimizers import SURFACES

        super().__init__(surfaces=list(SURFACES), tables=race_tables(steps), **kwargs)


# ---- activation functions -------------------------------------------------------------------

ACTIVATION_NAMES = ("ReLU", "Leaky ReLU", "sigmoid", "tanh", "GELU")
ACTIVATION_RANGES = (2.0, 3.0, 5.0, 8.0, 10.0)  # the input range is [-r, r]
LEAKY_SLOPES = (0.01, 0.05, 0.1, 0.2, 0.3, 0.5)
ACTIVATION_POINTS = 101  # samples per curve, evenly spaced, x = 0 among them
ACTIVATION_FLAT = 0.01   # a derivative below this in size counts as flat (saturated)
ACTIVATION_FORMULAS = {  # name: (f(x), f'(x)), as plain text; α is the Leaky ReLU slope
    "ReLU": ("max(0, x)", N_("1 if x > 0, else 0")),
    "Leaky ReLU": (N_("x if x > 0, else α·x"), N_("1 if x > 0, else α")),
    "sigmoid": ("σ(x) = 1 / (1 + e^(−x))", "σ(x)·(1 − σ(x))"),
    "tanh": ("(e^x − e^(−x)) / (e^x + e^(−x))", "1 − tanh²(x)"),
    "GELU": ("x·Φ(x)", "Φ(x) + x·φ(x)"),
}


def activation_grid(half_width: float) -> list[float]:
    """The sampled inputs on ``[-half_width, half_width]``, rounded to 4 decimals."""
    steps = ACTIVATION_POINTS - 1
    return [round(half_width * (2 * i - steps) / steps, 4) for i in range(ACTIVATION_POINTS)]


def _activation_exact(name: str, x: list[float], slope: float
                      ) -> tuple[torch.Tensor, torch.Tensor]:
    """f(x) and f'(x) (autograd) in float64, unrounded: the notebook explorer's functions and
    derivative, on this explorer's grid."""
    import torch

    from cnn_course.widgets.activation_explorer import ACTIVATIONS, function_and_derivative

    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; expected one of {list(ACTIVATIONS)}")
    return function_and_derivative(ACTIVATIONS[name], torch.tensor(x, dtype=torch.float64),
                                   slope)


def activation_values(name: str, x: list[float], slope: float = 0.01
                      ) -> tuple[list[float], list[float]]:
    """f(x) by ``torch.nn.functional`` and f'(x) by autograd, in float64, rounded to 4 decimals."""
    y, dy = _activation_exact(name, x, slope)
    return ([round(v, 4) for v in y.tolist()], [round(v, 4) for v in dy.tolist()])


def _activation_note(name: str, slope: float, flat: float, x: list[float],
                     y: torch.Tensor) -> str:
    """One line on dying or saturation for the curve ``y`` = f(``x``)."""
    share = f"{flat:.0%}"
    if name == "ReLU":
        return tr("f'(x) = 0 for every x ≤ 0 ({share} of this range): a unit whose input stays "
                  "negative gets no gradient and can die.", share=share)
    if name == "Leaky ReLU":
        return tr("f'(x) = α = {slope:g} for x ≤ 0, never 0: a unit on the negative side still "
                  "gets gradient, so it cannot die.", slope=slope)
    if name in ("sigmoid", "tanh"):
        return tr("Saturates: |f'(x)| < {limit:g} on {share} of this range, where almost no "
                  "gradient passes.", limit=ACTIVATION_FLAT, share=share)
    lowest = int(y.argmin())
    return tr("Smooth, like a rounded ReLU: lowest at x = {x:g} (f = {f:.4f}), where f'(x) "
              "changes sign; |f'(x)| < {limit:g} on {share} of this range.",
              x=x[lowest], f=y[lowest].item(), limit=ACTIVATION_FLAT, share=share)


def activation_tables() -> dict:
    """Every curve the activation explorer can show.

    ``curves["name,slope index,range index"]`` holds ``f`` and ``df`` (one value per point of
    ``x[range index]``), the share of points that are flat (a percentage, as shown) and a
    one-line note. Only Leaky ReLU has more than one slope index.
    """
    xs = [activation_grid(r) for r in ACTIVATION_RANGES]
    curves: dict[str, dict] = {}
    for name in ACTIVATION_NAMES:
        slopes = LEAKY_SLOPES if name == "Leaky ReLU" else LEAKY_SLOPES[:1]
        for j, slope in enumerate(slopes):
            for i, x in enumerate(xs):
                y, dy = _activation_exact(name, x, slope)
                flat = (dy.abs() < ACTIVATION_FLAT).double().mean().item()
                curves[f"{name},{j},{i}"] = {"f": [round(v, 4) for v in y.tolist()],
                                             "df": [round(v, 4) for v in dy.tolist()],
                                             "flat": f"{flat:.0%}",
                                             "note": _activation_note(name, slope, flat, x, y)}
    return {"x": xs, "curves": curves}


class ActivationExplorer(Explorer):
    """An activation function and its derivative over a chosen range, with the value and
    derivative at one point; every number precomputed with PyTorch (autograd for f')."""

    _esm = esm("activations.js")
    _css = CSS
    names = traitlets.List(list(ACTIVATION_NAMES)).tag(sync=True)
    ranges = traitlets.List(list(ACTIVATION_RANGES)).tag(sync=True)
    slopes = traitlets.List(list(LEAKY_SLOPES)).tag(sync=True)
    formulas = traitlets.Dict({k: list(v) for k, v in ACTIVATION_FORMULAS.items()}).tag(sync=True)
    # The words of each translated language (the page is executed once, in English):
    translated_formulas = traitlets.Dict().tag(sync=True)   # language -> name -> [f, f']
    notes = traitlets.Dict().tag(sync=True)                 # language -> curve key -> note
    flat_below = traitlets.Float(ACTIVATION_FLAT).tag(sync=True)
    tables = traitlets.Dict().tag(sync=True)
    values = traitlets.Dict({"function": "ReLU", "range": 5.0, "slope": 0.1,
                             "point": 75}).tag(sync=True)

    def __init__(self, **kwargs) -> None:
        formulas = in_every_language(lambda: {name: [tr(f), tr(df)] for name, (f, df)
                                              in ACTIVATION_FORMULAS.items()})
        notes = in_every_language(lambda: {key: curve["note"] for key, curve
                                           in activation_tables()["curves"].items()})
        super().__init__(tables=activation_tables(), translated_formulas=formulas, notes=notes,
                         **kwargs)
