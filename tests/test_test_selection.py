"""What a plain ``python -m pytest`` runs: the heavy tests are skipped, with a reason."""

import subprocess
import sys
import textwrap

import pytest


def _pytest(folder, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q",
                           "-rs", *args, str(folder)], capture_output=True, text=True,
                          timeout=120, cwd=folder)


@pytest.mark.slow  # two runs of pytest in subprocesses
def test_heavy_tests_are_skipped_unless_run_all(tmp_path, root):
    (tmp_path / "conftest.py").write_text((root / "tests" / "conftest.py").read_text())
    (tmp_path / "test_example.py").write_text(textwrap.dedent("""
        import pytest

        def test_unit():
            pass

        @pytest.mark.site
        def test_needs_site():
            raise AssertionError("ran a site test")

        @pytest.mark.notebooks
        def test_runs_notebooks():
            raise AssertionError("ran a notebook test")
    """))
    plain = _pytest(tmp_path)
    assert plain.returncode == 0, plain.stdout
    assert "1 passed, 2 skipped" in plain.stdout
    assert "needs the built site" in plain.stdout and "executes notebooks" in plain.stdout
    assert "--run-all" in plain.stdout  # the reason says how to run them
    everything = _pytest(tmp_path, "--run-all")
    assert "2 failed, 1 passed" in everything.stdout


def test_every_test_module_that_needs_the_site_or_notebooks_is_marked(root):
    """A module that reads the built site or runs notebooks must carry the marker, or a plain
    run on a fresh clone fails."""
    needs = {"test_site.py": "site", "test_browser.py": "browser",
             "test_notebooks.py": "notebooks", "test_grade.py": "notebooks",
             "test_grade_hostile.py": "notebooks"}
    for name, marker in needs.items():
        source = (root / "tests" / name).read_text()
        assert f"pytest.mark.{marker}" in source.split("pytestmark", 1)[-1][:200], name
