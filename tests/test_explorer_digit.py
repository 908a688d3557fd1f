"""The draw-a-digit explorer in Chromium, checked against PyTorch.

Harness tests (``browser``) show a briefly trained LeNet-5 through ``widget_harness``, the way the
site draws saved widgets. Site tests (``site`` and ``browser``) open Chapter 7's built page and
check the network it carries.

The tests reach the page's own forward pass and preprocessing through the explorer's root
element: ``document.querySelector(".digit-explorer")._lenet`` holds ``forward(input [1][32][32])``
(``lenetForward`` with that explorer's weights), ``preprocess(ink rows)`` and the receptive-field
table. Nothing is put on ``window``.
"""

from __future__ import annotations

import json
import os
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from widget_harness import StaticServer, WidgetPage, launch_chromium

from cnn_course.data import load_mnist, mnist_tensors
from cnn_course.models import LeNet5
from cnn_course.widgets.digit_explorer import (
    DigitExplorer,
    centre_digit,
    import_weights,
    preprocess_drawing,
)

ROOT = Path(__file__).resolve().parent.parent
SCREENSHOTS = ROOT / "_build" / "screenshots"
SITE = Path(os.environ.get("CNN_COURSE_SITE", ROOT / "_build" / "html"))
EXPLORER = ".digit-explorer"
LOGITS_TOLERANCE = 1e-4      # largest |logit difference| between JavaScript and PyTorch
PREPROCESS_TOLERANCE = 1e-5  # largest |input difference| between the two preprocessings
# sphinx-thebe declares its configuration twice on every page of the site; not the explorer's.
ALLOWED_PAGE_ERRORS = ("Identifier 'THEBE_JS_URL' has already been declared",)
#: A "7" across the pad, as fractions of its width and height.
SEVEN = [(0.2, 0.2), (0.78, 0.2), (0.62, 0.48), (0.45, 0.82)]

pytestmark = pytest.mark.browser

_FORWARD = """([inputs, withStages]) => {
  const api = document.querySelector(".digit-explorer")._lenet;
  const plain = (maps) => maps.map((map) => map.map((row) => Array.from(row)));
  return JSON.parse(inputs).map((x) => {
    const r = api.forward([x]);
    const out = { logits: Array.from(r.logits), probabilities: Array.from(r.probabilities) };
    if (withStages) for (const s of ["c1", "s2", "c3", "s4"]) out[s] = plain(r[s]);
    return out;
  });
}"""
_PAD_INK = """() => {
  const pad = document.querySelector(".digit-explorer canvas.dx-pad");
  const data = pad.getContext("2d").getImageData(0, 0, pad.width, pad.height).data;
  return { size: pad.width, alpha: Array.from(data.filter((_, k) => k % 4 === 3)) };
}"""
_C1_PIXELS = """() => Array.from(document.querySelectorAll(".digit-explorer .dx-stage-c1 canvas"),
  (c) => Array.from(c.getContext("2d").getImageData(0, 0, c.width, c.height).data))"""
_TWO_FRAMES = "() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))"


# ---- fixtures -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def model() -> LeNet5:
    """LeNet-5 for 32x32 digits, trained for one epoch on 8,000 digits (a few seconds)."""
    from cnn_course.lessons.lenet import train_lenet5

    x_train, y_train = mnist_tensors(train=True, pad_to_32=True)
    x_test, y_test = mnist_tensors(train=False, pad_to_32=True)
    trained, _ = train_lenet5(x_train[:8000], y_train[:8000], x_test[:1000], y_test[:1000],
                              seed=0, epochs=1, model_fn=LeNet5, log=None)
    return trained.eval()


@pytest.fixture(scope="module")
def mnist_test() -> tuple[torch.Tensor, torch.Tensor]:
    return mnist_tensors(train=False, pad_to_32=True)


@pytest.fixture(scope="module")
def explorer(model) -> DigitExplorer:
    return DigitExplorer(model, load_mnist(train=False))


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = launch_chromium(playwright)
        yield chromium
        chromium.close()


