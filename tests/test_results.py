"""The results model: what the plugin builds is what results.json holds and what every
reader gets back, with Gradescope's check names unchanged."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import jsonschema
import pytest

from autograder.errors import ConfigError
from autograder.grading.results import (NOT_RUN, CheckResult, GradingResult, gradebook_csv,
                                        read_results, write_results)
from autograder.weeks import Week

SCHEMA = json.loads((Path(__file__).parent / "gradescope_results.schema.json").read_text())

WEEK = SimpleNamespace(name="week9", title="Week 9: a test week", questions={
    "q1": SimpleNamespace(title="A number"), "q2": SimpleNamespace(title="A label")},
    leaderboard=())


def graded() -> GradingResult:
    tier = CheckResult(question="q1", check="Score reaches 50%", max_score=2.0,
                       question_title="A number")
    tier.measure("score", 0.75, 0.5, "score 75% (needs 50%)")
    tier.passed()
    label = CheckResult(question="q2", check="The label is 'cat'", max_score=1.0,
                        question_title="A label", visibility="after_due_date")
    label.failed("the label is 'dog'")
    left = CheckResult(question="q2", check="The label is lower case", max_score=1.0,
                       question_title="A label")
    return GradingResult.of(WEEK, [tier, label, left], seconds=12.34,
                            extra={"final": True, "mode": "bundle", "not_run": ["cell 3"]})


def test_names_are_gradescopes_question_title_and_check():
    # Gradescope's history and rubrics key on these strings: they must not change.
    assert [c.name for c in graded().checks] == [
        "q1 (A number): Score reaches 50%", "q2 (A label): The label is 'cat'",
        "q2 (A label): The label is lower case"]


def test_what_is_written_reads_back_the_same(tmp_path):
    result = graded()
    write_results(tmp_path / "results.json", result)
    again = read_results(tmp_path / "results.json")
    assert again.to_json() == result.to_json()
    assert (again.score, again.max_score, again.mode, again.final) == (2.0, 4.0, "bundle", True)
    assert again.question_scores() == {"q1": (2.0, 2.0), "q2": (0.0, 2.0)}
    assert again.checks[0].figures() == {"score": 0.75}
    assert [c.check for c in again.checks] == [c.check for c in result.checks]


def test_results_json_is_gradescopes_format(tmp_path):
    write_results(tmp_path / "results.json", graded())
    data = json.loads((tmp_path / "results.json").read_text())
    assert data["score"] == 2.0 and data["execution_time"] == 12.3
    assert data["output"].splitlines() == [
        "Week 9: a test week: 2 / 4 points", "  q1 A number: 2 / 2", "  q2 A label: 0 / 2",
        "Not run: cell 3"]
    first, second, third = data["tests"]
    assert first["output"] == "score 75% (needs 50%)"  # a measured figure's sentence
    assert first["extra_data"]["measured"] == [{"label": "score", "value": 0.75,
                                                "threshold": 0.5}]
    assert second["visibility"] == "after_due_date" and second["output"] == "the label is 'dog'"
    assert third["output"] == NOT_RUN
    assert data["extra_data"] == {"week": "week9", "final": True, "mode": "bundle",
                                  "not_run": ["cell 3"]}


def test_a_measured_sentence_is_not_repeated_when_read_and_written_again(tmp_path):
    write_results(tmp_path / "a.json", graded())
    write_results(tmp_path / "b.json", read_results(tmp_path / "a.json"))
    assert (tmp_path / "a.json").read_text() == (tmp_path / "b.json").read_text()


def test_an_older_results_json_without_check_titles_still_reads(tmp_path):
    data = graded().to_json()
    for test in data["tests"]:
        del test["extra_data"]["check"]
    (tmp_path / "results.json").write_text(json.dumps(data))
    again = read_results(tmp_path / "results.json")
    assert [c.check for c in again.checks] == [c.name for c in again.checks]
    assert again.score == 2.0


def test_what_is_not_a_results_json_reads_as_none(tmp_path):
    path = tmp_path / "results.json"
    assert read_results(path) is None
    for text in ("", "{not json", "[]", '{"tests": [{"name": 1}]}', '{"tests": 3}',
                 '{"tests": [{"name": "a", "score": "x", "max_score": 1}]}'):
        path.write_text(text)
        assert read_results(path) is None, text


def test_not_graded_is_one_failed_entry_saying_why():
    result = GradingResult.not_graded("week9", "Week 9", "no notebook")
    assert [c.name for c in result.checks] == ["grading"]
    assert result.to_json()["tests"][0]["output"] == "not graded: no notebook"
    assert result.output == "Week 9: not graded: no notebook" and result.score == 0


def test_the_gradebook_reads_the_model():
    rows = gradebook_csv(WEEK, {"ann": graded()}).splitlines()
    assert rows == ["submission,q1,q2,total,max,provenance,mode,audit", "ann,2,0,2,4,,bundle,"]


# -- Gradescope's leaderboard ------------------------------------------------------------
BOARD = """
notebook = "w.ipynb"
[questions.q1]
title = "CNN"
[questions.q2]
title = "IMDB"
[[leaderboard]]
name = "CNN accuracy"
measured = "cnn_model test accuracy"
[[leaderboard]]
name = "IMDB accuracy"
measured = "imdb_model test accuracy"
[[leaderboard]]
name = "CNN parameters"
measured = "cnn_model parameters"
order = "asc"
"""


def measured_check(question: str, figures: dict, visibility: str) -> CheckResult:
    check = CheckResult(question=question, check="figures", max_score=1.0,
                        question_title=question, visibility=visibility)
    for label, value in figures.items():
        check.measure(label, value, None, f"{label}: {value}")
    check.failed("below the threshold")  # a failed check's figures count too
    return check


def test_the_leaderboard_holds_the_figures_students_see_at_once(tmp_path):
    """Students see the leaderboard at once: a figure whose check they see only after the
    due date (or never) stays off it."""
    (tmp_path / "week.toml").write_text(BOARD)
    week = Week.load(tmp_path)
    cnn = measured_check("q1", {"cnn_model test accuracy": 0.64, "cnn_model parameters": 34282},
                         "visible")
    imdb = measured_check("q2", {"imdb_model test accuracy": 0.91}, "after_due_date")
    result = GradingResult.of(week, [cnn, imdb], seconds=1.0, extra={})
    data = result.to_json()
    assert data["leaderboard"] == [
        {"name": "CNN accuracy", "value": 0.64, "order": "desc"},
        {"name": "CNN parameters", "value": 34282, "order": "asc"}]
    jsonschema.validate(data, SCHEMA)
    write_results(tmp_path / "results.json", result)
    assert read_results(tmp_path / "results.json").to_json() == data
    # A week without a leaderboard writes none.
    assert "leaderboard" not in graded().to_json()


@pytest.mark.parametrize("table, message", [
    ('name = "CNN"', "has a name and the label of a figure"),
    ('name = "CNN"\nmeasured = 3', "has a name and the label of a figure"),
    ('name = "CNN"\nmeasured = "x"\nwhere = "top"', "has a name and the label of a figure"),
    ('name = "CNN"\nmeasured = "x"\norder = "up"', "order is \"asc\" or \"desc\", not 'up'"),
])
def test_a_malformed_leaderboard_is_refused(tmp_path, table, message):
    (tmp_path / "week.toml").write_text(BOARD.split("[[leaderboard]]")[0]
                                        + "[[leaderboard]]\n" + table + "\n")
    with pytest.raises(ConfigError, match=message):
        Week.load(tmp_path)
