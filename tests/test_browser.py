"""Every page of the built site in headless Chromium: it loads with no JavaScript errors, makes
no request to another host, shows its images, renders its math and its saved widgets.

Needs the built site (scripts/test.sh builds it) and a Chromium binary (.ci/run installs
Debian's `chromium`); set CNN_COURSE_CHROMIUM to use another one.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import pytest
from widget_harness import StaticServer, launch_chromium, toc_pages

pytestmark = [pytest.mark.browser, pytest.mark.site]

ROOT = Path(__file__).resolve().parent.parent
HTML = Path(os.environ.get("CNN_COURSE_SITE", ROOT / "_build" / "html"))
SCREENSHOTS = ROOT / "_build" / "screenshots"
# sphinx-thebe declares its configuration twice on every page; harmless and not ours.
ALLOWED_CONSOLE_ERRORS = ("Identifier 'THEBE_JS_URL' has already been declared",)


# book/_ext/saved_widgets.js draws each saved widget into a `.saved-widget` right after its view
# marker, then marks <html> as done.
_ALL_WIDGETS_RENDERED = """() => {
  const views = [...document.querySelectorAll(
    'script[type="application/vnd.jupyter.widget-view+json"]')];
  return document.documentElement.dataset.widgetsRendered === "true" && views.length > 0
    && views.every(s => s.nextElementSibling?.classList.contains('saved-widget')
                        && s.nextElementSibling.children.length > 0);
}"""


@pytest.fixture(scope="module")
def site_url():
    if not (HTML / "index.html").exists():
        pytest.fail("no built site: run `bash scripts/build-book.sh` first")
    server = StaticServer(HTML)
    yield server.url
    server.close()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        try:
            browser = launch_chromium(playwright)
        except RuntimeError as problem:  # no Chromium: say how to get one
            pytest.fail(str(problem))
        yield browser
        browser.close()


class PageVisit:
    """Opens a page, blocking and recording any request that leaves localhost."""

    def __init__(self, browser, url: str) -> None:
        from page_weight import record_response_sizes

        self.console_errors: list[str] = []
        self.page_errors: list[str] = []
        self.external: list[str] = []
        self.failed: list[str] = []
        self.page = browser.new_page(viewport={"width": 1280, "height": 900})
        # Generous: the suite runs these next to notebook executions on two cores.
        self.page.set_default_timeout(60_000)
        self.page.on("console", lambda m: m.type == "error" and self.console_errors.append(m.text))
        self.page.on("pageerror", lambda e: self.page_errors.append(str(e)))
        self.page.on("requestfailed", lambda r: self.failed.append(r.url))
        self.sizes = record_response_sizes(self.page)
        self.page.route("**/*", self._route)
        self.page.goto(url, wait_until="load", timeout=90_000)
        self.page.wait_for_load_state("networkidle")

    def _route(self, route) -> None:
        host = urlparse(route.request.url).hostname
        if host in ("127.0.0.1", "localhost", None) or route.request.url.startswith("data:"):
            route.continue_()
        else:
            self.external.append(route.request.url)
            route.abort()

    @property
    def real_console_errors(self) -> list[str]:
        return [e for e in self.console_errors if not any(a in e for a in ALLOWED_CONSOLE_ERRORS)]


@dataclass
class PageReport:
    """What one desktop visit of a page found; three tests read it, so each page loads once."""

    page_errors: list[str]
    console_errors: list[str]
    external: list[str]
    failed: list[str]
    broken_images: list[str]
    problems: list[str]          # math that did not render, saved widgets that were not drawn
    sizes: dict[str, int]        # {url: gzip bytes} of everything the page loaded
    severe: list[str]            # axe-core's serious and critical violations


_reports: dict[str, PageReport] = {}


def page_report(browser, site_url: str, page: str) -> PageReport:
    if page not in _reports:
        _reports[page] = _visit(browser, site_url, page)
    return _reports[page]


def _visit(browser, site_url: str, page: str) -> PageReport:
    from a11y_report import severe_violations
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    html = (HTML / f"{page}.html").read_text(encoding="utf-8")
    visit = PageVisit(browser, f"{site_url}/{page}.html")
    try:
        tab, problems = visit.page, []
        if "math notranslate" in html:
            try:
                tab.wait_for_selector("mjx-container", timeout=30_000)
                if tab.locator("mjx-merror").count():
                    problems.append("a formula failed to render (mjx-merror)")
            except PlaywrightTimeout:
                problems.append("its formulas were not rendered within 30 s")
        if "application/vnd.jupyter.widget-view+json" in html:
            try:
                tab.wait_for_function(_ALL_WIDGETS_RENDERED, timeout=30_000)
            except PlaywrightTimeout:
                problems.append("its saved widgets were not drawn within 30 s")
        tab.wait_for_timeout(1000)  # files a page fetches late (fonts, weights) count too
        broken = tab.eval_on_selector_all(
            "img", "imgs => imgs.filter(i => !i.complete || i.naturalWidth === 0).map(i => i.src)")
        page_errors = [e for e in visit.page_errors
                       if not any(a in e for a in ALLOWED_CONSOLE_ERRORS)]
        # What the reader's browser did, taken before axe runs: axe's own stylesheet checks
        # fetch @import-ed files from the wrong folder (a 404 no reader ever causes).
        report = PageReport(page_errors, visit.real_console_errors, list(visit.external),
                            list(visit.failed), broken, problems, dict(visit.sizes), [])
        report.severe = [f"{rule} ({impact}): {help_text}: {', '.join(targets)}"
                         for rule, impact, help_text, targets in severe_violations(tab)]
        return report
    finally:
        visit.page.close()


@pytest.mark.parametrize("page", toc_pages())
def test_page_loads_cleanly_offline(browser, site_url, page):
    report = page_report(browser, site_url, page)
    assert report.page_errors == [], f"{page}: JavaScript errors {report.page_errors}"
    assert report.console_errors == [], f"{page}: console errors {report.console_errors}"
    assert report.external == [], f"{page}: requests to other hosts {report.external}"
    assert report.failed == [], f"{page}: failed requests {report.failed}"
    assert report.broken_images == [], f"{page}: images that did not load {report.broken_images}"
    assert report.problems == [], f"{page}: {'; '.join(report.problems)}"


def test_saved_conv_explorer_renders_with_its_numbers(browser, site_url):
    visit = PageVisit(browser, f"{site_url}/solutions/01_convolution.html")
    try:
        page = visit.page
        page.wait_for_function(_ALL_WIDGETS_RENDERED, timeout=30_000)
        explorer = page.locator(".saved-widget").first
        assert "parameters" in explorer.locator(".conv-explorer-summary").inner_text()
        sliders = explorer.locator("input[type=range]")
        assert sliders.count() >= 8
        # Saved controls cannot run Python here: they are shown disabled, with a note saying so,
        # and each figure is described by the saved settings.
        assert all(sliders.nth(i).is_disabled() for i in range(sliders.count()))
        assert "running notebook" in explorer.locator(".saved-widget-note").inner_text()
        figures = explorer.locator("img")
        assert figures.count() >= 1
        alt = figures.first.get_attribute("alt")
        assert "kernel" in alt and "=" in alt, alt
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        explorer.screenshot(path=str(SCREENSHOTS / "conv-explorer.png"))
        assert (SCREENSHOTS / "conv-explorer.png").stat().st_size > 10_000
    finally:
        page.close()


_SET_CONTROLS = """([root, values]) => {
  const box = document.querySelector(root);
  for (const [name, value] of Object.entries(values)) {
    const input = box.querySelector(`input[data-control="${name}"]`);
    input.value = value;
    input.dispatchEvent(new Event("input"));
  }
  const pick = (key) => box.querySelector(`[data-result="${key}"]`)?.textContent ?? null;
  const taps = Array.from(box.querySelectorAll("rect.tap"),
                          (r) => [Number(r.getAttribute("y")), Number(r.getAttribute("x"))]);
  return {size: pick("size"), params: pick("params"), problem: pick("problem"), taps,
          readout: box.querySelector(".readout").textContent};
}"""


def _cells_read(n: int, k: int, p: int, s: int, d: int, row: int, col: int) -> list[list[int]]:
    """The padded-input cells that output (row, col) depends on, found by autograd through
    F.conv2d itself (independent of any formula for where the kernel lands)."""
    import torch
    import torch.nn.functional as F

    padded = torch.zeros(1, 1, n + 2 * p, n + 2 * p, dtype=torch.float64, requires_grad=True)
    out = F.conv2d(padded, torch.ones(1, 1, k, k, dtype=torch.float64), stride=s, dilation=d)
    out[0, 0, row, col].backward()
    return sorted(padded.grad[0, 0].nonzero().tolist())


def test_static_conv_explorer_agrees_with_python(browser, site_url):
    """Drive the page's explorer (no kernel) over random settings; compare with cnn_course.arith."""
    import random

    from cnn_course.arith import conv_output_size, conv_params
    from cnn_course.widgets.static import CONV_RANGES

    visit = PageVisit(browser, f"{site_url}/book/01_convolution.html")
    try:
        visit.page.wait_for_selector(".conv-arithmetic input[data-control]", timeout=30_000)
        rng = random.Random(0)
        for _ in range(150):
            values = {name: rng.randint(low, high) for name, (low, high) in CONV_RANGES.items()}
            shown = visit.page.evaluate(_SET_CONTROLS, [".conv-arithmetic", values])
            n, k, p, s, d = (values[x] for x in ("n", "kernel_size", "padding", "stride",
                                                  "dilation"))
            try:
                expected = conv_output_size(n, k, p, s, d)
            except ValueError as problem:
                assert shown["problem"] and str(problem) in shown["problem"], (values, shown)
                continue
            assert shown["size"] == str(expected), (values, shown)
            params = conv_params(values["in_channels"], values["out_channels"], k)
            assert shown["params"] == f"{params:,}", (values, shown)
            assert f"⌊({n} + 2·{p} − {d}·({k}−1) − 1) / {s}⌋ + 1" in shown["readout"]
            row, col = rng.randrange(expected), rng.randrange(expected)
            shown = visit.page.evaluate(_SET_CONTROLS, [".conv-arithmetic",
                                                        {"out_row": row, "out_col": col}])
            assert sorted(shown["taps"]) == _cells_read(n, k, p, s, d, row, col), (values, row,
                                                                                  col)
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        visit.page.locator(".conv-arithmetic").screenshot(
            path=str(SCREENSHOTS / "conv-explorer-static.png"))
    finally:
        visit.page.close()