@contextmanager
def opened(browser, explorer, viewport=(1280, 900)):
    """The explorer on a harness page; no JavaScript error may happen meanwhile."""
    harness = WidgetPage(browser, [explorer], viewport=viewport)
    with harness as page:
        page.wait_for_selector(f"{EXPLORER} canvas.dx-pad")
        yield page
        assert harness.errors == [], f"JavaScript errors: {harness.errors}"


# ---- helpers --------------------------------------------------------------------------------

def js_forward(page, x: torch.Tensor, stages: bool = False) -> list[dict]:
    """The page's forward pass on inputs [N, 1, 32, 32]."""
    return page.evaluate(_FORWARD, [json.dumps(x[:, 0].tolist()), stages])


def assert_forward_matches(page, model, x: torch.Tensor, what: str) -> None:
    shown = js_forward(page, x)
    logits = torch.tensor([s["logits"] for s in shown], dtype=torch.float64)
    with torch.no_grad():
        expected = model(x).double()
    worst = (logits - expected).abs().max().item()
    assert worst <= LOGITS_TOLERANCE, (
        f"{what}: JavaScript and PyTorch logits differ by up to {worst:.2e} "
        f"(tolerance {LOGITS_TOLERANCE:g})")
    differ = torch.nonzero(logits.argmax(1) != expected.argmax(1)).flatten().tolist()
    assert differ == [], f"{what}: the predicted class differs for inputs {differ}"


def to_middle(locator) -> None:
    """Scroll ``locator`` to the middle of the window (clear of a sticky page header)."""
    locator.evaluate("(node) => node.scrollIntoView({ block: 'center', inline: 'center' })")


def draw(page, points, steps: int = 12) -> None:
    """Draw one stroke with the mouse through ``points`` (fractions of the pad's size)."""
    pad = page.locator(f"{EXPLORER} canvas.dx-pad")
    to_middle(pad)
    box = pad.bounding_box()
    where = [(box["x"] + fx * box["width"], box["y"] + fy * box["height"]) for fx, fy in points]
    page.mouse.move(*where[0])
    page.mouse.down()
    for (x0, y0), (x1, y1) in zip(where, where[1:], strict=False):
        for k in range(1, steps + 1):
            page.mouse.move(x0 + (x1 - x0) * k / steps, y0 + (y1 - y0) * k / steps)
    page.mouse.up()
    page.evaluate(_TWO_FRAMES)


def prediction(page) -> tuple[str, str]:
    """(the predicted digit, the readout's text); the digit is "" when there is none."""
    digit = page.locator(f"{EXPLORER} [data-result=prediction]").text_content() or ""
    return digit, page.locator(f"{EXPLORER} .dx-readout").inner_text()


def pytorch_reads(model, x: torch.Tensor) -> tuple[int, float]:
    with torch.no_grad():
        probabilities = F.softmax(model(x).double(), dim=1)[0]
    best = int(probabilities.argmax())
    return best, probabilities[best].item()


def receptive_field(model, stage: str, i: int, j: int) -> tuple[int, int, int, int]:
    """(first row, last row, first column, last column) of the input pixels that cell (i, j)
    of ``stage`` depends on: autograd through all-ones copies of the model's layers (same
    kernels, strides, padding; no ReLU, so no cell is dead)."""
    layers = []
    for name in ("c1", "s2", "c3", "s4"):
        layer = getattr(model, name)
        if isinstance(layer, nn.Conv2d):
            copy = nn.Conv2d(1, 1, layer.kernel_size, layer.stride, layer.padding, bias=False)
            nn.init.ones_(copy.weight)
            layers.append(copy.double())
        else:
            layers.append(nn.AvgPool2d(layer.kernel_size, layer.stride, layer.padding))
        if name == stage:
            break
    x = torch.zeros(1, 1, 32, 32, dtype=torch.float64, requires_grad=True)
    nn.Sequential(*layers)(x)[0, 0, i, j].backward()
    rows, cols = torch.nonzero(x.grad[0, 0]).T
    return int(rows.min()), int(rows.max()), int(cols.min()), int(cols.max())


