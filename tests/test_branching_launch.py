"""Shared prefixes end to end: the real CLI on the local queue, with and without sharing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from schedsweep.results import collect
from schedsweep.sweep import store
from schedsweep.train.metrics import read_metrics
from schedsweep.sweep import run_folder

TINY = ["task=classifier", "task.n_train=2000", "task.n_eval=256", "task.hidden=16", "task.depth=1", "full_steps=60",
        "eval_every=5", "schedule=wsd", "schedule.warmup=5", "budget=0.25,0.5,1.0", "optimizer=sgd,adamw"]


def launch(tmp_path: Path, name: str, *extra: str) -> Path:
    proc = subprocess.run([sys.executable, "-m", "schedsweep", "launch", *TINY, *extra, "--no-reuse", "--name", name,
                           "--results", str(tmp_path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return tmp_path / name


@pytest.mark.slow
def test_a_shared_sweep_on_the_local_queue_gives_the_same_results_with_fewer_steps(tmp_path: Path) -> None:
    shared = launch(tmp_path, "shared", "executor=local", "executor.max_parallel=2", "executor.threads_per_run=1")
    alone = launch(tmp_path, "alone", "executor=debug", "executor.threads_per_run=1", "share_prefix=false")
    ours, theirs = (collect.collect(s).summary.set_index("run_id") for s in (shared, alone))
    assert list(ours.index) == list(theirs.index)  # the same run ids either way
    assert (ours["status"] == "done").all() and (theirs["status"] == "done").all()
    assert ours["final_eval_loss"].tolist() == theirs["final_eval_loss"].tolist()  # bit for bit
    # Per optimizer: the 60-step trunk, the 15- and 30-step runs fork one step into their cooldowns (13, 25).
    assert sorted(ours["branch_step"]) == [0, 0, 13, 13, 25, 25] and (theirs["branch_step"] == 0).all()
    assert ours["steps_trained"].sum() == 2 * (60 + 2 + 5) and theirs["steps_trained"].sum() == 2 * 105
    for run_id, row in ours[ours["branch_step"] > 0].iterrows():
        assert ours.loc[row["branch_of"], "steps"] == 60
        rows = read_metrics(store.run_dir(shared, run_id) / run_folder.METRICS)
        assert sum(rows["inherited"].to_pylist()) == row["branch_step"]
    assert not list(shared.glob(f"runs/*/{run_folder.FORKS}/*"))  # every branch done: forks removed


@pytest.mark.slow
def test_a_relaunch_with_more_budgets_branches_from_a_kept_fork(tmp_path: Path) -> None:
    from schedsweep.train import run as train
    from schedsweep.sweep.api import Sweep

    base = [*TINY[:-2], "optimizer=sgd", "executor=debug", "executor.threads_per_run=1"]
    first, _ = Sweep.create(Sweep.plan([*base, "budget=0.5,1.0"], name="more"), tmp_path)
    trunk = next(r for r in first.records() if r["labels"]["steps"] == 60)["id"]
    assert train.main(str(store.run_dir(first.path, trunk)), threads=1) == "done"  # its fork at 25 waits for the 30-step run
    proc = subprocess.run([sys.executable, "-m", "schedsweep", "launch", *base, "budget=0.5,0.75,1.0", "--name", "more",
                           "--results", str(tmp_path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # The 45-step run shares 37 steps with the trunk; the fork at 25 is the latest one kept.
    assert "1 new runs branch from forks kept by an earlier launch" in proc.stdout
    summary = collect.collect(first.path).summary.set_index("run_id")
    new = summary[summary["steps"] == 45].iloc[0]
    assert (new["branch_of"], new["branch_step"], new["steps_trained"]) == (trunk, 25, 20)
    alone, _ = Sweep.create(Sweep.plan([*base, "budget=0.75", "share_prefix=false"], name="alone"), tmp_path, reuse_runs=False)
    alone.launch()
    assert collect.collect(alone.path).summary["final_eval_loss"].tolist() == [new["final_eval_loss"]]
    assert not list(first.path.glob(f"runs/*/{run_folder.FORKS}/*"))  # both branches done: the fork is gone
