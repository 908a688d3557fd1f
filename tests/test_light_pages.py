"""book/_ext/light_pages.py: what it does to the built pages and figures, on small examples."""

import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "book" / "_ext"))
import light_pages  # noqa: E402


def _pixels(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGBA"), dtype=np.int64)


def _plot_png(path: Path) -> np.ndarray:
    """A line plot as matplotlib saves it: RGBA, opaque, antialiased lines on white."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4, 3))
    x = np.linspace(0, 6, 200)
    for shift in range(4):
        ax.plot(x, np.sin(x + shift))
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return _pixels(path)


def test_a_plot_keeps_its_main_colours_exactly_and_gets_smaller(tmp_path):
    path = tmp_path / "plot.png"
    before, size = _plot_png(path), path.stat().st_size
    light_pages.smaller_png(path)
    after = _pixels(path)
    assert Image.open(path).mode == "P" and path.stat().st_size < size
    changed = (before != after).any(axis=2)
    assert changed.mean() <= 1 - light_pages.PALETTE_COVER
    colours, counts = np.unique(before[..., :3].reshape(-1, 3), axis=0, return_counts=True)
    for colour in colours[np.argsort(-counts)[:20]]:   # the dominant colours are untouched
        where = (before[..., :3] == colour).all(axis=2)
        assert (after[where][:, :3] == colour).all()


def test_a_photo_keeps_every_pixel(tmp_path):
    rng = np.random.default_rng(0)
    photo = rng.integers(0, 256, size=(64, 64, 3), dtype=np.uint8)
    path = tmp_path / "photo.png"
    Image.fromarray(photo).convert("RGBA").save(path)
    light_pages.smaller_png(path)
    assert (_pixels(path)[..., :3] == photo).all()


def test_transparency_is_kept(tmp_path):
    image = np.zeros((8, 8, 4), dtype=np.uint8)
    image[..., 3] = 128
    path = tmp_path / "clear.png"
    Image.fromarray(image).save(path)
    light_pages.smaller_png(path)
    assert (_pixels(path)[..., 3] == 128).all()


@pytest.mark.parametrize("prefix", ["../", ""])
def test_the_icon_script_tag_is_removed_and_nothing_else(prefix):
    page = (f'<link rel="stylesheet" href="{prefix}_static/styles/theme.css" />\n'
            f'  <script defer src="{prefix}_static/scripts/fontawesome.js?digest=abc"></script>\n'
            f'  <script defer src="{prefix}_static/scripts/bootstrap.js?digest=abc"></script>\n')
    lighter = light_pages.ICON_SCRIPT.sub("", page)
    assert "fontawesome" not in lighter
    assert lighter == page.replace(
        f'  <script defer src="{prefix}_static/scripts/fontawesome.js?digest=abc"></script>\n', "")