def point_at_cell(page, stage: str, map_index: int, i: int, j: int) -> None:
    tile = page.locator(f"{EXPLORER} .dx-stage-{stage} .dx-map").nth(map_index)
    to_middle(tile)
    box = tile.bounding_box()
    size = page.evaluate("(c) => c.width", tile.locator("canvas").element_handle())
    page.mouse.move(box["x"] + (j + 0.5) * box["width"] / size,
                    box["y"] + (i + 0.5) * box["height"] / size)


def shown_field(page) -> dict:
    """The receptive-field rectangle on the input view: its attributes (input pixels) and
    where it sits on the screen relative to the 32x32 input picture."""
    return page.evaluate("""() => {
      const root = document.querySelector(".digit-explorer");
      const rect = root.querySelector("rect.dx-rf");
      const view = root.querySelector("canvas.dx-input").getBoundingClientRect();
      const box = rect.getBoundingClientRect();
      const cell = view.width / 32;
      return { visible: rect.getAttribute("visibility") === "visible",
        x: +rect.getAttribute("x"), y: +rect.getAttribute("y"),
        width: +rect.getAttribute("width"), height: +rect.getAttribute("height"),
        screen: [(box.left - view.left) / cell, (box.top - view.top) / cell,
                 box.width / cell, box.height / cell],
        text: root.querySelector(".dx-cell-readout").textContent };
    }""")


def assert_field(page, model, stage: str, i: int, j: int) -> None:
    top, bottom, left, right = receptive_field(model, stage, i, j)
    shown = shown_field(page)
    where = f"{stage} cell ({i}, {j})"
    assert shown["visible"], f"{where}: no receptive field shown"
    assert (shown["y"], shown["x"], shown["height"], shown["width"]) == (
        top, left, bottom - top + 1, right - left + 1), f"{where}: {shown}"
    # on screen: the outline's stroke straddles the edges, so allow a third of a pixel
    expected = [left, top, right - left + 1, bottom - top + 1]
    off = [abs(a - b) for a, b in zip(shown["screen"], expected, strict=True)]
    assert max(off) <= 0.34, (
        f"{where}: drawn at {shown['screen']} input pixels, expected {expected} (±0.34)")
    assert f"cell (row {i}, column {j})" in shown["text"], shown["text"]
    assert f"rows {top}–{bottom} and columns {left}–{right}" in shown["text"], shown["text"]


