"""Auto-grading for the "Advanced machine learning" course.

The package is split along the trust boundary:

* ``autograder.sandbox`` is the only code that starts or talks to student code.
  Everything that runs inside the student's kernel lives in ``sandbox/probe.py``.
* ``autograder.grading`` is the trusted side: the pytest plugin that runs hidden
  tests, the oracle client that asks the student's kernel for plain data, and the
  result writers. It never imports, unpickles or evaluates what student code made.
"""

__version__ = "0.1.0"

# nbformat imports jsonschema, which imports rfc3987_syntax when it is installed (it
# is, for jupyter-events) and builds a parser for IRIs there: 1.3-1.6 s of every
# process that reads a notebook, three of them per grading in Docker (a quarter of a
# week-1 grading from a bundle). Nothing here checks IRIs, so that import is refused
# and jsonschema leaves out the one format checker that needs it.
import sys as _sys

_sys.modules.setdefault("rfc3987_syntax", None)
del _sys
