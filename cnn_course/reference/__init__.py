"""The course's own answers to the exercises.

Checkers compare against PyTorch and never import this package; notebooks fall back to these
answers when a learner skips an exercise, so that the rest of the notebook still runs. A module
may also re-export a lesson helper that its notebook uses but that answers no exercise, such as
Chapter 5's tiny CNN (from :mod:`cnn_course.lessons.backprop`).
"""
