"""The Typer app, its consoles and `friendly` (expected failures: one paragraph on stderr, exit 2): what
every command module of the CLI shares."""

from __future__ import annotations

import functools
import os
from typing import Any, Callable, TypeVar

import typer
from rich.console import Console

from schedsweep.errors import SchedsweepError

app = typer.Typer(
    help="Which learning-rate schedule is best for my model at my budget? Sweep schedules x budgets x "
    "optimizers, train, and rank schedules by final loss per budget.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
schedules_app = typer.Typer(help="List and inspect the schedules in conf/schedule/.", no_args_is_help=True)
app.add_typer(schedules_app, name="schedules")


def _console(stderr: bool = False) -> Console:
    """A console for stdout or stderr. Off a terminal (a pipe, a file) rich would wrap every line and table
    cell at 80 columns; there rows print at full width instead (COLUMNS, when set, still decides)."""
    console = Console(stderr=stderr)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console.width = 10_000  # wider than any table: each row stays one line
    return console


out = _console()
err = _console(stderr=True)
F = TypeVar("F", bound=Callable[..., Any])

ConfigDir = typer.Option(None, "--config-dir", help="Your own conf tree, searched before the built-in one.")


def friendly(fn: F) -> F:
    """Expected failures become one message on stderr and exit code 2, never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except SchedsweepError as e:
            err.print(f"[bold red]error:[/] {e}", highlight=False, soft_wrap=True)
            raise typer.Exit(e.exit_code) from None

    return wrapper  # type: ignore[return-value]


def main() -> None:
    app()
