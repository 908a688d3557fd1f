"""The GitHub workflows are valid and run what .ci/run and the README run."""

import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))


def test_workflows_match_the_github_schema():
    assert WORKFLOWS
    tool = shutil.which("check-jsonschema") or str(Path(sys.executable).parent / "check-jsonschema")
    result = subprocess.run([tool, "--builtin-schema", "vendor.github-workflows",
                             *map(str, WORKFLOWS)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def steps(name: str) -> list[str]:
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / name).read_text())
    return [step.get("run", "") for job in workflow["jobs"].values()
            for step in job.get("steps", [])]


def test_test_workflow_runs_the_ci_script_and_ci_runs_the_readme_command():
    assert "bash .ci/run" in steps("tests.yml")
    assert "bash scripts/test.sh" in (ROOT / ".ci" / "run").read_text()
    assert "bash scripts/test.sh" in (ROOT / "README.md").read_text()


def test_pages_workflow_builds_with_the_readme_command():
    assert "bash scripts/build-book.sh" in steps("pages.yml")
    assert "bash scripts/build-book.sh" in (ROOT / "README.md").read_text()
