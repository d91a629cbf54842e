"""Auto-grading for the "Advanced machine learning" course.

The package is split along the trust boundary:

* ``autograder.sandbox`` is the only code that starts or talks to student code.
  Everything that runs inside the student's kernel lives in ``sandbox/probe.py``.
* ``autograder.grading`` is the trusted side: the pytest plugin that runs hidden
  tests, the oracle client that asks the student's kernel for plain data, and the
  result writers. It never imports, unpickles or evaluates what student code made.
"""

__version__ = "0.1.0"
