"""Old module paths, kept importable for one release after the package was regrouped.

Notebooks downloaded before the regrouping import, for example, ``cnn_course.surfaces``; that
name now stands for :mod:`cnn_course.lessons.optimizers`. Importing an old name gives a module
holding the new module's names and a ``FutureWarning`` naming the new path;
``python -m cnn_course.selfcheck`` still runs the self-check.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import warnings
from types import CodeType, ModuleType

from cnn_course.messages import tr

#: Old name -> new name. Remove an entry one release after it was added.
MOVED_MODULES: dict[str, str] = {
    "cnn_course.authoring": "cnn_course.tools.authoring",
    "cnn_course.backprop_figures": "cnn_course.lessons.backprop",
    "cnn_course.benchmark_results": "cnn_course.tools.benchmark_results",
    "cnn_course.cifar": "cnn_course.lessons.cifar",
    "cnn_course.cifar_plots": "cnn_course.lessons.cifar",
    "cnn_course.course_map": "cnn_course.lessons.intro",
    "cnn_course.features": "cnn_course.lessons.fully_connected",
    "cnn_course.kernel_polling": "cnn_course.tools.kernel_polling",
    "cnn_course.notebook_run": "cnn_course.tools.notebook_run",
    "cnn_course.optimizer_runs": "cnn_course.lessons.optimizers",
    "cnn_course.pooling_demo": "cnn_course.lessons.pooling",
    "cnn_course.selfcheck": "cnn_course.tools.selfcheck",
    "cnn_course.surfaces": "cnn_course.lessons.optimizers",
}


class _MovedModuleLoader(importlib.abc.Loader):
    def __init__(self, new_name: str) -> None:
        self.new_name = new_name

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return None  # a plain new module, filled in by exec_module

    def exec_module(self, module: ModuleType) -> None:
        warnings.warn(tr("{old} has moved to {new}; the old name works until the next release "
                         "of the course. Download the chapter's notebook again to get the new "
                         "imports.", old=module.__name__, new=self.new_name),
                      FutureWarning, stacklevel=2)
        target = importlib.import_module(self.new_name)
        module.__dict__.update({name: value for name, value in vars(target).items()
                                if not (name.startswith("__") and name.endswith("__"))})
        module.__doc__ = f"Moved to :mod:`{self.new_name}`."

    def get_code(self, fullname: str) -> CodeType | None:
        """What ``python -m old.name`` runs: the new module's code."""
        spec = importlib.util.find_spec(self.new_name)
        return spec.loader.get_code(self.new_name)  # type: ignore[union-attr]


class _MovedModuleFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname: str, path: object = None, target: object = None
                  ) -> importlib.machinery.ModuleSpec | None:
        new_name = MOVED_MODULES.get(fullname)
        if new_name is None:
            return None
        return importlib.util.spec_from_loader(fullname, _MovedModuleLoader(new_name))


def install() -> None:
    """Let the old names be imported (once per process)."""
    if not any(isinstance(finder, _MovedModuleFinder) for finder in sys.meta_path):
        sys.meta_path.append(_MovedModuleFinder())
