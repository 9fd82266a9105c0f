"""The example script swept on the real test cluster: Slurm arrays, one run requeued mid-way resumes exactly."""

from __future__ import annotations

import csv
import io
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from schedsweep.train import metrics
from schedsweep.executors import slurm
from schedsweep.sweep import store
from schedsweep.sweep.status import FINAL
from schedsweep.sweep import run_folder
from helpers import _wait_for as _wait
from helpers import cli, statuses
from helpers import EXAMPLE

pytestmark = [pytest.mark.slurm, pytest.mark.usefixtures("cluster")]


def test_the_example_swept_on_slurm_resumes_a_requeued_run_and_is_ranked(tmp_path: Path) -> None:
    shutil.copy(EXAMPLE, tmp_path / "train.py")
    command = f"{shlex.quote(sys.executable)} train.py --width 8 --sleep 0.05"
    cli("launch", "task=script", f"task.command='{command}'", "schedule=linear,cosine,rex", "budget=0.5,1.0",
        "full_steps=200", "executor=slurm", "--name", "slurm", cwd=tmp_path)
    sweep = tmp_path / "results" / "slurm"
    jobs = slurm.latest_jobs(sweep)
    assert len({j["array"] for j in jobs.values()}) >= 1 and len(jobs) == 6
    longest = next(r for r in store.read_plan(sweep) if r["spec"]["steps"] == 200)
    run = store.run_dir(sweep, longest["id"])
    # The example checkpoints every 50 steps and on SIGTERM; under load the SIGTERM one may not beat Slurm's
    # KillWait, so requeue after the first periodic one: either way the run resumes past step 0.
    _wait(lambda: (run / run_folder.CHECKPOINT).exists(), 180, "a first checkpoint")
    subprocess.run(["scontrol", "requeue", jobs[longest["id"]]["job"]], check=True)
    _wait(lambda: set(statuses(sweep).values()) <= set(FINAL), 420, "every run to finish")
    assert set(statuses(sweep).values()) == {"done"}

    out = (run / "logs" / "script.out").read_text()
    resumed = re.search(r"resumed at step (\d+)", out)
    assert resumed and 0 < int(resumed.group(1)) < 200, out
    for record in store.read_plan(sweep):
        table = metrics.read_metrics(store.run_dir(sweep, record["id"]) / run_folder.METRICS)
        assert table["step"].to_pylist() == list(range(record["spec"]["steps"]))  # none missing, none repeated
    ranking = list(csv.DictReader(io.StringIO(cli("report", str(sweep), "--format", "csv", cwd=tmp_path).stdout)))
    assert sorted((r["steps"], r["rank"]) for r in ranking) == sorted((s, k) for s in ("100", "200") for k in "123")


