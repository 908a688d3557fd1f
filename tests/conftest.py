"""Shared fixtures, and which tests a plain ``python -m pytest`` runs.

Tests marked ``site`` (need the built site), ``browser`` (need Chromium; with ``site``, the
built site too),
``notebooks`` (execute notebooks, in a kernel or in the grader's sandbox) or ``slow`` (more than
a few seconds each) are skipped unless ``--run-all`` is given; ``bash scripts/test.sh`` gives
it, after building the site. The skip reasons are listed at the end of every run.
"""

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

#: marker -> why a plain run skips it
HEAVY_MARKERS = {
    "site": "needs the built site",
    "browser": "needs Chromium",
    "notebooks": "executes notebooks",
    "slow": "takes more than a few seconds",
}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--run-all", action="store_true",
                     help="also run the tests marked " + ", ".join(HEAVY_MARKERS) +
                     " (bash scripts/test.sh does)")


def pytest_configure(config: pytest.Config) -> None:
    for marker, why in HEAVY_MARKERS.items():
        config.addinivalue_line("markers", f"{marker}: {why}; skipped without --run-all")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--run-all"):
        return
    for item in items:
        heavy = [marker for marker in HEAVY_MARKERS if marker in item.keywords]
        if heavy:
            reasons = " and ".join(HEAVY_MARKERS[marker] for marker in heavy)
            if "browser" in heavy and "site" in heavy:  # said once, in the natural order
                reasons = " and ".join(["needs Chromium and the built site"] + [
                    HEAVY_MARKERS[marker] for marker in heavy if marker not in ("browser", "site")])
            item.add_marker(pytest.mark.skip(
                reason=f"{reasons}: run `python -m pytest --run-all` (after "
                       "`bash scripts/build-book.sh` for the site) or `bash scripts/test.sh`"))


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT
