"""Keep every page light: drop the theme's 1.5 MB icon script, and store figures compactly.

pydata-sphinx-theme loads Font Awesome twice: as a web font through its style sheet, which
draws every icon the theme uses, and as ``scripts/fontawesome.js``, which only swaps those icons
for inline SVG (for projects that add custom icons; this one does not). The script is a third of
a plain page's weight, so this extension removes its ``<script>`` tag from every page after the
build. The icons still show, from the font (checked in the browser tests).

Matplotlib saves every figure as RGBA with full 8-bit channels. Each PNG in ``_images/`` is
re-saved without the alpha channel when it is fully opaque, as a palette image when it has at
most 256 colours, and with zlib's best effort: the same pixels, about an eighth fewer bytes.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

ICON_SCRIPT = re.compile(r'[ \t]*<script defer src="[^"]*_static/scripts/fontawesome\.js[^"]*">'
                         r"</script>\n?")


def _strip_icon_script(app, exception) -> None:
    if exception is not None or app.builder.format != "html":
        return
    for page in Path(app.outdir).rglob("*.html"):
        html = page.read_text(encoding="utf-8")
        lighter = ICON_SCRIPT.sub("", html)
        if lighter != html:
            page.write_text(lighter, encoding="utf-8")


def smaller_png(path: Path) -> None:
    """Re-save the PNG at ``path`` losslessly in the smallest of the simple forms, if smaller."""
    from PIL import Image

    with Image.open(path) as image:
        image.load()
    if image.mode not in ("RGB", "RGBA"):
        return
    if image.mode == "RGBA" and image.getchannel("A").getextrema() == (255, 255):
        image = image.convert("RGB")
    colours = image.getcolors(maxcolors=256)
    if colours is not None and image.mode == "RGB":
        image = image.quantize(len(colours), method=Image.Quantize.MEDIANCUT, dither=0)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    if buffer.tell() < path.stat().st_size:
        path.write_bytes(buffer.getvalue())


def _compress_figures(app, exception) -> None:
    if exception is None and app.builder.format == "html":
        for path in (Path(app.outdir) / "_images").glob("*.png"):
            smaller_png(path)


def setup(app):
    app.connect("build-finished", _strip_icon_script)
    app.connect("build-finished", _compress_figures)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
