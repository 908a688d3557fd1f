"""Tools for authors, instructors and the test suite, not used by the lessons themselves.

- :mod:`~cnn_course.tools.notebook_format`: the answer markers and the check tag;
- :mod:`~cnn_course.tools.authoring`: learner notebooks generated from the solutions;
- :mod:`~cnn_course.tools.notebook_run` and :mod:`~cnn_course.tools.kernel_polling`: running
  a notebook in a fresh kernel;
- :mod:`~cnn_course.tools.selfcheck`: a learner's command that runs a notebook's checks;
- :mod:`~cnn_course.tools.benchmark_results`: the results files of ``benchmarks/``.
"""