def page_with(marker: str) -> str:
    """The first page of the site whose saved widgets include ``marker`` (a CSS class)."""
    for page in toc_pages():
        if marker in (HTML / f"{page}.html").read_text(encoding="utf-8"):
            return page
    pytest.fail(f"no page of the site has a {marker} explorer")


_SET_POOLING = """([mode, k, s]) => {
  const box = document.querySelector(".pooling-explorer");
  const set = (name, value, event) => {
    const input = box.querySelector(`[data-control="${name}"]`);
    input.value = value;
    input.dispatchEvent(new Event(event));
  };
  set("mode", mode, "change");
  set("kernel_size", k, "input");
  set("stride", s, "input");
  set("out_row", 0, "input");
  set("out_col", 0, "input");
  const pick = (key) => box.querySelector(`[data-result="${key}"]`)?.textContent ?? null;
  return {size: pick("size"), value: pick("value"), problem: pick("problem")};
}"""


def test_static_pooling_explorer_agrees_with_python(browser, site_url):
    import torch
    import torch.nn.functional as F

    from cnn_course.arith import conv_output_size
    from cnn_course.widgets.static import POOL_SIZES, POOL_STRIDES, PoolingExplorer

    feature_map = torch.tensor(PoolingExplorer().feature_map)[None, None]
    visit = PageVisit(browser, f"{site_url}/{page_with('pooling-explorer')}.html")
    try:
        visit.page.wait_for_selector(".pooling-explorer [data-control]", timeout=30_000)
        for mode, pool in (("max", F.max_pool2d), ("avg", F.avg_pool2d)):
            for k in POOL_SIZES:
                for s in POOL_STRIDES:
                    shown = visit.page.evaluate(_SET_POOLING, [mode, k, s])
                    assert shown["size"] == str(conv_output_size(12, k, 0, s)), (mode, k, s)
                    expected = pool(feature_map, k, stride=s)[0, 0, 0, 0].item()
                    assert float(shown["value"]) == pytest.approx(expected, abs=0.006)
    finally:
        visit.page.close()


