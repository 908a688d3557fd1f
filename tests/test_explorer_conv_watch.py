"""The "watch a convolution" explorer in Chromium: the page computes the convolution itself, so
every map it computes is compared with ``F.conv2d`` on the same input and kernel.

Uses ``widget_harness`` (the site's renderer, without building the site).
"""

from __future__ import annotations

import json
import random
import re

import pytest
import torch
import torch.nn.functional as F

from cnn_course.arith import conv_output_size
from cnn_course.widgets.conv_explorer import preset_kernel
from cnn_course.widgets.conv_watch import (
    WATCH_KERNEL_SIZES,
    WATCH_KERNELS,
    WATCH_PATCH,
    WATCH_RANGES,
    ConvWatchExplorer,
)

pytestmark = pytest.mark.browser

SCREENSHOTS = "_build/screenshots"
N = WATCH_PATCH["size"]
TOLERANCE = 1e-5
EXPLORER = ".conv-watch"


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright
    from widget_harness import launch_chromium

    with sync_playwright() as playwright:
        chromium = launch_chromium(playwright)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def explorer():
    return ConvWatchExplorer()


class Explorer:
    """Drives one explorer on a harness page as a learner would, and reads what it shows."""

    def __init__(self, page, widget: ConvWatchExplorer) -> None:
        self.page, self.widget = page, widget
        self.root = page.locator(EXPLORER)

    def choose(self, name: str, value: str) -> None:
        self.root.locator(f'select[data-control="{name}"]').select_option(value)

    def type_into(self, locator, value: float) -> None:
        locator.fill(repr(value))
        locator.dispatch_event("change")

    def set(self, channels: int, k: int, p: int, s: int, d: int) -> None:
        """Choose the input and move the four sliders, each firing its event as a user's would."""
        self.root.evaluate("""(root, [channels, sliders]) => {
            const select = root.querySelector('select[data-control="channels"]');
            if (select.value !== channels) {
              select.value = channels;
              select.dispatchEvent(new Event('change', { bubbles: true }));
            }
            for (const [name, value] of Object.entries(sliders)) {
              const input = root.querySelector(`input[data-control="${name}"]`);
              if (input.value === value) continue;
              input.value = value;
              input.dispatchEvent(new Event('input', { bubbles: true }));
            }
          }""", [str(channels), {"kernel_size": str(k), "padding": str(p), "stride": str(s),
                                 "dilation": str(d)}])

    def snapshot(self) -> dict:
        """What the explorer shows about the output size, in one round trip."""
        return self.root.evaluate("""(root) => {
            const problem = root.querySelector('[data-result="problem"]');
            const size = root.querySelector('[data-result="size"]');
            return { problem: problem ? problem.innerText : null,
                     problemVisible: problem ? problem.offsetParent !== null : false,
                     output: root.dataset.output, outSize: root.dataset.outSize,
                     resultVisible: root.querySelector('.result').offsetParent !== null,
                     cells: root.querySelectorAll('svg.grid rect.cell-out').length,
                     size: size ? size.textContent : null };
          }""")

    def click(self, action: str) -> None:
        self.root.locator(f'button[data-action="{action}"]').click()

    def data(self, name: str) -> str:
        return self.root.get_attribute(f"data-{name}")

    def output(self) -> torch.Tensor | None:
        text = self.data("output")
        return torch.tensor(json.loads(text), dtype=torch.float64) if text else None

    def weights(self) -> torch.Tensor:
        return torch.tensor(json.loads(self.data("weights")), dtype=torch.float64)


def open_explorer(browser, widget, viewport=(1280, 900)):
    from widget_harness import WidgetPage

    return WidgetPage(browser, [widget], viewport=viewport)


def expected_map(widget, channels, weights, bias, s, p, d) -> torch.Tensor:
    x = torch.tensor(widget.images[str(channels)], dtype=torch.float64)[None]
    return F.conv2d(x, weights[None], torch.tensor([float(bias)], dtype=torch.float64),
                    stride=s, padding=p, dilation=d)[0, 0]


def valid_settings() -> list[tuple[int, int, int, int]]:
    (p0, p1), (s0, s1), (d0, d1) = (WATCH_RANGES[x] for x in ("padding", "stride", "dilation"))
    found = []
    for k in WATCH_KERNEL_SIZES:
        for p in range(p0, p1 + 1):
            for s in range(s0, s1 + 1):
                for d in range(d0, d1 + 1):
                    try:
                        conv_output_size(N, k, p, s, d)
                    except ValueError:
                        continue
                    found.append((k, p, s, d))
    return found


