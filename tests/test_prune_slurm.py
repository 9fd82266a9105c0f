"""prune_lr on the real Slurm test cluster (tests/slurm/cluster.sh). Without waiting, each relaunch of the same
command decides what the finished budgets allow and queues the next; held WSD trunks stop at their fork inside
their Slurm job and a later job goes on from it. The result is the local pruned sweep's, run for run."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from helpers import _wait_for as wait
from helpers import cli, statuses

from schedsweep.sweep import store

pytestmark = [pytest.mark.slurm, pytest.mark.usefixtures("cluster")]
WSD = ["task=quadratic", "full_steps=40", "schedule=wsd", "schedule.warmup=2", "budget=0.5,1.0", "optimizer.lr=0.1,0.3,1",
       "prune_lr=3"]  # each WSD trunk (100%) holds at the fork of its 50% branch until that budget is decided


def queue_empty() -> bool:
    return not subprocess.run(["squeue", "-h", "-o", "%i"], capture_output=True, text=True, check=True).stdout.strip()


def test_relaunches_of_a_pruned_slurm_sweep_decide_budget_by_budget_as_the_local_launch_does(tmp_path: Path) -> None:
    slurm = [*WSD, "executor=slurm", "executor.cpus_per_task=1", "--name", "p"]
    sweep = tmp_path / "results" / "p"
    said = " ".join(cli("launch", *slurm, cwd=tmp_path).stdout.split())
    assert "the larger budgets are decided once these runs have finished; run this same command again then" in said
    launches = 1
    while not set(statuses(sweep).values()) <= {"done", "pruned"}:
        wait(queue_empty, 300, "the sweep's jobs to leave the queue")
        assert launches < 4, statuses(sweep)  # 2 budgets: one decision
        cli("launch", *slurm, cwd=tmp_path)
        launches += 1
    assert launches >= 2  # the 100% budget was decided by a relaunch, not up front
    assert sorted(statuses(sweep).values()) == ["done"] * 4 + ["pruned"] * 2  # 3 LRs at 50%, the best third at 100%
    assert not list(sweep.glob("runs/*/hold.json"))  # every hold released
    cli("launch", *WSD, "executor=local", "executor.threads_per_run=1", "--results", "local", "--name", "p", cwd=tmp_path)
    local = tmp_path / "local" / "p"
    assert statuses(sweep) == statuses(local)  # the same runs pruned, the same kept
    for run_id, status in statuses(sweep).items():
        a, b = store.read_status(store.run_dir(sweep, run_id)), store.read_status(store.run_dir(local, run_id))
        assert (a.steps_done, a.final_loss, a.final_eval_loss) == (b.steps_done, b.final_loss, b.final_eval_loss), status
