"""The errors a user can act on. Library code raises them with a message for the person
at the keyboard (instructor, TA or student); only the entry points (the ``autograder``
command, Gradescope's ``run_autograder``, the in-container runner) turn them into an exit
status, and ``run_autograder`` still writes a results.json whatever happens.

What a *submission* does wrong is not an error here: it is a message and a score in its
results (``grading/plugin.py``, ``BundleRefused``, ``ArchiveRefused``, ``OracleError``).
"""


class AutograderError(Exception):
    """Something about the course, its settings or the machine stops a command."""


class ConfigError(AutograderError):
    """A week.toml, gradescope.yml or course layout that cannot be used as it is."""


class CompileError(AutograderError):
    """A week that must not be released as it stands."""

    def __init__(self, week: str, message: str):
        super().__init__(f"compiling {week}: {message}")


class OutputBusy(AutograderError):
    """Another batch is writing to the same output folder."""