def synthetic_inks() -> dict[str, torch.Tensor]:
    """Varied ink images [H, W] in [0, 1], as a canvas's opacity would give them."""
    inks: dict[str, torch.Tensor] = {}
    generator = torch.Generator().manual_seed(0)
    rows, cols = torch.meshgrid(torch.arange(280.0), torch.arange(280.0), indexing="ij")

    ink = torch.zeros(280, 280)
    ink[40:240, 139:142] = 1.0
    inks["thin vertical stroke"] = ink

    distance = (rows - cols).abs() / 2 ** 0.5               # distance to the diagonal
    inks["thick diagonal, anti-aliased"] = (14 - distance).clamp(0, 1) * (rows > 30) * (rows < 250)

    ink = torch.zeros(280, 280)
    ink[5:8, 260:263] = torch.tensor([[0.2, 0.6, 0.2], [0.6, 1.0, 0.6], [0.2, 0.6, 0.2]])
    inks["small blob in a corner"] = ink

    radius = ((rows - 150) ** 2 + (cols - 120) ** 2).sqrt()
    inks["large ring"] = (9 - (radius - 100).abs()).clamp(0, 1)

    ink = torch.zeros(280, 280)
    ink[138:146, 20:260] = 1.0
    ink[137, 20:260] = ink[146, 20:260] = 0.4
    inks["wide dash"] = ink

    ink = torch.zeros(280, 280)
    ink[10:270, 100:104] = 1.0
    ink[10:270, 99] = ink[10:270, 104] = 0.3
    inks["tall narrow 1"] = ink

    ink = torch.zeros(100, 100)
    ink[0:10, :] = 1.0
    ink[10:100, 45:55] = 0.05
    inks["heavy bar over a faint stem (clamped)"] = ink

    ink = torch.zeros(200, 150)
    patch = torch.rand(60, 45, generator=generator)
    ink[120:180, 90:135] = patch * (patch > 0.7)
    inks["random grey blob, off-centre"] = ink

    ink = torch.zeros(30, 40)
    ink[17, 3] = 0.5
    inks["single pixel"] = ink

    ink = torch.zeros(120, 90)
    ink[20:24, 40:80] = 1.0
    for step in range(70):
        ink[24 + step, 75 - step // 2:79 - step // 2] = 1.0
    inks["a 7 on a non-square canvas"] = ink

    inks["ink touching every edge"] = torch.linspace(0.01, 1, 50 * 50).reshape(50, 50)

    ink = torch.zeros(280, 280)
    ink[100:112, 60:220] = 1.0
    ink[160:172, 60:220] = 1.0
    inks["two strokes (=)"] = ink

    quantized = {name: (ink * 255).round() / 255 for name, ink in inks.items()}
    return {name: ink.double() for name, ink in quantized.items()}


# ---- harness tests --------------------------------------------------------------------------

def test_forward_pass_matches_pytorch(browser, explorer, model, mnist_test):
    x_test, _ = mnist_test
    random_inputs = torch.randn(100, 1, 32, 32, generator=torch.Generator().manual_seed(0))
    with opened(browser, explorer) as page:
        assert_forward_matches(page, model, random_inputs, "100 random inputs")
        assert_forward_matches(page, model, x_test[:100], "100 MNIST test digits")
        # every stage the page shows, and the probabilities
        x = x_test[100:103]
        shown = js_forward(page, x, stages=True)
        with torch.no_grad():
            c1 = F.relu(model.c1(x))
            s2 = model.s2(c1)
            c3 = F.relu(model.c3(s2))
            s4 = model.s4(c3)
            probabilities = F.softmax(model(x).double(), dim=1)
        for name, expected in (("c1", c1), ("s2", s2), ("c3", c3), ("s4", s4)):
            got = torch.tensor([s[name] for s in shown], dtype=torch.float64)
            assert got.shape == expected.shape, name
            worst = (got - expected).abs().max().item()
            assert worst <= LOGITS_TOLERANCE, f"{name} differs by up to {worst:.2e}"
        got = torch.tensor([s["probabilities"] for s in shown], dtype=torch.float64)
        assert torch.allclose(got, probabilities, atol=1e-6), "softmax differs"


def test_preprocessing_matches_the_python_reference(browser, explorer):
    inks = synthetic_inks()
    clamped = centre_digit(inks["heavy bar over a faint stem (clamped)"])
    assert torch.nonzero(clamped)[:, 0].min() == 8  # the set really exercises the clamp
    with opened(browser, explorer) as page:
        shown = page.evaluate("(inks) => JSON.parse(inks).map((ink) => document.querySelector("
                              "'.digit-explorer')._lenet.preprocess(ink))",
                              json.dumps([ink.tolist() for ink in inks.values()]))
        for (name, ink), got in zip(inks.items(), shown, strict=True):
            expected = preprocess_drawing(ink)[0, 0].double()
            assert got is not None, f"{name}: the page found no ink"
            worst = (torch.tensor(got, dtype=torch.float64) - expected).abs().max().item()
            assert worst <= PREPROCESS_TOLERANCE, (
                f"{name}: JavaScript and Python inputs differ by up to {worst:.2e} "
                f"(tolerance {PREPROCESS_TOLERANCE:g})")
        empty = page.evaluate("() => document.querySelector('.digit-explorer')"
                              "._lenet.preprocess([[0, 0, 0], [0, 0, 0]])")
        assert empty is None, "a drawing without ink must give no input"


def test_a_drawn_seven_is_read_as_pytorch_reads_it(browser, explorer, model):
    with opened(browser, explorer) as page:
        assert prediction(page)[0] != "", "the first MNIST digit is shown at the start"
        sample_maps = page.evaluate(_C1_PIXELS)
        page.locator(EXPLORER).get_by_role("button", name="Clear").click()
        page.evaluate(_TWO_FRAMES)
        digit, text = prediction(page)
        assert digit == "" and "Draw a digit" in text, text
        blank = page.evaluate(_C1_PIXELS)
        assert all(not any(pixels) for pixels in blank), "cleared C1 maps must be empty"
        draw(page, SEVEN)
        page.wait_for_function("() => document.querySelector("
                               "'.digit-explorer [data-result=prediction]').textContent !== ''")
        digit, text = prediction(page)
        drawn_maps = page.evaluate(_C1_PIXELS)
        assert drawn_maps != blank and drawn_maps != sample_maps, "C1 maps did not change"
        # PyTorch on the same pixels, through the Python reference preprocessing
        pad = page.evaluate(_PAD_INK)
        ink = torch.tensor(pad["alpha"], dtype=torch.float64).reshape(pad["size"], -1) / 255
        best, probability = pytorch_reads(model, preprocess_drawing(ink))
        assert digit == str(best), f"the page reads {digit}, PyTorch {best}: {text}"
        assert f"LeNet-5 reads {best} (probability {probability:.2f})" in text, text
        predicted_rows = page.locator(f"{EXPLORER} .dx-bar-row.dx-predicted .dx-digit")
        assert predicted_rows.all_inner_texts() == [str(best)]
        point_at_cell(page, "c3", 3, 4, 4)
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.locator(EXPLORER).screenshot(path=str(SCREENSHOTS / "digit_explorer.png"))


def test_receptive_fields_follow_the_pointer_and_the_keyboard(browser, explorer, model):
    with opened(browser, explorer) as page:
        for stage, map_index, i, j in (("c1", 1, 3, 20), ("s2", 4, 13, 0), ("c3", 2, 2, 7),
                                       ("s4", 9, 4, 1)):
            point_at_cell(page, stage, map_index, i, j)
            assert_field(page, model, stage, i, j)
        assert page.locator(f"{EXPLORER} .dx-map[tabindex='0']").count() == 6 + 6 + 16 + 16
        point_at_cell(page, "c3", 0, 2, 7)
        tile = page.locator(f"{EXPLORER} .dx-stage-c3 .dx-map").nth(5)
        tile.focus()
        assert_field(page, model, "c3", 2, 7)           # focusing keeps the stage's cell
        for key in ("ArrowDown", "ArrowLeft", "ArrowLeft"):
            tile.press(key)
        assert_field(page, model, "c3", 3, 5)
        assert shown_field(page)["text"].startswith("C3 map 6,")
        for _ in range(12):
            tile.press("ArrowUp")                       # stops at the edge
        assert_field(page, model, "c3", 0, 5)
        mark = page.locator(f"{EXPLORER} .dx-stage-c3 .dx-map").nth(5).locator(".dx-mark")
        assert mark.is_visible(), "the selected cell is marked on its map"


def test_clear_empties_the_prediction(browser, explorer):
    with opened(browser, explorer) as page:
        draw(page, SEVEN)
        assert prediction(page)[0] != ""
        page.locator(EXPLORER).get_by_role("button", name="Clear").click()
        page.evaluate(_TWO_FRAMES)
        digit, text = prediction(page)
        assert digit == "" and "Draw a digit" in text, text
        values = page.locator(f"{EXPLORER} .dx-value").all_inner_texts()
        assert values == [""] * 10, values
        assert page.locator(f"{EXPLORER} .dx-predicted").count() == 0


def test_mnist_samples_are_read_as_pytorch_reads_them(browser, explorer, model, mnist_test):
    x_test, y_test = mnist_test
    with opened(browser, explorer) as page:
        for sample in explorer.samples:
            page.locator(f"{EXPLORER} button.dx-sample").nth(sample["label"]).click()
            page.evaluate(_TWO_FRAMES)
            index = sample["index"]
            assert int(y_test[index]) == sample["label"]
            best, probability = pytorch_reads(model, x_test[index:index + 1])
            digit, text = prediction(page)
            assert digit == str(best), f"digit {sample['label']}: page {digit}, PyTorch {best}"
            assert f"(probability {probability:.2f})" in text, text
            pressed = page.locator(f"{EXPLORER} button.dx-sample[aria-pressed=true]")
            assert pressed.all_inner_texts() == [str(sample["label"])]


def test_fits_a_phone_screen(browser, explorer):
    with opened(browser, explorer, viewport=(375, 800)) as page:
        draw(page, SEVEN)
        assert prediction(page)[0] != ""
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 375, f"the page is {width} px wide at a 375-px viewport"
        box = page.locator(EXPLORER).bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 375, box
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.locator(EXPLORER).screenshot(path=str(SCREENSHOTS / "digit_explorer_375.png"))


def test_accessible(browser, explorer):
    from axe_playwright_python.sync_playwright import Axe

    with opened(browser, explorer) as page:
        draw(page, SEVEN)
        results = Axe().run(page, context=EXPLORER).response
        severe = [(v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3])
                  for v in results["violations"] if v["impact"] in ("serious", "critical")]
        assert severe == [], f"serious or critical axe-core violations: {severe}"
        for canvas in page.locator(f"{EXPLORER} canvas").all():
            assert canvas.get_attribute("role") == "img" and canvas.get_attribute("aria-label")
        live = page.locator(f"{EXPLORER} [aria-live=polite]")
        assert live.count() == 2
        # the buttons work from the keyboard
        page.locator(f"{EXPLORER} button.dx-sample").nth(3).focus()
        page.keyboard.press("Enter")
        page.evaluate(_TWO_FRAMES)
        assert "labelled 3" in prediction(page)[1]