_SET_RACE = """([surface, lr, momentum]) => {
  const box = document.querySelector(".optimizer-race");
  const select = box.querySelector('[data-control="surface"]');
  select.value = surface;
  select.dispatchEvent(new Event("change"));
  for (const [name, value] of [["lr", lr], ["momentum", momentum]]) {
    const input = box.querySelector(`[data-control="${name}"]`);
    input.value = value;
    input.dispatchEvent(new Event("input"));
  }
  return Object.fromEntries([...box.querySelectorAll("[data-optimizer]")].map(
    row => [row.dataset.optimizer, row.querySelector('[data-result="status"]').textContent]));
}"""


def test_static_optimizer_race_agrees_with_torch_optim(browser, site_url):
    import random

    from cnn_course.lessons.optimizers import SURFACES
    from cnn_course.lessons.optimizers import torch_optimizers as race_optimizers
    from cnn_course.widgets.static import (
        RACE_LEARNING_RATES,
        RACE_MOMENTA,
        race_trajectory,
    )

    visit = PageVisit(browser, f"{site_url}/{page_with('optimizer-race')}.html")
    try:
        visit.page.wait_for_selector(".optimizer-race [data-control]", timeout=30_000)
        rng = random.Random(0)
        for _ in range(8):
            surface = rng.choice(list(SURFACES))
            i, j = rng.randrange(len(RACE_LEARNING_RATES)), rng.randrange(len(RACE_MOMENTA))
            shown = visit.page.evaluate(_SET_RACE, [surface, i, j])
            for name in race_optimizers(0.1, 0.0):
                momentum = RACE_MOMENTA[j] if name in ("momentum", "Nesterov") else 0.0
                make = race_optimizers(RACE_LEARNING_RATES[i], momentum)[name]
                path, diverged = race_trajectory(surface, make)
                where = (surface, RACE_LEARNING_RATES[i], momentum, name, shown[name])
                if diverged:
                    assert shown[name] == f"diverged at step {diverged}", where
                else:
                    numbers = re.fullmatch(r"ends at \((\S+), (\S+)\)", shown[name])
                    assert numbers, where
                    end = [float(v) for v in numbers.groups()]
                    assert end == pytest.approx(path[-1], abs=0.006), where
    finally:
        visit.page.close()


