"""Module paths from before the package was regrouped still import, for one release."""

import importlib
import subprocess
import sys

import pytest

from cnn_course._moved import MOVED_MODULES


@pytest.mark.parametrize("old, new", sorted(MOVED_MODULES.items()))
def test_an_old_path_gives_the_new_module_names_and_says_where_it_moved(old, new):
    sys.modules.pop(old, None)
    with pytest.warns(FutureWarning, match=f"{old} has moved to {new}"):
        module = importlib.import_module(old)
    target = importlib.import_module(new)
    public = [name for name in vars(target) if not name.startswith("_")]
    assert public and all(getattr(module, name) is getattr(target, name) for name in public)
    assert importlib.util.find_spec(new).origin.startswith(str(importlib.util.find_spec(
        "cnn_course").submodule_search_locations[0]))


def test_old_from_imports_of_a_notebook_still_work():
    for old in ("cnn_course.surfaces", "cnn_course.optimizer_runs", "cnn_course.cifar"):
        sys.modules.pop(old, None)
    with pytest.warns(FutureWarning):
        from cnn_course.cifar import Recipe, improved_cnn  # noqa: F401
        from cnn_course.optimizer_runs import FunctionOptimizer  # noqa: F401
        from cnn_course.surfaces import SURFACES, race  # noqa: F401
    assert "ravine" in SURFACES


def test_no_old_path_is_still_a_file_and_unknown_names_still_fail():
    for old in MOVED_MODULES:
        spec = importlib.util.find_spec(old)
        assert spec.origin is None or "_moved" in repr(spec.loader), old  # not a real file
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("cnn_course.no_such_module")


def test_the_old_selfcheck_command_still_runs():
    result = subprocess.run([sys.executable, "-m", "cnn_course.selfcheck", "--help"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "notebooks" in result.stdout
