"""Lesson helpers: one module per chapter, named with the chapter's slug.

The slugs are the same as in :mod:`cnn_course.checks` (the exercises' checkers) and
:mod:`cnn_course.reference` (the course's own answers): ``conv``, ``activations``,
``pooling``, ``fully_connected``, ``backprop``, ``optimizers``, ``lenet``, ``cifar``, plus
``intro`` for the landing page and ``overview`` for the reading-only overview chapter. A
chapter without helpers of its own has no module here.
"""