_SET_ACTIVATION = """([name, range, slope, point]) => {
  const box = document.querySelector(".activation-explorer");
  const select = box.querySelector('[data-control="function"]');
  select.value = name;
  select.dispatchEvent(new Event("change"));
  for (const [control, value] of [["range", range], ["slope", slope], ["point", point]]) {
    const input = box.querySelector(`[data-control="${control}"]`);
    input.value = value;
    input.dispatchEvent(new Event("input"));
  }
  const pick = (key) => box.querySelector(`[data-result="${key}"]`)?.textContent ?? null;
  return {x: pick("x"), f: pick("f"), df: pick("df"), flat: pick("flat"), note: pick("note"),
          slopeOff: box.querySelector('[data-control="slope"]').disabled,
          curves: box.querySelectorAll("svg polyline.curve").length,
          readout: box.querySelector(".readout").textContent};
}"""


def test_static_activation_explorer_agrees_with_torch(browser, site_url):
    """Drive Chapter 2's explorer (no kernel) over random settings; compare each readout with
    torch.nn.functional and autograd, computed here."""
    import random

    import torch
    import torch.nn.functional as F

    from cnn_course.widgets.static import (
        ACTIVATION_NAMES,
        ACTIVATION_POINTS,
        ACTIVATION_RANGES,
        LEAKY_SLOPES,
    )

    visit = PageVisit(browser, f"{site_url}/book/02_activations.html")
    try:
        visit.page.wait_for_selector(".activation-explorer [data-control]", timeout=30_000)
        rng = random.Random(0)
        for _ in range(200):
            name = rng.choice(ACTIVATION_NAMES)
            i, j = rng.randrange(len(ACTIVATION_RANGES)), rng.randrange(len(LEAKY_SLOPES))
            point = rng.choice([0, ACTIVATION_POINTS // 2, ACTIVATION_POINTS - 1,
                                rng.randrange(ACTIVATION_POINTS)])
            shown = visit.page.evaluate(_SET_ACTIVATION, [name, i, j, point])
            where = (name, ACTIVATION_RANGES[i], LEAKY_SLOPES[j], point, shown)
            half = ACTIVATION_RANGES[i]
            steps = ACTIVATION_POINTS - 1
            assert float(shown["x"]) == pytest.approx(half * (2 * point - steps) / steps,
                                                      abs=1e-9), where
            slope = LEAKY_SLOPES[j]
            fn = {"ReLU": F.relu, "Leaky ReLU": lambda t, a=slope: F.leaky_relu(t, a),
                  "sigmoid": torch.sigmoid, "tanh": torch.tanh, "GELU": F.gelu}[name]
            x = torch.tensor(float(shown["x"]), dtype=torch.float64, requires_grad=True)
            y = fn(x)
            (dy,) = torch.autograd.grad(y, x)
            assert float(shown["f"]) == pytest.approx(y.item(), abs=5.1e-5), where
            assert float(shown["df"]) == pytest.approx(dy.item(), abs=5.1e-5), where
            grid = torch.linspace(-half, half, ACTIVATION_POINTS, dtype=torch.float64,
                                  requires_grad=True)
            (slopes,) = torch.autograd.grad(fn(grid).sum(), grid)
            flat = (slopes.abs() < 0.01).double().mean().item()
            assert shown["flat"] == f"{flat:.0%}", where
            assert f"{flat:.0%}" in shown["note"] or name == "Leaky ReLU", where
            assert shown["slopeOff"] == (name != "Leaky ReLU"), where
            assert shown["curves"] == 2 and shown["note"], where
            if name == "Leaky ReLU":
                assert f"α = {slope:g}" in shown["readout"], where
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        visit.page.evaluate(_SET_ACTIVATION, ["sigmoid", len(ACTIVATION_RANGES) - 1, 0, 80])
        visit.page.locator(".activation-explorer").screenshot(
            path=str(SCREENSHOTS / "activation-explorer-static.png"))
    finally:
        visit.page.close()


