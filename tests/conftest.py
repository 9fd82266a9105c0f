"""`make test` runs the suite in two pytest-xdist workers (`-n 2 --dist loadgroup`): the slurm tests
share one test cluster and wait on its jobs, so they run one after another on one worker while the
other worker takes the rest."""

from __future__ import annotations

import os
import subprocess

import pytest

# xdist's workers get COLUMNS=80, which a run in one process does not have: off a terminal the CLI then
# wraps its tables at 80 columns instead of printing full rows. Each worker sees the suite's own environment.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.pop("COLUMNS", None)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("slurm"):
            item.add_marker(pytest.mark.xdist_group("slurm"))



@pytest.fixture(autouse=True)
def _fast_tier_starts_no_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """`make test-fast` (SCHEDSWEEP_TEST_TIER=fast) runs the tests not marked slow, slurm or browser, and
    holds them to it: a test that starts a process fails there, naming the marker it needs."""
    if os.environ.get("SCHEDSWEEP_TEST_TIER") != "fast":
        return

    def refuse(self: subprocess.Popen, args: object, *rest: object, **kwargs: object) -> None:
        raise RuntimeError(f"the fast tier starts no process ({args!r}): mark this test @pytest.mark.slow")

    monkeypatch.setattr(subprocess.Popen, "__init__", refuse)
