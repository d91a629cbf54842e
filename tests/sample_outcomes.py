"""What grading a sample must give, read from the file beside it.

Each sample ``source/<week>/samples/<name>.ipynb`` has ``<name>.toml`` next to it, written
by whoever wrote the sample: what the sample gets wrong, and for each check that does not
earn its points the score it gets and words its message must contain::

    about = "q1 uses 16 sigmoid units"

    [[check]]            # one check, by its name as results.json shows it ...
    name = "q1 (Sequential from a list): Two Dense layers: 8 hidden units, 3 outputs"
    score = 0
    says = ["Dense(16, sigmoid), Dense(3, softmax)"]

    [[check]]            # ... or every check of a question
    question = "q3"
    score = 0
    says = ["cell 12 is not answered yet"]

    [output]             # words of results.json's top-level message (optional)
    says = ["Not run: cell 13 is an edited copy of the given cell `q3_train`"]

Every check not listed must earn its full points. A week's reference
(``source/<week>/<week>.ipynb``) has no file: it earns full marks. The checks and their
points come from the compiled week's manifest, so the files repeat no points.
tests/test_samples.py grades every week's samples and reference against this.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from autograder.weeks import Course, Manifest

CHECK_KEYS = {"name", "question", "score", "says"}


@dataclass
class ExpectedCheck:
    score: float
    says: list[str] = field(default_factory=list)


@dataclass
class Expected:
    """The outcome a sample must have: check name -> its score and words."""

    about: str
    checks: dict[str, ExpectedCheck]
    output_says: list[str]

    @classmethod
    def full_marks(cls, manifest: Manifest) -> Expected:
        return cls("the reference", {c["name"]: ExpectedCheck(c["points"])
                                     for c in manifest.checks}, [])

    @classmethod
    def load(cls, path: Path, manifest: Manifest) -> Expected:
        """Read ``path`` against the week's checks; ValueError says what is wrong."""
        data = tomllib.loads(path.read_text())
        unknown = set(data) - {"about", "check", "output"}
        if unknown:
            raise ValueError(f"{path}: unknown keys {sorted(unknown)}")
        expected = cls.full_marks(manifest)
        expected.about = data.get("about", "")
        expected.output_says = list(data.get("output", {}).get("says", []))
        for entry in data.get("check", []):
            if set(entry) - CHECK_KEYS or ("name" in entry) == ("question" in entry) \
                    or "score" not in entry:
                raise ValueError(f"{path}: each [[check]] has a name or a question, a score, "
                                 f"and may have says: {entry}")
            named = [c for c in manifest.checks if c["name"] == entry.get("name")
                     or c["question"] == entry.get("question")]
            if not named:
                raise ValueError(f"{path}: no check of {manifest.week} is "
                                 f"{entry.get('name') or entry.get('question')!r}")
            for check in named:
                if not 0 <= entry["score"] <= check["points"]:
                    raise ValueError(f"{path}: {check['name']!r} is worth {check['points']:g}, "
                                     f"not {entry['score']}")
                expected.checks[check["name"]] = ExpectedCheck(entry["score"],
                                                               list(entry.get("says", [])))
        return expected

    def points(self, manifest: Manifest) -> dict[str, float]:
        """Points per question."""
        by_name = {c["name"]: c["question"] for c in manifest.checks}
        points: dict[str, float] = {}
        for name, check in self.checks.items():
            points[by_name[name]] = points.get(by_name[name], 0.0) + check.score
        return points

    def differences(self, results: dict) -> list[str]:
        """How ``results`` (results.json) departs from this outcome; empty if it does not."""
        found = {t["name"]: t for t in results["tests"]}
        problems = [f"missing check {name!r}" for name in self.checks if name not in found]
        problems += [f"unexpected check {name!r}" for name in found if name not in self.checks]
        for name, check in self.checks.items():
            if name not in found:
                continue
            got = found[name]
            if got["score"] != check.score:
                problems.append(f"{name!r} scored {got['score']:g}, not {check.score:g}: "
                                f"{got.get('output', '')[:400]}")
            problems += [f"{name!r} does not say {words!r}: {got.get('output', '')[:400]}"
                         for words in check.says if words not in got.get("output", "")]
        problems += [f"results.json's message does not say {words!r}"
                     for words in self.output_says if words not in results.get("output", "")]
        return problems


def samples(root: Path) -> list[tuple[str, str]]:
    """(week, sample name) of every week's samples."""
    course = Course(root)
    return [(week, path.stem) for week in course.weeks()
            for path in sorted((course.source(week) / "samples").glob("*.ipynb"))]


def expected(root: Path, week: str, name: str) -> Expected:
    """The outcome of sample ``name`` of ``week``, or of the reference (``name == week``)."""
    course = Course(root)
    manifest = Manifest.load(course.built_week(week))
    if name == week:
        return Expected.full_marks(manifest)
    return Expected.load(course.source(week) / "samples" / f"{name}.toml", manifest)


def expected_points(root: Path, week: str, name: str) -> dict[str, float]:
    """Points per question sample ``name`` of ``week`` must get."""
    manifest = Manifest.load(Course(root).built_week(week))
    return expected(root, week, name).points(manifest)
