"""`make test` runs the suite in two pytest-xdist workers (`-n 2 --dist loadgroup`): the slurm tests
share one test cluster and wait on its jobs, so they run one after another on one worker while the
other worker takes the rest."""

from __future__ import annotations

import os

import pytest

# xdist's workers get COLUMNS=80, which a run in one process does not have: off a terminal the CLI then
# wraps its tables at 80 columns instead of printing full rows. Each worker sees the suite's own environment.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.pop("COLUMNS", None)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("slurm"):
            item.add_marker(pytest.mark.xdist_group("slurm"))

