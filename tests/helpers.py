"""Helpers the test modules share (import them from here, never from another test module)."""

from __future__ import annotations

import os


def pythonpath(*folders: object) -> str:
    """PYTHONPATH for a subprocess: `folders` first, then the suite's own PYTHONPATH (a worktree run with
    PYTHONPATH=<checkout> must test that checkout in its subprocesses too)."""
    return os.pathsep.join([*map(str, folders), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))])
