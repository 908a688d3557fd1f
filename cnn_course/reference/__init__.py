"""The course's own answers to the exercises.

Checkers compare against PyTorch, not against these; notebooks fall back to them when a
learner skips an exercise, so that the rest of the notebook still runs.
"""
