"""MaxSubmitJobs on the real test cluster: a limit set on the test user with sacctmgr (restored after) holds runs
back at submit; the launch says how many, and a relaunch (or --wait as jobs end) submits them."""

from __future__ import annotations

import getpass
import subprocess
from pathlib import Path
from typing import Iterator

import pytest
from helpers import accounting, cli, statuses

from schedsweep.executors import slurm, squeue

pytestmark = [pytest.mark.slurm, pytest.mark.usefixtures("cluster")]
GRID = ["task=classifier", "task.n_train=256", "task.hidden=16", "eval_every=5", "full_steps=10", "budget=1.0",
        "seed=range(5)", "executor=slurm"]


@pytest.fixture
def limit_of_two() -> Iterator[None]:
    if not accounting():
        pytest.skip("MaxSubmitJobs is an association limit: it needs accounting (slurmdbd)")
    user = getpass.getuser()
    subprocess.run(["sacctmgr", "-i", "modify", "user", "where", f"name={user}", "set", "MaxSubmitJobs=2"], check=True,
                   capture_output=True)
    try:
        yield
    finally:
        subprocess.run(["sacctmgr", "-i", "modify", "user", "where", f"name={user}", "set", "MaxSubmitJobs=-1"], check=True,
                       capture_output=True)


@pytest.mark.usefixtures("limit_of_two")
def test_max_submit_jobs_holds_runs_back_and_a_relaunch_submits_them(tmp_path: Path) -> None:
    assert squeue.max_submit_jobs() == 2
    first = cli("launch", *GRID, "+executor.additional_parameters.hold=true", "--name", "limited", cwd=tmp_path).stdout
    said = " ".join(first.split())
    assert "queued 2 runs" in said and "3 run(s) held back by your MaxSubmitJobs=2" in said and "relaunch to submit them" in said
    sweep = tmp_path / "results" / "limited"
    assert len(slurm.latest_jobs(sweep)) == 2
    again = " ".join(cli("launch", *GRID, "+executor.additional_parameters.hold=true", "--name", "limited",
                         cwd=tmp_path).stdout.split())
    assert "queued 0 runs" in again and "2 already pending or running" in again and "3 run(s) held back" in again
    subprocess.run(["scontrol", "release", next(iter(slurm.latest_jobs(sweep).values()))["array"]], check=True)
    cli("launch", *GRID, "--wait", "--name", "limited", cwd=tmp_path)  # tops up as the first jobs end
    assert set(statuses(sweep).values()) == {"done"} and len(slurm.latest_jobs(sweep)) == 5
    batches: dict[str, int] = {}
    for job in slurm._job_records(sweep):
        batches[job["batch"]] = batches.get(job["batch"], 0) + 1
    assert max(batches.values()) <= 2 and len(batches) >= 3  # never more than the limit at once
