"""The package as pip installs it from git (the notebooks' Colab cell): a wheel built from the
repository holds the widgets' front-end files and declares what the package imports."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

SOURCES = ("pyproject.toml", "README.md", "LICENSE", "cnn_course")


def _setuptools_major() -> int:
    try:
        import setuptools
    except ImportError:
        return 0
    return int(setuptools.__version__.split(".")[0])


@pytest.fixture(scope="module")
def wheel(root, tmp_path_factory) -> zipfile.ZipFile:
    """Build a wheel offline, without build isolation, from a copy of the package's sources."""
    if _setuptools_major() < 77:
        pytest.skip("building the wheel offline needs setuptools>=77 in this environment "
                    "(pyproject.toml's build requirement); pip would otherwise download it")
    tmp = tmp_path_factory.mktemp("wheel")
    source = tmp / "src"
    source.mkdir()
    for name in SOURCES:
        if (root / name).is_dir():
            shutil.copytree(root / name, source / name,
                            ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy2(root / name, source / name)
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
         "--quiet", "--wheel-dir", str(tmp / "dist"), str(source)],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    (built,) = (tmp / "dist").glob("cnn_course-*.whl")
    with zipfile.ZipFile(built) as archive:
        yield archive


def test_wheel_holds_every_data_file_of_the_package(root, wheel):
    names = set(wheel.namelist())
    data_files = sorted(path.relative_to(root).as_posix()
                        for path in (root / "cnn_course").rglob("*")
                        if path.is_file() and path.suffix not in (".py", ".pyc"))
    assert "cnn_course/widgets/js/explorers.css" in data_files
    assert [name for name in data_files if name.endswith(".js")]
    assert [name for name in data_files if name not in names] == []


def test_wheel_declares_what_the_package_imports(wheel):
    (metadata_name,) = [n for n in wheel.namelist() if n.endswith(".dist-info/METADATA")]
    metadata = Parser().parsestr(wheel.read(metadata_name).decode("utf-8"))
    required = {line.split(";")[0].split(">")[0].split("=")[0].split("<")[0].strip().lower()
                for line in metadata.get_all("Requires-Dist", [])}
    assert {"anywidget", "ipywidgets", "nbclient", "nbformat", "torch"} <= required
    assert metadata["License-Expression"] == "MIT"
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in wheel.namelist())


def test_build_requirement_supports_the_license_string(root):
    text = (root / "pyproject.toml").read_text(encoding="utf-8")
    assert 'license = "MIT"' in text and 'requires = ["setuptools>=77"]' in text
    assert Path(root / "LICENSE").read_text(encoding="utf-8").startswith("MIT License")
