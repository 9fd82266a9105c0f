"""`make test` runs the suite in two pytest-xdist workers (`-n 2 --dist loadgroup`): the slurm tests
share one test cluster and wait on its jobs, so they run one after another on one worker while the
other worker takes the rest."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Iterator

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
    holds them to it: a test that starts a process fails there, naming the marker it needs (git, which a run asks
    for its code's commit in milliseconds, excepted)."""
    if os.environ.get("SCHEDSWEEP_TEST_TIER") != "fast":
        return

    popen = subprocess.Popen.__init__

    def refuse(self: subprocess.Popen, args: object, *rest: object, **kwargs: object) -> None:
        if isinstance(args, (list, tuple)) and args and args[0] == "git":  # a run records its code's commit (pinned)
            return popen(self, args, *rest, **kwargs)
        raise RuntimeError(f"the fast tier starts no process ({args!r}): mark this test @pytest.mark.slow")

    monkeypatch.setattr(subprocess.Popen, "__init__", refuse)


@pytest.fixture(scope="module")
def cluster() -> None:
    """The real test cluster (tests/slurm/cluster.sh): skip without one, fail in CI. Slurm test modules use it:
    pytestmark = [pytest.mark.slurm, pytest.mark.usefixtures("cluster")]."""
    try:
        ok = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True, timeout=10)
        up = ok.returncode == 0 and ok.stdout.strip() != ""
    except (FileNotFoundError, subprocess.TimeoutExpired):
        up = False
    if not up:
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but no Slurm cluster answers: `bash tests/slurm/cluster.sh start` failed?")
        pytest.skip("no Slurm cluster reachable (start one with: bash tests/slurm/cluster.sh start)")


@pytest.fixture
def keep_signal_handlers(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """schedsweep.client.init() installs its handlers (put pytest's back afterwards) and remembers its run (forget it)."""
    import schedsweep.client as client
    from schedsweep.train.script import SIGNALS

    monkeypatch.setattr(client, "_current", None)
    saved = {sig: signal.getsignal(sig) for sig in SIGNALS}
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)


PREDICT_TINY = ["task=classifier", "task.hidden=16", "task.n_train=2000", "task.n_eval=256", "full_steps=200", "eval_every=5",
                "executor=debug", "executor.threads_per_run=1"]


@pytest.fixture(scope="module")
def tiny_sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny trained sweep of the classifier (four schedules, two budgets) for predict's tests, trained once per module."""
    root = tmp_path_factory.mktemp("predict")
    subprocess.run([sys.executable, "-m", "schedsweep", "launch", *PREDICT_TINY, "schedule=constant,cosine,linear,wsd",
                    "budget=0.5,1.0", "--name", "tiny", "--results", str(root)], cwd=root, check=True, capture_output=True,
                   timeout=900)
    return root / "tiny"
