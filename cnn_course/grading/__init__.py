"""Grading learners' notebooks with the course's own checkers (``python -m cnn_course.grade``).

- :mod:`~cnn_course.grading.chapters`: the exercises, read from the solution notebooks;
- :mod:`~cnn_course.grading.notebook`: reading a submission without trusting it;
- :mod:`~cnn_course.grading.runner` and :mod:`~cnn_course.grading.worker`: the worker process
  that runs the learner's cells, then the checks;
- :mod:`~cnn_course.grading.snapshot`: the package source the worker imports;
- :mod:`~cnn_course.grading.flags`: code worth an instructor's look;
- :mod:`~cnn_course.grading.grader`, :mod:`~cnn_course.grading.results`,
  :mod:`~cnn_course.grading.report`: scores, reasons, and the table, CSV and JSON.
"""
