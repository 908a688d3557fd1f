"""Open widgets in Chromium the way the built site shows them, without building the site;
and the small pieces every browser tool of the course shares (Chromium, a local server, the
site's pages).

``WidgetPage`` writes a page that holds the widgets' saved state and view markers exactly as
myst-nb writes them into the site, loads the site's own renderer (``book/_ext/saved_widgets.js``)
and returns a Playwright page once every widget is drawn::

    from playwright.sync_api import sync_playwright
    from widget_harness import WidgetPage, launch_chromium

    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        with WidgetPage(browser, [ConvWatchExplorer()]) as page:
            page.locator(".conv-watch").screenshot(path="shot.png")

Test modules in ``tests/`` import it as ``widget_harness`` (pytest puts ``tests/`` on the path).
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import tempfile
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
RENDERER = ROOT / "book" / "_ext" / "saved_widgets.js"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync"]
RENDERED = "() => document.documentElement.dataset.widgetsRendered === 'true'"


def toc_pages() -> list[str]:
    """Every page of the site, in the order of ``_toc.yml`` (e.g. ``book/01_convolution``)."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    return [toc["root"]] + [c["file"] for part in toc["parts"] for c in part["chapters"]]


def translated_pages() -> list[str]:
    """Every page of every translation, under the folder that its
    ``locales/<language>/site.yml`` names (e.g. ``zh/book/01_convolution``)."""
    folders = [yaml.safe_load(path.read_text(encoding="utf-8"))["folder"]
               for path in sorted((ROOT / "locales").glob("*/site.yml"))]
    return [f"{folder}/{page}" for folder in folders for page in toc_pages()]


def site_pages() -> list[str]:
    """Every page of every language: the English pages, then each translation's."""
    return toc_pages() + translated_pages()


def chromium_path() -> str:
    for candidate in (os.environ.get("CNN_COURSE_CHROMIUM"), "chromium", "chromium-browser",
                      "google-chrome"):
        if candidate and shutil.which(candidate):
            return shutil.which(candidate)
    raise RuntimeError("no Chromium found: install Debian's `chromium` (.ci/run does) or set "
                       "CNN_COURSE_CHROMIUM")


def launch_chromium(playwright):
    """Headless Chromium with the options the course's browser tests use."""
    return playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


class StaticServer:
    """Serves a folder on 127.0.0.1 in a background thread; ``url`` is its address."""

    def __init__(self, folder: Path) -> None:
        handler = functools.partial(_QuietHandler, directory=str(folder))
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _script(mime: str, payload: dict) -> str:
    body = json.dumps(payload).replace("</", "<\\/")  # as myst-nb's sanitize_script_content
    return f'<script type="{mime}">{body}</script>'


def widget_page_html(widgets: list, lang: str = "en") -> str:
    """A page with the widgets' saved state and one view marker per widget, as on the site;
    ``lang`` is the page's language (``zh-CN`` on the Chinese site)."""
    from ipywidgets.embed import embed_data

    data = embed_data(views=widgets, drop_defaults=False)
    views = "\n".join(f'<div class="cell_output">'
                      f'{_script("application/vnd.jupyter.widget-view+json", spec)}</div>'
                      for spec in data["view_specs"])
    return f"""<!DOCTYPE html>
<html lang="{lang}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Widget test page</title>
<link rel="icon" href="data:,">
{_script("application/vnd.jupyter.widget-state+json", data["manager_state"])}
<script defer src="saved_widgets.js"></script>
</head><body><main style="max-width: 860px; margin: 0 auto; padding: 0 12px">
<h1>Widget test page</h1>
{views}
</main></body></html>
"""


class WidgetPage:
    """Context manager: a Playwright page showing ``widgets`` as the site draws them."""

    def __init__(self, browser, widgets: list, viewport: tuple[int, int] = (1280, 900),
                 timeout_ms: int = 15_000, lang: str = "en") -> None:
        self.browser, self.widgets, self.lang = browser, widgets, lang
        self.viewport, self.timeout_ms = viewport, timeout_ms
        self.errors: list[str] = []

    def __enter__(self):
        self.folder = Path(tempfile.mkdtemp(prefix="widget-page-"))
        (self.folder / "index.html").write_text(widget_page_html(self.widgets, self.lang),
                                                    encoding="utf-8")
        shutil.copy2(RENDERER, self.folder / RENDERER.name)
        self.server = StaticServer(self.folder)
        width, height = self.viewport
        self.page = self.browser.new_page(viewport={"width": width, "height": height})
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.goto(f"{self.server.url}/index.html", wait_until="load")
        self.page.wait_for_function(RENDERED, timeout=self.timeout_ms)
        return self.page

    def __exit__(self, *exc) -> None:
        self.page.close()
        self.server.close()
        shutil.rmtree(self.folder, ignore_errors=True)
