"""Written answers: questions that need words, graded by TAs.

* ``questions``: which markdown cells are written answers (nbgrader's manually graded
  answer cells), with their points, prompt and rubric; the compiler puts them in the
  week's manifest, never in the release.
* ``answers``: a submission's answers, read from its notebook as text when it is graded
  (``OUT/<name>/written.json``); the notebook is never run for them.
* ``pages``: the TA's pages, one per question: student markdown rendered without raw
  HTML, links restricted to http(s)/mailto, and math as MathML made here, so that the
  pages work with scripts disabled and a policy that forbids them.
* ``scores``: the sheet TAs fill in (written.csv), checked as a whole before anything
  changes, and the scores kept in ``OUT/written/scores.json``, from which every
  results.json gets its manual entries (again after a regrade).
* ``pdf``: one PDF per submission, a page per question, through headless Chromium.
"""
