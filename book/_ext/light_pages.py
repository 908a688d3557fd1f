"""Keep every page light: drop the theme's 1.5 MB icon script, and store figures compactly.

pydata-sphinx-theme loads Font Awesome twice: as a web font through its style sheet, which
draws every icon the theme uses, and as ``scripts/fontawesome.js``, which only swaps those icons
for inline SVG (for projects that add custom icons; this one does not). The script is a third of
a plain page's weight, so this extension removes its ``<script>`` tag from every page after the
build. The icons still show, from the font (checked in the browser tests).

Matplotlib saves every figure as RGBA with full 8-bit channels. Each PNG in ``_images/`` is
re-saved without the alpha channel when it is fully opaque and with zlib's best effort. A figure
whose 256 most common colours cover at least :data:`PALETTE_COVER` of its pixels (a line or
contour plot: a white background, a few line colours and their antialiasing shades) is stored
as a 256-colour palette image: those colours stay exact, and the few remaining pixels take the
nearest of them. Photos and heat maps spread over many more colours and keep every pixel.
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


PALETTE_COVER = 0.97


def palette_version(image):
    """``image`` (RGB) as a palette image of its 256 most common colours, or None when they
    cover less than :data:`PALETTE_COVER` of its pixels."""
    import numpy as np
    from PIL import Image

    pixels = np.asarray(image, dtype=np.int64)
    packed = (pixels[..., 0] << 16) | (pixels[..., 1] << 8) | pixels[..., 2]
    colours, inverse, counts = np.unique(packed.ravel(), return_inverse=True, return_counts=True)
    top = np.argsort(-counts, kind="stable")[:256]
    if counts[top].sum() < PALETTE_COVER * packed.size:
        return None
    rgb = np.stack([(colours >> shift) & 255 for shift in (16, 8, 0)], axis=1)
    # the palette entry nearest to every colour of the image (each top colour maps to itself)
    distance = ((rgb[:, None, :] - rgb[top][None, :, :]) ** 2).sum(axis=2)
    index = distance.argmin(axis=1).astype(np.uint8)[inverse].reshape(packed.shape)
    result = Image.fromarray(index, mode="P")
    result.putpalette(rgb[top].astype(np.uint8).ravel().tolist())
    return result


def smaller_png(path: Path) -> None:
    """Re-save the figure at ``path`` in the smallest of the forms above, if that is smaller."""
    from PIL import Image

    with Image.open(path) as image:
        image.load()
    if image.mode not in ("RGB", "RGBA"):
        return
    if image.mode == "RGBA" and image.getchannel("A").getextrema() == (255, 255):
        image = image.convert("RGB")
    if image.mode == "RGB":
        image = palette_version(image) or image
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