@pytest.mark.parametrize("page", toc_pages())
def test_page_has_no_serious_accessibility_violations(browser, site_url, page):
    """axe-core finds no serious or critical violation: every control has a name, every image a
    text alternative (`python tests/a11y_report.py` prints the same report for the whole site)."""
    severe = page_report(browser, site_url, page).severe
    assert severe == [], f"{page}: " + "\n".join(severe)


@pytest.mark.parametrize("page", toc_pages())
def test_page_fits_a_phone_screen(browser, site_url, page):
    """At a 375-pixel-wide viewport nothing makes the page scroll sideways: explorers, wide
    tables, code and formulas fit or scroll inside their own box."""
    phone = browser.new_page(viewport={"width": 375, "height": 800}, device_scale_factor=2)
    phone.set_default_timeout(60_000)
    try:
        phone.goto(f"{site_url}/{page}.html", wait_until="load", timeout=90_000)
        phone.wait_for_load_state("networkidle")
        if "application/vnd.jupyter.widget-view+json" in (HTML / f"{page}.html").read_text(
                encoding="utf-8"):
            phone.wait_for_function(_ALL_WIDGETS_RENDERED, timeout=30_000)
        phone.wait_for_timeout(300)  # MathJax lays formulas out after load
        too_wide = phone.evaluate("""() => {
          const limit = document.documentElement.clientWidth;
          return [...document.querySelectorAll('article *')]
            .filter(e => e.getBoundingClientRect().right > limit + 1
                         && !e.closest('.table-wrapper, .highlight, mjx-container, .saved-widget,'
                                       + ' .cell_output, .MathJax, .math, pre'))
            .slice(0, 5).map(e => `${e.tagName.toLowerCase()}.${e.className}`.slice(0, 80));
        }""")
        width = phone.evaluate("() => document.documentElement.scrollWidth")
        if width > 375:
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            phone.screenshot(path=str(SCREENSHOTS / f"phone-{page.replace('/', '-')}.png"))
        assert width <= 375, f"{page} is {width} px wide at a 375-px viewport; wide: {too_wide}"
    finally:
        phone.close()


@pytest.mark.parametrize("page", toc_pages())
def test_page_loads_at_most_2_mb_compressed(browser, site_url, page):
    """Everything the page loads (scripts, styles, fonts, images, saved widgets and the files
    they fetch), compressed with gzip as a web server would send it, is at most 2 MB."""
    from page_weight import LIMIT_BYTES

    sizes = page_report(browser, site_url, page).sizes
    total = sum(sizes.values())
    heaviest = ", ".join(f"{url.rsplit('/', 1)[-1][:40]} {size // 1000} kB" for url, size in
                         sorted(sizes.items(), key=lambda item: -item[1])[:4])
    assert total <= LIMIT_BYTES, f"{page} loads {total / 1e6:.2f} MB gzip ({heaviest})"
    assert not any("fontawesome.js" in url for url in sizes), "the theme's icon script is back"


def test_theme_icons_still_show_without_the_icon_script(browser, site_url):
    """book/_ext/light_pages.py drops Font Awesome's script; the header's icons come from the
    theme's web font instead, so each icon element still has a glyph of non-zero size."""
    visit = PageVisit(browser, f"{site_url}/book/01_convolution.html")
    try:
        sizes = visit.page.evaluate("""() => [...document.querySelectorAll(
            '.bd-header-article i.fa-solid, .bd-header-article i.fa-brands,'
            + ' .bd-header-article i.fas, .bd-header-article i.fab')]
          .filter(i => i.offsetParent !== null)
          .map(i => [i.className, getComputedStyle(i, '::before').content,
                     i.getBoundingClientRect().width])""")
        assert sizes, "no icon found in the article header"
        for name, glyph, width in sizes:
            assert glyph not in ("none", "normal", '""') and width > 0, (name, glyph, width)
    finally:
        visit.page.close()