def test_computed_maps_equal_conv2d(browser, explorer):
    rng = random.Random(2024)
    settings = valid_settings()
    harness = open_explorer(browser, explorer)
    with harness as page:
        view = Explorer(page, explorer)
        for trial in range(48):
            channels = rng.choice((1, 3))
            k, p, s, d = rng.choice(settings)
            view.set(channels, k, p, s, d)
            if trial % 2 == 0:  # a named kernel, split evenly over the channels
                name = rng.choice(WATCH_KERNELS)
                view.choose("kernel", name)
                weights = (preset_kernel(name, k).double() / channels).expand(channels, k, k)
                kernel = name
            else:               # a named kernel, then weights typed in by hand
                name = rng.choice(WATCH_KERNELS)
                view.choose("kernel", name)
                weights = (preset_kernel(name, k).double() / channels).repeat(channels, 1, 1)
                places = [(c, a, b) for c in range(channels) for a in range(k) for b in range(k)]
                typed = places if len(places) <= 9 or trial % 6 == 1 else rng.sample(places, 9)
                for c, a, b in typed:
                    weights[c, a, b] = round(rng.uniform(-2, 2), rng.choice((0, 1, 2, 3)))
                    view.type_into(view.root.locator(f'input[data-weight="{c},{a},{b}"]'),
                                   float(weights[c, a, b]))
                kernel = f"{name}, then {len(typed)} weights typed: {json.dumps(weights.tolist())}"
            bias = rng.choice((0.0, 0.0, 0.5, -1.25, round(rng.uniform(-1, 1), 2)))
            view.type_into(view.root.locator('input[data-control="bias"]'), bias)
            setting = (f"trial {trial}: channels={channels}, k={k}, padding={p}, stride={s}, "
                       f"dilation={d}, bias={bias}, kernel {kernel}")
            assert torch.allclose(view.weights(), weights, atol=1e-12), \
                f"{setting}: the page uses weights {view.data('weights')}"
            got, expected = view.output(), expected_map(explorer, channels, weights, bias, s, p, d)
            assert got is not None, f"{setting}: no output map"
            assert got.shape == expected.shape == (conv_output_size(N, k, p, s, d),) * 2, \
                f"{setting}: map {tuple(got.shape)}, F.conv2d {tuple(expected.shape)}"
            error = (got - expected).abs().max().item()
            assert error <= TOLERANCE, \
                f"{setting}: page and F.conv2d differ by {error:.2e} (tolerance {TOLERANCE})"
            assert view.data("out-size") == str(expected.shape[0]), setting
    assert harness.errors == [], harness.errors


def test_settings_without_output_say_why(browser, explorer):
    (p0, p1), (s0, s1), (d0, d1) = (WATCH_RANGES[x] for x in ("padding", "stride", "dilation"))
    harness = open_explorer(browser, explorer)
    problems = 0
    with harness as page:
        view = Explorer(page, explorer)
        view.click("step")
        for k in WATCH_KERNEL_SIZES:
            for p in range(p0, p1 + 1):
                for s in range(s0, s1 + 1):
                    for d in range(d0, d1 + 1):
                        view.set(1, k, p, s, d)
                        setting = f"k={k}, padding={p}, stride={s}, dilation={d}"
                        shown = view.snapshot()
                        try:
                            size = conv_output_size(N, k, p, s, d)
                        except ValueError as problem:
                            problems += 1
                            assert shown["problemVisible"], f"{setting}: no message"
                            assert str(problem) in shown["problem"], \
                                f"{setting}: shows {shown['problem']!r}, arith says {problem}"
                            assert shown["output"] == "" and shown["outSize"] == "", \
                                f"{setting}: an output was computed anyway"
                            assert not shown["resultVisible"] and shown["cells"] == 0, setting
                            continue
                        assert shown["problem"] is None, f"{setting}: a message although o={size}"
                        assert shown["outSize"] == str(size), setting
                        assert shown["cells"] == size * size, setting
                        assert shown["size"] == str(size), \
                            f"{setting}: formula shows {shown['size']}, arith {size}"
    assert problems >= 5, f"only {problems} settings without output were tried"
    assert harness.errors == [], harness.errors


NUMBER = r"(−?\d+(?:\.\d+)?)"


def parse_sum(text: str) -> tuple[list[tuple[float, float]], float, float]:
    """(input value, weight) pairs, the bias and the result of a written sum."""
    def number(s: str) -> float:
        return float(s.replace("−", "-"))

    pairs = [(number(x), number(w)) for x, w in
             re.findall(NUMBER + r"·\(?" + NUMBER + r"\)?", text)]
    bias = number(re.search(r"bias " + NUMBER, text).group(1))
    value = number(re.search(r"= " + NUMBER + r"\s*$", text).group(1))
    return pairs, bias, value


