"""scripts/test.sh, run on a copy whose tools are stand-ins: it stops at once without Chromium
or bubblewrap, can leave the browser tests out, and warns when the suite overruns its time
budget."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

STAND_IN = """#!/bin/sh
echo "{name} $*" >> "$FAKE_LOG"
if [ "{name}" = python ] && [ -n "${{FAKE_PYTEST_SECONDS:-}}" ]; then
  {sleep} "$FAKE_PYTEST_SECONDS"
fi
exit 0
"""


def _executable(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")
    path.chmod(0o755)


@pytest.fixture
def fake_checkout(root, tmp_path):
    """A copy of scripts/test.sh whose ensure-env.sh puts stand-ins for ruff, python, bash and
    bwrap first on the PATH; the PATH holds no Chromium unless a test adds one."""
    if os.name != "posix" or not shutil.which("bash"):
        pytest.skip("scripts/test.sh is a bash script")
    (tmp_path / "scripts").mkdir()
    shutil.copy2(root / "scripts" / "test.sh", tmp_path / "scripts" / "test.sh")
    tools = tmp_path / "bin"
    tools.mkdir()
    for real in ("dirname",):
        (tools / real).symlink_to(shutil.which(real))
    for name in ("ruff", "python", "bash", "bwrap"):
        _executable(tools / name, STAND_IN.format(name=name, sleep=shutil.which("sleep")))
    (tmp_path / "scripts" / "ensure-env.sh").write_text(
        f'cd "{tmp_path}"\nexport PATH="{tools}"\n', encoding="utf-8")
    return tmp_path


def _run(checkout: Path, **env: str) -> tuple[subprocess.CompletedProcess, list[str]]:
    log = checkout / "calls.log"
    environment = {"PATH": str(checkout / "bin"), "FAKE_LOG": str(log), **env}
    result = subprocess.run([shutil.which("bash"), str(checkout / "scripts" / "test.sh")],
                            cwd=checkout, env=environment, capture_output=True, text=True,
                            timeout=60)
    calls = log.read_text(encoding="utf-8").splitlines() if log.exists() else []
    return result, calls


def test_without_chromium_it_stops_before_anything_runs(fake_checkout):
    result, calls = _run(fake_checkout)
    assert result.returncode == 1 and calls == []
    assert "the browser tests need Chromium" in result.stderr
    assert "apt-get install chromium" in result.stderr
    assert "CNN_COURSE_SKIP_BROWSER=1" in result.stderr


def test_without_bubblewrap_it_stops_before_anything_runs(fake_checkout):
    (fake_checkout / "bin" / "bwrap").unlink()
    result, calls = _run(fake_checkout, CNN_COURSE_SKIP_BROWSER="1")
    assert result.returncode == 1 and calls == []
    assert "need bubblewrap" in result.stderr and "apt-get install" in result.stderr


@pytest.mark.parametrize("how", ["on the PATH", "named by CNN_COURSE_CHROMIUM"])
def test_with_chromium_the_whole_suite_runs(fake_checkout, how):
    browser = fake_checkout / ("bin/chromium" if how == "on the PATH" else "elsewhere/chrome")
    browser.parent.mkdir(exist_ok=True)
    _executable(browser, "#!/bin/sh\nexit 0\n")
    env = {} if how == "on the PATH" else {"CNN_COURSE_CHROMIUM": str(browser)}
    result, calls = _run(fake_checkout, **env)
    assert result.returncode == 0, result.stderr
    (pytest_call,) = [c for c in calls if c.startswith("python -m pytest")]
    assert "not browser" not in pytest_call
    assert "--run-all" in pytest_call.split()  # the site, browser and notebook tests too
    assert "whole suite: " in result.stdout and "WARNING" not in result.stderr


def test_the_browser_tests_can_be_left_out(fake_checkout):
    result, calls = _run(fake_checkout, CNN_COURSE_SKIP_BROWSER="1")
    assert result.returncode == 0, result.stderr
    assert "the browser tests (marked browser) are skipped" in result.stdout
    (pytest_call,) = [c for c in calls if c.startswith("python -m pytest")]
    assert " -m not browser" in pytest_call


def test_a_suite_over_its_budget_ends_with_a_warning(fake_checkout):
    result, _ = _run(fake_checkout, CNN_COURSE_SKIP_BROWSER="1", CNN_COURSE_TEST_BUDGET_S="0",
                     FAKE_PYTEST_SECONDS="1.1")
    assert result.returncode == 0, result.stderr
    assert re.search(r"WARNING: the test suite took [1-9][0-9]* s, more than its budget of 0 s",
                     result.stderr), result.stderr


def test_the_budget_is_fifteen_minutes_by_default(root):
    assert 'budget="${CNN_COURSE_TEST_BUDGET_S:-900}"' in (root / "scripts" / "test.sh").read_text()
