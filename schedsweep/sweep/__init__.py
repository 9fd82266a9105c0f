"""The sweep folder: its plan, its runs' folders (run_folder.RunFolder names every file of one) and
statuses, the claims that keep two processes off one run, the ETA; `Sweep` (sweep.api) is the library the
CLI and a notebook call."""

from __future__ import annotations


def __getattr__(name: str) -> object:
    # `from schedsweep.sweep import Sweep` without importing the executors for every reader of the folder
    if name in ("Sweep", "SweepStatus", "RunView"):
        from schedsweep.sweep import api

        return getattr(api, name)
    raise AttributeError(f"module 'schedsweep.sweep' has no attribute {name!r}")