@pytest.mark.parametrize("channels, k, p, s, d, kernel, bias", [
    (1, 3, 0, 1, 1, "vertical edge", 0.0),
    (3, 5, 2, 2, 1, "blur", 0.25),
    (3, 3, 1, 1, 2, "sharpen", -0.5),
    (1, 3, 3, 3, 1, "horizontal edge", 0.0),
])
def test_step_writes_a_sum_that_adds_up(browser, explorer, channels, k, p, s, d, kernel, bias):
    with open_explorer(browser, explorer) as page:
        view = Explorer(page, explorer)
        view.set(channels, k, p, s, d)
        view.choose("kernel", kernel)
        view.type_into(view.root.locator('input[data-control="bias"]'), bias)
        o = conv_output_size(N, k, p, s, d)
        weights = (preset_kernel(kernel, k).double() / channels).expand(channels, k, k)
        expected = expected_map(explorer, channels, weights, bias, s, p, d)
        padded = F.pad(torch.tensor(explorer.images[str(channels)], dtype=torch.float64),
                       (p, p, p, p))
        assert view.data("done") == "0"
        for step in range(1, min(o * o, 7) + 1):
            view.click("step")
            i, j = divmod(step - 1, o)
            where = f"{kernel}, k={k}, p={p}, s={s}, d={d}, step {step}"
            assert view.data("done") == str(step), f"{where}: Step did not add one output"
            assert view.data("current") == f"{i},{j}", where
            assert view.root.locator("rect.cell-out[data-value]").count() == step, where
            cell = view.root.locator(f'rect.cell-out[data-row="{i}"][data-col="{j}"]')
            value = float(cell.get_attribute("data-value"))
            assert abs(value - expected[i, j]) <= TOLERANCE, \
                f"{where}: cell {value}, F.conv2d {expected[i, j]:.6f} (tolerance {TOLERANCE})"
            pairs, shown_bias, value = parse_sum(view.root.locator('[data-result="sum"]')
                                                 .inner_text())
            assert len(pairs) == channels * k * k, f"{where}: {len(pairs)} terms written"
            window = torch.stack([padded[c, i * s + a * d, j * s + b * d]
                                  for c in range(channels) for a in range(k) for b in range(k)])
            xs = torch.tensor([x for x, _ in pairs], dtype=torch.float64)
            ws = torch.tensor([w for _, w in pairs], dtype=torch.float64)
            assert torch.allclose(xs, window, atol=1e-9), f"{where}: wrong pixels written"
            assert torch.allclose(ws, weights.reshape(-1), atol=5e-5), \
                f"{where}: wrong weights written (tolerance 5e-5: 4 decimals)"
            assert shown_bias == bias, where
            total = float(xs @ ws) + shown_bias
            assert abs(total - value) <= 0.01, \
                f"{where}: the terms add up to {total:.4f}, the sum says {value} (tolerance 0.01)"
            assert abs(value - float(expected[i, j])) <= 0.005 + 1e-9, where
            status = view.root.locator(".status").inner_text()
            assert f"row {i}, column {j}" in status, status


def test_play_fills_the_map_and_pause_stops_it(browser, explorer):
    harness = open_explorer(browser, explorer)
    with harness as page:
        view = Explorer(page, explorer)
        view.set(3, 3, 1, 1, 1)
        view.choose("kernel", "sharpen")
        view.choose("speed", "fast")
        o = conv_output_size(N, 3, 1, 1, 1)
        view.click("play")
        page.wait_for_function(
            f"() => document.querySelector('{EXPLORER}').dataset.done === '{o * o}'",
            timeout=20_000)
        assert view.data("playing") == "false", "Play did not stop at the end of the map"
        expected = view.output()
        cells = view.root.locator("rect.cell-out[data-value]")
        assert cells.count() == o * o
        for index in range(o * o):
            cell = cells.nth(index)
            i, j = int(cell.get_attribute("data-row")), int(cell.get_attribute("data-col"))
            assert float(cell.get_attribute("data-value")) == expected[i, j]
        weights = (preset_kernel("sharpen", 3).double() / 3).expand(3, 3, 3)
        error = (expected - expected_map(explorer, 3, weights, 0.0, 1, 1, 1)).abs().max()
        assert error <= TOLERANCE, f"played map differs from F.conv2d by {error:.2e}"

        view.click("reset")
        assert view.data("done") == "0"
        view.choose("speed", "normal")
        view.click("play")
        page.wait_for_function(
            f"() => Number(document.querySelector('{EXPLORER}').dataset.done) >= 2",
            timeout=10_000)
        view.click("pause")
        paused_at = int(view.data("done"))
        page.wait_for_timeout(1500)  # several intervals at normal speed
        assert int(view.data("done")) == paused_at, "Pause did not stop the window"
        assert view.data("playing") == "false" and 2 <= paused_at < o * o
        view.click("play")  # and Play goes on from there
        page.wait_for_function(
            f"() => Number(document.querySelector('{EXPLORER}').dataset.done) > {paused_at}",
            timeout=10_000)
        view.click("pause")
    assert harness.errors == [], harness.errors


