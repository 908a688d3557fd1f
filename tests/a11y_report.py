"""Run axe-core on every page of the built site and print its serious or critical violations.

Usage: python tests/a11y_report.py [SITE_FOLDER [PAGE ...]]
(default: _build/html, or CNN_COURSE_SITE; every page of _toc.yml in every language, or the
PAGEs named, e.g. book/01_convolution or zh/book/01_convolution).
Exits 1 when any page has a serious or critical violation. Needs axe-playwright-python and a
Chromium binary (set CNN_COURSE_CHROMIUM to use another one than /usr/bin/chromium).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from widget_harness import RENDERED, ROOT, StaticServer, launch_chromium, site_pages

SEVERE = ("serious", "critical")


def severe_violations(page) -> list[tuple[str, str, str, list[str]]]:
    """(rule, impact, its help text, selectors of the offending elements) for each serious or
    critical rule."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    found = []
    for violation in results.response["violations"]:
        if violation["impact"] in SEVERE:
            targets = [" ".join(map(str, node["target"])) for node in violation["nodes"]]
            found.append((violation["id"], violation["impact"], violation["help"], targets))
    return found


def open_page(browser, url: str):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(url, wait_until="load")
    page.wait_for_load_state("networkidle")
    try:
        page.wait_for_function(RENDERED, timeout=15_000)
    except Exception:  # noqa: BLE001 - a page whose widgets never render is still audited
        pass
    return page


def main(site: Path, pages: list[str] | None = None) -> int:
    from playwright.sync_api import sync_playwright

    server = StaticServer(site)
    base = server.url
    total = 0
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        for name in pages or site_pages():
            page = open_page(browser, f"{base}/{name}.html")
            try:
                found = severe_violations(page)
            finally:
                page.close()
            count = sum(len(targets) for *_, targets in found)
            total += count
            print(f"{name}: {count} serious/critical element(s)")
            for rule, impact, help_text, targets in found:
                print(f"  {rule} ({impact}, {len(targets)}): {help_text}: {', '.join(targets)}")
        browser.close()
    server.close()
    print(f"total: {total}")
    return 1 if total else 0


if __name__ == "__main__":
    default = os.environ.get("CNN_COURSE_SITE", ROOT / "_build" / "html")
    sys.exit(main(Path(sys.argv[1] if len(sys.argv) > 1 else default), sys.argv[2:]))
