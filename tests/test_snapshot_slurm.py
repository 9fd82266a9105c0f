"""Queued Slurm jobs run the code of their launch (schedsweep.executors.snapshot), on the real test cluster: a
task module edited while the jobs wait in the queue is not what they train."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest
from helpers import _wait_for as wait
from helpers import cli, statuses
from test_pinned_code import TASK

from schedsweep.executors import slurm
from schedsweep.sweep import store
from schedsweep.train import pinned

pytestmark = [pytest.mark.slurm, pytest.mark.usefixtures("cluster")]


def test_a_queued_job_trains_the_snapshot_taken_at_launch_not_the_edited_module(tmp_path: Path) -> None:
    module = tmp_path / "mytask.py"
    module.write_text(TASK)
    launched = hashlib.sha256(module.read_bytes()).hexdigest()
    cli("launch", "task=custom", "task._target_=mytask.Tiny", "full_steps=10", "budget=1.0", "eval_every=5", "seed=0,1",
        "executor=slurm", "+executor.additional_parameters.hold=true", "--name", "snap", cwd=tmp_path)
    sweep = tmp_path / "results" / "snap"
    # Edited while the jobs wait: this code would fail every run.
    module.write_text(TASK.replace("self.x = torch.randn", "raise RuntimeError('the edited module ran'); self.x = torch.randn"))
    subprocess.run(["scontrol", "release", next(iter(slurm.latest_jobs(sweep).values()))["array"]], check=True)
    wait(lambda: set(statuses(sweep).values()) <= {"done", "failed", "diverged"}, 240, "the runs to finish")
    assert set(statuses(sweep).values()) == {"done"}
    for record in store.read_plan(sweep):
        recorded = pinned.read(store.run_dir(sweep, record["id"]))
        assert recorded["sha256"] == launched and Path(recorded["file"]).parent == Path(recorded["snapshot"])
        assert Path(recorded["snapshot"]).parent == (sweep / ".code").resolve()
    # The relaunch sees that these runs were trained with other code than the working tree holds now.
    stopped = cli("launch", "task=custom", "task._target_=mytask.Tiny", "full_steps=10", "budget=1.0", "eval_every=5",
                  "seed=0,1", "executor=slurm", "--name", "snap", cwd=tmp_path, check=2)
    assert "2 run(s) of sweep" in " ".join(stopped.stderr.split())
