"""What the student's kernel hands over once its notebook has run: data only.

The kernel is asked, once each, to save the week's models (``[exports] models``
in week.toml) as Keras archives into its sandbox's outbox, and for the plain
values and figure data the checks read. The archives are read without trusting
them (``Sandbox.read_outbox``: no links, size cap) and checked as data
(``archive.check_archive``) before any clean room loads them. Then the kernel is
stopped. Whatever cannot be had is kept as a message for the checks that need it,
so one bad model costs only the points that depend on it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from autograder.grading.archive import ArchiveRefused, CheckedArchive, check_archive
from autograder.grading.oracle import OracleError, ProbeClient
from autograder.sandbox.protocol import ARCHIVE_SUFFIX, MAX_ARCHIVE_BYTES
from autograder.sandbox.session import KernelSession
from autograder.weeks import Week

@dataclass
class Export:
    archives: dict[str, CheckedArchive] = field(default_factory=dict)
    claims: dict[str, dict] = field(default_factory=dict)  # model -> recorded training facts
    values: dict[str, object] = field(default_factory=dict)
    figures: list | None = None  # oracle.Axes lists, when the week exports figures
    images: list[bytes] = field(default_factory=list)  # rendered figures, for feedback
    problems: dict[str, str] = field(default_factory=dict)  # name -> why it is unavailable


def export(session: KernelSession, week: Week,
           own_classes: dict[str, frozenset] | None = None) -> Export:
    """``own_classes``: question -> classes its room defines (``cleanroom.own_classes``)."""
    # A probe that never answers costs this once: the session then refuses the rest.
    client = ProbeClient(session, timeout=week.limits.request_timeout)
    found = Export()
    try:
        session.sandbox.clear_outbox()
    except OSError as error:
        found.problems.update({name: f"could not prepare the outbox ({error})"
                               for name in week.exports.models})
    for name in week.exports.models:
        if name in found.problems:
            continue
        own = (own_classes or {}).get(week.exports.room_of(week.rooms, name), frozenset())
        try:
            file, claims = client.save_model(name, str(session.sandbox.outbox))
            data = session.sandbox.read_outbox(name + ARCHIVE_SUFFIX, MAX_ARCHIVE_BYTES)
            found.archives[name] = check_archive(data, name, own_classes=own)
            found.claims[name] = claims
        except OracleError as error:
            found.problems[name] = str(error)
        except ArchiveRefused as error:
            found.problems[name] = f"could not rebuild `{name}`: {error}"
        except OSError as error:
            found.problems[name] = f"could not read the saved `{name}`: {error}"
        except Exception as error:  # anything else about one model costs that model only
            found.problems[name] = (f"could not take over `{name}` ({type(error).__name__}: "
                                    f"{str(error)[:200]})")
    for name in week.exports.values:
        try:
            found.values[name] = client.value(name)
        except OracleError as error:
            found.problems[name] = str(error)
    if week.exports.figures:
        try:
            found.figures = client.figures()
        except OracleError as error:
            found.problems["figures"] = str(error)
    try:
        found.images = client.rendered_figures()
    except OracleError:
        pass  # pictures for the feedback page only
    return found
