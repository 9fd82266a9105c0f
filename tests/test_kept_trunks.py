"""Kept trunks (keep_trunk): which forks a run keeps, a later launch's new budgets and cooldowns branching from
them bit for bit as runs trained alone (through the CLI, on CPU), the disk stated by the plan, the report's
saving, and prune-checkpoints."""

from __future__ import annotations

from pathlib import Path

import pytest

from schedsweep import files
from schedsweep.errors import ConfigError
from schedsweep.plan.grid import make_plan
from schedsweep.results import collect
from schedsweep.sharing import branching, forks, kept
from schedsweep.sweep import store
from schedsweep.train.metrics import read_metrics
from schedsweep.sweep import run_folder

from helpers import cli

BASE = ["task=classifier", "task.n_train=256", "task.hidden=16", "full_steps=40", "eval_every=5", "optimizer=sgd",
        "schedule=wsd", "schedule.warmup=2", "executor=debug", "executor.threads_per_run=1"]
COMPARED = ["step", "lr", "loss", "grad_norm", "grad_norm_l1", "eval_loss", "eval_error", "samples_seen"]


def plan(*overrides: str) -> list:
    return list(make_plan([*BASE, *overrides], check_imports=False).runs)


def test_keep_trunk_values_are_checked() -> None:
    assert kept.KeepTrunk.parse("none") == kept.KeepTrunk() and not kept.KeepTrunk.parse("none").on
    assert kept.KeepTrunk.parse("every:0.125") == kept.KeepTrunk("every", 0.125)
    for bad in ("every:1.5", "every:x", "always", "every:0"):
        with pytest.raises(ConfigError, match="keep_trunk must be none, forks or every:FRACTION"):
            kept.KeepTrunk.parse(bad)
    with pytest.raises(ConfigError, match="keep_trunk must be"):
        make_plan([*BASE, "keep_trunk=every:2"], check_imports=False)
    with pytest.raises(ConfigError, match="'keep_trunk' cannot be swept"):
        make_plan([*BASE, "keep_trunk=none,forks"], check_imports=False)


def test_kept_steps_lie_in_the_stable_prefix() -> None:
    (wsd,) = plan("budget=1.0")
    assert kept.stable_prefix(wsd.spec) == 33  # WSD's cooldown (20% of 40 steps) starts after update 32
    assert kept.every_steps(wsd.spec, 0.125) == (5, 10, 15, 20, 25, 30)
    assert kept.every_steps(wsd.spec, 0.125, after=12) == (15, 20, 25, 30)
    (constant,) = plan("budget=1.0", "schedule=constant")
    assert kept.every_steps(constant.spec, 0.25) == (10, 20, 30)
    (cosine,) = plan("budget=1.0", "schedule=cosine", "schedule.warmup=0")
    assert kept.every_steps(cosine.spec, 0.125) == ()  # no other budget shares any of it


def test_keep_trunk_none_writes_run_records_as_before() -> None:
    runs = plan("budget=0.5,1.0")
    sharing = branching.find(runs)
    assert all(kept.record_keys(kept.KeepTrunk(), sharing, r) == {} for r in runs)
    trunk = max(runs, key=lambda r: r.spec["steps"])
    assert kept.record_keys(kept.KeepTrunk("forks"), sharing, trunk) == {"forks": [17], forks.KEEP: True}
    assert kept.record_keys(kept.KeepTrunk("every", 0.125), sharing, trunk) == {"forks": [5, 10, 15, 17, 20, 25, 30],
                                                                                  forks.KEEP: True}


@pytest.mark.slow
def test_a_later_launch_branches_new_budgets_and_cooldowns_from_the_kept_trunk_bit_for_bit(tmp_path: Path) -> None:
    first = cli("launch", *BASE, "budget=0.5,1.0", "keep_trunk=every:0.125", "--name", "kt", cwd=tmp_path).stdout
    assert "keep_trunk=every:0.125 keeps up to 7 checkpoints (1 run), about " in first
    sweep = tmp_path / "results" / "kt"
    (trunk,) = [r["id"] for r in store.read_plan(sweep) if r["labels"]["steps"] == 40]
    assert sorted(int(p.name) for p in (store.run_dir(sweep, trunk) / run_folder.FORKS).iterdir()) == [5, 10, 15, 17, 20, 25, 30]

    later = ["budget=0.375,0.75", "schedule.decay=0.1,0.2"]
    second = cli("launch", *BASE, *later, "keep_trunk=every:0.125", "--name", "kt", cwd=tmp_path).stdout
    assert "2 new runs branch from forks kept by an earlier launch (20 steps not trained again)" in second
    cli("launch", *BASE, *later, "share_prefix=false", "--no-reuse", "--name", "alone", cwd=tmp_path)
    alone = tmp_path / "results" / "alone"
    ours, theirs = (collect.collect(s).summary.set_index("run_id") for s in (sweep, alone))
    new = list(theirs.index)
    assert len(new) == 4 and (ours.loc[new, "status"] == "done").all()
    for run_id in new:  # the same run ids, and bit for bit the same rows
        mine = read_metrics(store.run_dir(sweep, run_id) / run_folder.METRICS).select(COMPARED)
        assert mine.equals(read_metrics(store.run_dir(alone, run_id) / run_folder.METRICS).select(COMPARED)), run_id
    assert ours.loc[new, "final_eval_loss"].tolist() == theirs["final_eval_loss"].tolist()
    from_trunk = ours.loc[new][ours.loc[new, "branch_of"] == trunk]
    assert sorted(from_trunk["branch_step"]) == [10, 10]  # the 30-step runs: the latest kept fork before their own at 13/14
    assert int(ours.loc[new, "steps_trained"].sum()) < int(theirs["steps_trained"].sum())

    report = cli("report", str(sweep), "--format", "md", cwd=tmp_path).stdout
    assert "2 of them from checkpoints kept by an earlier launch, 20 steps not trained again" in report

    kept_before = list(sweep.glob(f"runs/*/{run_folder.FORKS}/*"))
    assert len(kept_before) == 7 + 5 + 6  # the first trunk's, and the new 30-step runs' own after step 10
    pruned = cli("prune-checkpoints", str(sweep), cwd=tmp_path).stdout
    assert f"removed {len(kept_before)} kept checkpoint(s)" in pruned and "kB freed" in pruned
    assert not list(sweep.glob(f"runs/*/{run_folder.FORKS}/*"))
    assert cli("prune-checkpoints", str(sweep), cwd=tmp_path).stdout.strip() == "no kept checkpoint to remove."
    assert files.read_json(store.run_dir(sweep, trunk) / run_folder.RECORD)[forks.KEEP] is True
