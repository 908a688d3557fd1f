"""Helpers for the course "Convolutional neural networks from first principles, in PyTorch".

One module per concern: :mod:`~cnn_course.device`, :mod:`~cnn_course.data`,
:mod:`~cnn_course.training`, :mod:`~cnn_course.arith`, :mod:`~cnn_course.checks`,
:mod:`~cnn_course.widgets`, :mod:`~cnn_course.plots`.
"""

from cnn_course.device import describe_device, get_device, seed_everything

__version__ = "0.1.0"
__all__ = ["describe_device", "get_device", "seed_everything"]
