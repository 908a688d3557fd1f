"""Page weight: the gzip-compressed size of everything a page of the built site loads.

Usage: python tests/page_weight.py [SITE_FOLDER [PAGE ...]]
(default: _build/html, or CNN_COURSE_SITE; every page of _toc.yml in every language, or the
PAGEs named, e.g. book/07_lenet5 or zh/book/07_lenet5). Prints each page's total and its five
heaviest files; exits 1 when a page loads more than LIMIT_BYTES. The browser test of every
page uses `page_weight` the same way.

Each file is counted once per page, compressed with gzip at level 6, as a web server would send
it; files a page loads later (fonts, a fetched weights file) count once the page is idle.
"""

from __future__ import annotations

import gzip
import os
import sys
from pathlib import Path

from widget_harness import ROOT, StaticServer, launch_chromium, site_pages

LIMIT_BYTES = 2_000_000  # 2 MB, as the site's performance goal states it


def gzip_size(body: bytes) -> int:
    return len(gzip.compress(body, compresslevel=6, mtime=0))


def record_response_sizes(page) -> dict[str, int]:
    """Start counting ``page``'s responses; returns the {url: gzip bytes} dict it fills in."""
    sizes: dict[str, int] = {}

    def record(response) -> None:
        if response.url.startswith("data:") or response.url in sizes:
            return
        try:
            sizes[response.url] = gzip_size(response.body())
        except Exception:  # noqa: BLE001 - redirects and aborted requests have no body
            sizes[response.url] = 0

    page.on("response", record)
    return sizes


def page_weight(browser, url: str, settle_ms: int = 1500) -> dict[str, int]:
    """{url: gzip-compressed bytes} of every response the page at ``url`` received."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    sizes = record_response_sizes(page)
    try:
        page.goto(url, wait_until="load")
        page.wait_for_load_state("networkidle")
        page.wait_for_timeout(settle_ms)
    finally:
        page.close()
    return sizes


def main(site: Path, pages: list[str]) -> int:
    from playwright.sync_api import sync_playwright

    server = StaticServer(site)
    base = server.url
    too_heavy = 0
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        for name in pages:
            sizes = page_weight(browser, f"{base}/{name}.html")
            total = sum(sizes.values())
            too_heavy += total > LIMIT_BYTES
            mark = "TOO HEAVY" if total > LIMIT_BYTES else "ok"
            print(f"{name}: {total / 1e6:.2f} MB gzip in {len(sizes)} files ({mark})")
            for url, size in sorted(sizes.items(), key=lambda item: -item[1])[:5]:
                print(f"    {size / 1e3:8.0f} kB  {url.removeprefix(base)}")
        browser.close()
    server.close()
    print(f"{too_heavy} of {len(pages)} pages load more than {LIMIT_BYTES / 1e6:.0f} MB gzip")
    return 1 if too_heavy else 0


if __name__ == "__main__":
    site = Path(sys.argv[1]) if len(sys.argv) > 1 else \
        Path(os.environ.get("CNN_COURSE_SITE", ROOT / "_build" / "html"))
    sys.exit(main(site, sys.argv[2:] or site_pages()))
