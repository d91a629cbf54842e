"""Everything that starts, confines or talks to untrusted student code.

``isolation`` decides what confinement this machine allows, ``confine`` and
``kernel`` start the student's kernel inside it, ``execute`` runs the notebook's
cells with time and output budgets, and ``probe`` is the small module that
answers the grader's questions from *inside* the kernel (so it is untrusted too).
"""