# ---- site tests: Chapter 7's built page -----------------------------------------------------

@pytest.fixture(scope="module")
def site_page(browser):
    page_file = SITE / "book" / "07_lenet5.html"
    if not page_file.exists():
        pytest.fail(f"no built page {page_file}: run `bash scripts/build-book.sh` first")
    server = StaticServer(SITE)
    errors: list[str] = []
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        page.goto(f"{server.url}/book/07_lenet5.html", wait_until="load")
        page.wait_for_selector(f"{EXPLORER} canvas.dx-pad", timeout=60_000)
        page.wait_for_function("() => document.documentElement.dataset.widgetsRendered"
                               " === 'true'", timeout=60_000)
        yield page
        errors = [e for e in errors if not any(a in e for a in ALLOWED_PAGE_ERRORS)]
        assert errors == [], f"JavaScript errors on the page: {errors}"
    finally:
        page.close()
        server.close()


@pytest.fixture(scope="module")
def site_model(site_page) -> LeNet5:
    """The network whose weights the built page carries, loaded into PyTorch."""
    text = site_page.evaluate("() => document.querySelector("
                              "'script[type=\"application/vnd.jupyter.widget-state+json\"]')"
                              ".textContent")
    models = json.loads(text)["state"]
    found = [m["state"]["lenet_weights"] for m in models.values()
             if "lenet_weights" in m.get("state", {})]
    assert len(found) == 1, f"expected one explorer with saved weights, found {len(found)}"
    return import_weights(found[0])


