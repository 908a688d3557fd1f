"""What a plain ``python -m pytest`` runs: the heavy tests are skipped, with a reason."""

import conftest


class _Config:
    def __init__(self, run_all: bool) -> None:
        self.run_all = run_all

    def getoption(self, name: str) -> bool:
        assert name == "--run-all"
        return self.run_all


class _Item:
    def __init__(self, *markers: str) -> None:
        self.keywords = {"test_example", *markers}
        self.skips: list[str] = []

    def add_marker(self, marker) -> None:
        assert marker.name == "skip"
        self.skips.append(marker.kwargs["reason"])


def test_heavy_tests_are_skipped_unless_run_all():
    unit, site, browser, notebooks, slow = (
        _Item(), _Item("site"), _Item("browser", "site"), _Item("notebooks"), _Item("slow"))
    items = [unit, site, browser, notebooks, slow]
    conftest.pytest_collection_modifyitems(_Config(run_all=False), items)
    assert unit.skips == []
    assert site.skips[0].startswith("needs the built site:")
    assert browser.skips[0].startswith("needs Chromium and the built site:")  # said once
    assert notebooks.skips[0].startswith("executes notebooks:")
    harness_only = _Item("browser")  # a browser test on a page of its own, no site needed
    conftest.pytest_collection_modifyitems(_Config(run_all=False), [harness_only])
    assert harness_only.skips[0].startswith("needs Chromium:")
    assert slow.skips[0].startswith("takes more than a few seconds:")
    assert all("--run-all" in item.skips[0] for item in items[1:])  # says how to run them
    everything = [_Item("site"), _Item("notebooks"), _Item("slow")]
    conftest.pytest_collection_modifyitems(_Config(run_all=True), everything)
    assert all(item.skips == [] for item in everything)


def test_every_test_module_that_needs_the_site_or_notebooks_is_marked(root):
    """A module that reads the built site or runs notebooks must carry the marker, or a plain
    run on a fresh clone fails."""
    needs = {"test_site.py": "site", "test_browser.py": "browser",
             "test_notebooks.py": "notebooks", "test_grade.py": "notebooks",
             "test_grade_hostile.py": "notebooks"}
    for name, marker in needs.items():
        source = (root / "tests" / name).read_text()
        assert f"pytest.mark.{marker}" in source.split("pytestmark", 1)[-1][:200], name
