"""Expected failures: each is one readable paragraph for the user, and exit code 2 at the CLI."""


class SchedsweepError(Exception):
    """Base of every error caused by the user's input rather than by a bug."""

    exit_code = 2


class ConfigError(SchedsweepError):
    """A config file, override or key is wrong (unknown name, bad value, malformed YAML)."""


class ScheduleError(ConfigError):
    """A schedule spec is invalid, or yields a bad learning rate at some step of some budget."""


class TaskError(ConfigError):
    """A task cannot be imported or built from its config."""


class ResultsError(SchedsweepError):
    """A results folder is missing, unreadable or not a schedsweep sweep."""
