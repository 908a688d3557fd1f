"""Grading learners' notebooks with the course's own checkers (``python -m cnn_course.grade``).

A learner's code runs only inside an operating-system sandbox; what comes out of it is data,
and the verdicts are computed outside by code that never runs learner code.

- :mod:`~cnn_course.grading.notebook`: reading a submission without trusting it;
- :mod:`~cnn_course.grading.chapters`: the exercises, read from the solution notebooks;
- :mod:`~cnn_course.grading.sandbox`: the bubblewrap sandbox and its outside monitor;
- :mod:`~cnn_course.grading.runner`: one attempt at a notebook, under the grader's limits;
- :mod:`~cnn_course.grading.worker`: what runs inside: the cells, then the recorded checks;
- :mod:`~cnn_course.grading.protocol`, :mod:`~cnn_course.grading.rebuild` and
  :mod:`~cnn_course.grading.recording`: the observations as validated, size-capped data;
- :mod:`~cnn_course.grading.judge`: the checkers, run outside on those observations;
- :mod:`~cnn_course.grading.grader`: one notebook from file to score, many in parallel;
- :mod:`~cnn_course.grading.flags`: code worth an instructor's look;
- :mod:`~cnn_course.grading.results`, :mod:`~cnn_course.grading.report`,
  :mod:`~cnn_course.grading.safe_text`, :mod:`~cnn_course.grading.shards` and
  :mod:`~cnn_course.grading.merge`: scores, reasons, the table, CSV and JSON, shards.
"""