@pytest.mark.site
def test_site_explorer_runs_the_saved_network(site_page, site_model, mnist_test):
    x_test, _ = mnist_test
    random_inputs = torch.randn(100, 1, 32, 32, generator=torch.Generator().manual_seed(1))
    site_page.locator(EXPLORER).scroll_into_view_if_needed()
    assert_forward_matches(site_page, site_model, random_inputs, "site: 100 random inputs")
    assert_forward_matches(site_page, site_model, x_test[:100], "site: 100 MNIST test digits")


@pytest.mark.site
def test_site_explorer_reads_a_drawn_digit(site_page, site_model):
    site_page.locator(EXPLORER).get_by_role("button", name="Clear").click()
    site_page.evaluate(_TWO_FRAMES)
    assert prediction(site_page)[0] == ""
    draw(site_page, SEVEN)
    site_page.wait_for_function("() => document.querySelector("
                                "'.digit-explorer [data-result=prediction]').textContent !== ''")
    digit, text = prediction(site_page)
    pad = site_page.evaluate(_PAD_INK)
    ink = torch.tensor(pad["alpha"], dtype=torch.float64).reshape(pad["size"], -1) / 255
    best, _ = pytorch_reads(site_model, preprocess_drawing(ink))
    assert digit == str(best), f"the page reads {digit}, PyTorch {best}: {text}"
