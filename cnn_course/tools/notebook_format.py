"""The conventions of the course's notebooks, shared by generation, self-checks and grading.

- An answer in a solution notebook sits between ``### BEGIN SOLUTION`` and
  ``### END SOLUTION`` lines, indented inside a function body; a learner's copy has the stub
  (``# YOUR CODE HERE`` then ``raise NotImplementedError()``) there instead.
- A cell that runs an exercise's checker carries the tag ``check``.
"""

from __future__ import annotations

import re

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
STUB = ("# YOUR CODE HERE", "raise NotImplementedError()")
CHECK_TAG = "check"
#: A BEGIN or END line; ``indent`` is what precedes the ``###``.
MARKER = re.compile(r"^(?P<indent>[ \t]*)### (?P<kind>BEGIN|END) SOLUTION\s*$")
