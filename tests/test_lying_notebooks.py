"""A lying kernel gains nothing: every week's lying notebook (tests/lying_notebooks.py)
scores, check by check, no more than its honest twin, graded in the same TA batch.

The lies: a replaced probe that invents layers and a training record and answers
predictions from what the kernel knows (iris test labels; the CIFAR-10 and IMDB test
splits' stored order), ``predict`` overridden so it disagrees with ``__call__``, answer
cells relabelled in their metadata, a given cell edited, and a given function that the
grader used to call (week 4's ``fit_and_report``) rebound by the answer."""

from __future__ import annotations

import pytest
from conftest import results_of
from lying_notebooks import LIARS

pytestmark = pytest.mark.grading  # every test here reads a grading


def scores(results: dict) -> dict[str, float]:
    return {test["name"]: test["score"] for test in results["tests"]}


@pytest.mark.parametrize("week, liar", [(week, liar) for week in sorted(LIARS)
                                        for liar in LIARS[week]])
def test_a_lie_gains_no_point(graded_class, week, liar):
    out, _ = graded_class(week)
    lying = results_of(out, liar)
    honest = results_of(out, LIARS[week][liar][1])
    assert scores(lying).keys() == scores(honest).keys()
    gained = {name: (honest_score, scores(lying)[name])
              for name, honest_score in scores(honest).items()
              if scores(lying)[name] > honest_score}
    assert not gained, f"the lying notebook gained points on: {gained}"
    # The lies did not come for free elsewhere either, and the twin is not a zero.
    assert lying["score"] <= honest["score"]
    assert honest["score"] > 0


def test_the_grader_says_what_it_did_not_run(graded_class):
    """Week 1's liar edited the given setup cell: the released one ran, and the student
    is told so in the result's output."""
    out, _ = graded_class("week1")
    lying = results_of(out, "lying")
    assert "Not run: cell 2 is an edited copy of the given cell `setup`" in lying["output"]
    assert lying["extra_data"]["not_run"]


def test_week3_lies_about_stored_order_earn_no_accuracy(graded_class):
    """The stored-order answers would score 100 %: the rebuilt, untrained models do not."""
    out, _ = graded_class("week3")
    lying = results_of(out, "lying")
    accuracies = {m["label"]: m["value"] for t in lying["tests"]
                  for m in t.get("extra_data", {}).get("measured", [])
                  if m["label"].endswith("test accuracy")}
    assert accuracies and all(value < 0.6 for value in accuracies.values()), accuracies


def test_week4_rebinding_the_given_fit_does_not_retrain(graded_class):
    """The retraining runs the released fit_and_report in the clean room: the answer's
    least-squares rebinding is not used, so g written into the class still fails."""
    out, _ = graded_class("week4")
    lying = results_of(out, "lying")
    retrains = [t for t in lying["tests"] if "Retrained on throws" in t["name"]]
    assert retrains and all(t["score"] == 0 for t in retrains)
    assert any("is given code" in t["output"] or "must come from the two trainable" in
               t["output"] for t in retrains)
    # Its cells carry no nbgrader metadata: q1 and q2, where it does not lie, score
    # exactly as the twin's, check by check (the given cells ran as released).
    twin = results_of(out, "wrong")
    untouched = {t["name"]: t["score"] for t in twin["tests"]
                 if t["extra_data"]["question"] in ("q1", "q2")}
    assert {t["name"]: t["score"] for t in lying["tests"]
            if t["extra_data"]["question"] in ("q1", "q2")} == untouched
