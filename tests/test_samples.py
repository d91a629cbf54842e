"""Every week's reference and samples, graded as a TA grades them, against the outcome
written beside each sample (``source/<week>/samples/<name>.toml``, see
tests/sample_outcomes.py). A new week's samples are graded here without new test code."""

from __future__ import annotations

import copy
import importlib

import pytest
from conftest import ROOT, results_of
from sample_outcomes import Expected, expected, samples

from autograder.weeks import Course, Manifest

WEEKS = Course(ROOT).weeks()
SAMPLES = samples(ROOT)


@pytest.mark.grading
@pytest.mark.parametrize("week, name", [*[(w, w) for w in WEEKS], *SAMPLES],
                         ids=lambda value: value)
def test_grades_as_expected(graded_class, week, name):
    """The reference (``name == week``) earns full marks; each sample what its file says."""
    out, _ = graded_class(week)
    results = results_of(out, name)
    differences = expected(ROOT, week, name).differences(results)
    assert not differences, "\n".join(differences)


# -- the sample notebooks and outcome files themselves (fast) --------------------------
@pytest.mark.parametrize("week", [w for w in WEEKS
                                  if (ROOT / "tests" / f"{w}_submissions.py").exists()])
def test_samples_made_by_code_are_up_to_date(week, tmp_path):
    """A week may make its samples from the release with tests/<week>_submissions.py (so
    that they follow the release); then the committed ones must be what it makes."""
    importlib.import_module(f"{week}_submissions").write_samples(tmp_path)
    committed = sorted((Course(ROOT).source(week) / "samples").glob("*.ipynb"))
    assert sorted(p.name for p in tmp_path.glob("*.ipynb")) == [p.name for p in committed]
    for path in committed:
        assert (tmp_path / path.name).read_text() == path.read_text(), (
            f"{path.name} is stale: run .venv/bin/python tests/{week}_submissions.py")


@pytest.mark.parametrize("week", WEEKS)
def test_every_sample_has_an_outcome_that_names_the_weeks_checks(week):
    folder = Course(ROOT).source(week) / "samples"
    notebooks = {p.stem for p in folder.glob("*.ipynb")}
    outcomes = {p.stem for p in folder.glob("*.toml")}
    assert notebooks == outcomes, f"each sample in {folder} needs <name>.toml beside it"
    for name in sorted(notebooks):
        expected(ROOT, week, name)  # raises on a check that does not exist or a bad score


def test_an_outcome_file_naming_an_unknown_check_is_refused(tmp_path):
    manifest = Manifest.load(Course(ROOT).built_week("week1"))
    path = tmp_path / "sample.toml"
    path.write_text('[[check]]\nname = "q1: not a check of week 1"\nscore = 0\n')
    with pytest.raises(ValueError, match="no check of week1"):
        Expected.load(path, manifest)
    path.write_text('[[check]]\nquestion = "q1"\nscore = 7\n')
    with pytest.raises(ValueError, match="is worth 1"):
        Expected.load(path, manifest)


def test_differences_name_every_departure():
    """A results.json that departs from its outcome in score, words or checks is caught."""
    outcome = expected(ROOT, "week1", "wrong")
    manifest = Manifest.load(Course(ROOT).built_week("week1"))
    results = {"output": "Not run: cell 13 is an edited copy of the given cell `q3_train`",
               "tests": [{"name": name, "score": check.score, "output": " ".join(check.says)}
                         for name, check in outcome.checks.items()]}
    assert outcome.differences(results) == []

    changed = copy.deepcopy(results)
    changed["tests"][0]["score"] = 0
    changed["tests"].pop()
    changed["tests"].append({"name": "q9: extra", "score": 1, "output": ""})
    changed["output"] = ""
    found = outcome.differences(changed)
    assert any("scored 0, not 1" in line for line in found), found
    assert any(line.startswith("missing check") for line in found)
    assert any(line.startswith("unexpected check 'q9: extra'") for line in found)
    assert any("message does not say" in line for line in found)

    quiet = copy.deepcopy(results)
    failing = next(t for t in quiet["tests"] if t["score"] == 0)
    failing["output"] = "wrong for another reason"
    assert any("does not say" in line for line in outcome.differences(quiet))
    assert outcome.points(manifest) == {"q1": 4, "q2": 5, "q3": 6}
