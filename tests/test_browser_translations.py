"""The site check of every page (tests/test_browser.py) on every translated page: no
JavaScript errors, failed requests or requests to other hosts, formulas and saved widgets drawn,
no serious accessibility violation, at most 2 MB, no sideways scrolling on a phone.

A module of its own so that the test workers share the English and the translated pages.
"""

from __future__ import annotations

import pytest
import test_browser as english
from widget_harness import translated_pages

pytestmark = [pytest.mark.browser, pytest.mark.site]

# This module's own server and browser (module-scoped fixtures of tests/test_browser.py).
site_url = english.site_url
browser = english.browser
PAGES = translated_pages()


# Each check of every English page, run unchanged on every translated page.
PAGE_CHECKS = [english.test_page_loads_cleanly_offline,
               english.test_page_has_no_serious_accessibility_violations,
               english.test_page_fits_a_phone_screen,
               english.test_page_loads_at_most_2_mb_compressed]


@pytest.mark.parametrize("check", PAGE_CHECKS, ids=lambda c: c.__name__.removeprefix("test_"))
@pytest.mark.parametrize("page", PAGES)
def test_translated_page(browser, site_url, page, check):
    check(browser, site_url, page)


def test_the_language_link_leads_to_the_same_page(browser, site_url):
    """Following the link at the top of a page opens the same page in the other language,
    and back."""
    page = browser.new_page()
    try:
        page.goto(f"{site_url}/book/03_pooling.html", wait_until="load")
        page.click("nav.language-switch a")
        page.wait_for_load_state("load")
        assert page.url.endswith("/zh/book/03_pooling.html"), page.url
        assert page.evaluate("document.documentElement.lang") == "zh-CN"
        assert "池化" in page.locator("article h1").inner_text()
        page.click("nav.language-switch a")
        page.wait_for_load_state("load")
        assert page.url == f"{site_url}/book/03_pooling.html"
    finally:
        page.close()


# Each explorer of the site and a word it shows, in English and in Chinese.
EXPLORER_WORDS = [("book/01_convolution.html", ".conv-arithmetic", "stride s", "步长 s"),
                  ("book/01_convolution.html", ".conv-watch", "kernel size k", "卷积核大小 k"),
                  ("book/03_pooling.html", ".pooling-explorer", "stride s", "步长 s"),
                  ("book/07_lenet5.html", ".digit-explorer", "Clear", "清除")]


@pytest.mark.parametrize("path, explorer, english_word, chinese_word", EXPLORER_WORDS)
def test_explorers_speak_the_pages_language(browser, site_url, path, explorer, english_word,
                                            chinese_word):
    """An explorer is saved once, from the English execution, and picks its words in the
    browser by the page's language."""
    page = browser.new_page()
    try:
        for url, shown, hidden in ((f"{site_url}/{path}", english_word, chinese_word),
                                   (f"{site_url}/zh/{path}", chinese_word, english_word)):
            page.goto(url, wait_until="load")
            widget = page.locator(explorer).first
            widget.wait_for(timeout=30_000)
            text = widget.inner_text()
            assert shown in text and hidden not in text, (url, text[:300])
    finally:
        page.close()