def test_screenshots_and_phone_width(browser, explorer):
    from pathlib import Path

    folder = Path(__file__).resolve().parent.parent / SCREENSHOTS
    folder.mkdir(parents=True, exist_ok=True)
    with open_explorer(browser, explorer) as page:
        view = Explorer(page, explorer)
        for _ in range(9):
            view.click("step")
        view.root.screenshot(path=str(folder / "conv_watch.png"))
    harness = open_explorer(browser, explorer, viewport=(375, 800))
    with harness as page:
        view = Explorer(page, explorer)
        for channels, k, p, s, d in [(1, 3, 0, 1, 1), (3, 5, 4, 1, 1), (3, 1, 4, 1, 1),
                                     (1, 5, 0, 1, 3)]:
            view.set(channels, k, p, s, d)
            view.click("step")
            width = page.evaluate("document.documentElement.scrollWidth")
            box = view.root.bounding_box()
            setting = f"channels={channels}, k={k}, p={p}, s={s}, d={d}"
            assert width <= 375, f"{setting}: the page is {width} px wide at a 375 px viewport"
            assert box["x"] >= 0 and box["x"] + box["width"] <= 375, f"{setting}: {box}"
        view.set(1, 3, 1, 1, 1)
        for _ in range(9):
            view.click("step")
        view.root.screenshot(path=str(folder / "conv_watch_375.png"))
    assert harness.errors == [], harness.errors


SEVERE = ("serious", "critical")


def severe_inside_explorer(page) -> list[str]:
    from axe_playwright_python.sync_playwright import Axe

    found = []
    for violation in Axe().run(page).response["violations"]:
        if violation["impact"] not in SEVERE:
            continue
        for node in violation["nodes"]:
            selector = " ".join(map(str, node["target"]))
            inside = page.evaluate(
                "(s) => { const e = document.querySelector(s);"
                " return e !== null && e.closest('.conv-watch') !== null; }", selector)
            if inside:
                found.append(f"{violation['id']} ({violation['impact']}): {selector}")
    return found


def test_accessible_and_keyboard_operable(browser, explorer):
    harness = open_explorer(browser, explorer)
    with harness as page:
        view = Explorer(page, explorer)
        view.click("step")
        assert severe_inside_explorer(page) == []
        view.set(3, 3, 1, 1, 1)
        view.click("step")
        assert severe_inside_explorer(page) == []
        view.set(1, 5, 0, 1, 3)  # no output: the message
        assert view.root.locator('[data-result="problem"]').is_visible()
        assert severe_inside_explorer(page) == []
        view.set(1, 3, 0, 1, 1)
        view.click("reset")

        assert view.root.get_attribute("class").split()[:2] == ["cnn-explorer", "conv-watch"]
        for svg in view.root.locator("svg").all():
            assert svg.get_attribute("role") == "img" and svg.get_attribute("aria-label")
        assert view.root.locator('[aria-live="polite"]').count() == 1

        page.evaluate("document.activeElement && document.activeElement.blur()")
        reached = []
        for _ in range(40):
            page.keyboard.press("Tab")
            action = page.evaluate("document.activeElement?.dataset?.action ?? null")
            if action:
                reached.append(action)
            if action == "step":
                break
        assert reached[:3] == ["play", "pause", "step"], f"Tab reached buttons {reached}"
        page.keyboard.press("Enter")
        assert view.data("done") == "1", "Enter on Step did not advance"
        page.keyboard.press("Space")
        assert view.data("done") == "2", "Space on Step did not advance"
        live = view.root.locator('[aria-live="polite"]').inner_text()
        assert "row 0, column 1" in live, live
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.dataset.action") == "reset"
        page.keyboard.press("Enter")
        assert view.data("done") == "0"
    assert harness.errors == [], harness.errors
