"""Serve the course package from an in-memory copy of its source, taken when grading starts.

The grader reads every ``.py`` file of ``cnn_course`` once, before any submission runs, and
each worker process imports the package from that copy instead of from disk. A notebook that
rewrites the package's files (``cnn_course/checks/conv.py``, say) therefore changes nothing for
the checks of its own grading or of any other submission.

This module is also executed on its own inside a worker before anything else is imported, so
it uses the standard library only and defines no dataclasses.
"""

import importlib.abc
import importlib.machinery
import sys
from pathlib import Path

PACKAGE = "cnn_course"


def take_snapshot(package_dir: Path) -> dict[str, str]:
    """The source of every module of the package, keyed ``"cnn_course/checks/conv.py"``."""
    package_dir = Path(package_dir)
    return {path.relative_to(package_dir.parent).as_posix(): path.read_text(encoding="utf-8")
            for path in sorted(package_dir.rglob("*.py")) if "__pycache__" not in path.parts}


class SnapshotFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Find and load ``cnn_course`` and its submodules from a source snapshot.

    ``root`` is the folder that holds the package on disk: modules get their real ``__file__``
    (so tracebacks and data files next to a module still work), but their code comes from the
    snapshot.
    """

    def __init__(self, root: str, sources: dict) -> None:
        self.root = Path(root)
        self.sources = dict(sources)

    def _key(self, fullname: str):
        base = fullname.replace(".", "/")
        if base + "/__init__.py" in self.sources:
            return base + "/__init__.py", True
        if base + ".py" in self.sources:
            return base + ".py", False
        return None, False

    def find_spec(self, fullname, path=None, target=None):
        if fullname != PACKAGE and not fullname.startswith(PACKAGE + "."):
            return None
        key, is_package = self._key(fullname)
        if key is None:
            return None
        origin = str(self.root / key)
        spec = importlib.machinery.ModuleSpec(fullname, self, origin=origin,
                                              is_package=is_package)
        spec.has_location = True
        if is_package:
            spec.submodule_search_locations = [str(Path(origin).parent)]
        return spec

    def create_module(self, spec):
        return None

    def exec_module(self, module) -> None:
        key, _ = self._key(module.__spec__.name)
        code = compile(self.sources[key], str(self.root / key), "exec", dont_inherit=True)
        exec(code, module.__dict__)

    def get_source(self, fullname: str):
        key, _ = self._key(fullname)
        return None if key is None else self.sources[key]


def install(root: str, sources: dict) -> SnapshotFinder:
    """Put a finder for the snapshot first on ``sys.meta_path`` and return it."""
    finder = SnapshotFinder(root, sources)
    sys.meta_path.insert(0, finder)
    return finder
