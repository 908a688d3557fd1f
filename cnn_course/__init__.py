"""Helpers for the course "Convolutional neural networks from first principles, in PyTorch".

The layers, from the bottom up (each may import only those above it in this list):

- the shared library, at the top level: :mod:`~cnn_course.device`, :mod:`~cnn_course.config`,
  :mod:`~cnn_course.data`, :mod:`~cnn_course.arith`, :mod:`~cnn_course.models`,
  :mod:`~cnn_course.summary`, :mod:`~cnn_course.training`, :mod:`~cnn_course.plots`,
  :mod:`~cnn_course.images`, :mod:`~cnn_course.timing`, :mod:`~cnn_course.messages`,
  :mod:`~cnn_course.figure_translation`;
- :mod:`~cnn_course.reference` (the course's answers) and :mod:`~cnn_course.checks` (the
  exercises' checkers), one module per chapter slug;
- :mod:`~cnn_course.lessons` (what each chapter's notebook and page use) and
  :mod:`~cnn_course.widgets` (the explorers);
- :mod:`~cnn_course.tools` (notebook generation and runs, self-check, benchmark results) and
  :mod:`~cnn_course.grading` with its command, :mod:`~cnn_course.grade`.
"""

from cnn_course import _moved
from cnn_course.device import describe_device, get_device, seed_everything

_moved.install()

__version__ = "0.1.0"
__all__ = ["describe_device", "get_device", "seed_everything"]
