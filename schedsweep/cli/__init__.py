"""The command line: one Typer command per verb over the library (schedsweep.sweep.Sweep and the stage
packages). Heavy imports happen inside commands so `schedsweep --help` stays instant; expected failures
print one paragraph and exit 2."""

from schedsweep.cli.app import app, err, main, out
from schedsweep.cli import listing, results, schedules, sweeps  # noqa: E402,F401 - their commands join `app`

__all__ = ["app", "err", "main", "out"]
