"""Exact forks: a branched run is the same run as one trained alone, bit for bit on CPU (train.main)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow.compute as pc
import pytest

from schedsweep import files
from schedsweep.sharing import branching, forks
from schedsweep.sweep import store
from schedsweep.train import run as train
from schedsweep.train.metrics import read_metrics
from schedsweep.plan.identity import run_id
from schedsweep.plan.point import Run
from schedsweep.sweep import run_folder

TASK = {"_target_": "schedsweep.tasks.classifier.Classifier", "n_features": 8, "n_classes": 4, "hidden": 16,
        "depth": 1, "n_train": 2000, "n_eval": 256, "batch_size": 16, "noise": 0.1, "data_seed": 0}
OPTIMIZERS = {
    "sgd": {"_target_": "torch.optim.SGD", "lr": 0.1, "momentum": 0.9, "nesterov": False, "weight_decay": 0.0},
    "adamw": {"_target_": "torch.optim.AdamW", "lr": 0.01, "betas": [0.9, 0.999], "eps": 1e-8, "weight_decay": 0.01},
}
SCHEDULES = {
    "wsd": {"shape": "wsd", "warmup": 5, "decay": 0.2},
    "constant": {"shape": "constant", "warmup": 3},
    "join": {"shape": "join", "warmup": 4, "pieces": [{"shape": "constant", "until": 0.5}, {"shape": "cosine"}]},
}
LOG = {"eval_every": 5, "checkpoint_every": None, "checkpoint_minutes": None}
COMPARED = ["step", "lr", "loss", "grad_norm", "grad_norm_l1", "eval_loss", "samples_seen"]


def make_run(schedule: str, optimizer: str, seed: int, steps: int) -> Run:
    spec = {"task": TASK, "optimizer": OPTIMIZERS[optimizer], "schedule": SCHEDULES[schedule], "steps": steps,
            "seed": seed, "grad_clip": None}
    labels = {"task": "classifier", "optimizer": optimizer, "schedule": schedule, "budget": steps, "steps": steps}
    return Run(run_id(spec), spec, labels, LOG)


def write(sweep: Path, run: Run, extra: dict[str, Any]) -> Path:
    path = store.run_dir(sweep, run.id)
    files.write_json(path / run_folder.RECORD, run.record() | extra)
    return path


def train_all(sweep: Path, runs: list[Run], sharing: branching.Sharing) -> dict[str, Path]:
    paths = {r.id: write(sweep, r, branching.record_keys(sharing, r.id)) for r in runs}
    for r in runs:  # longest first: every parent before its branches
        assert forks.ready(paths[r.id])
        assert train.main(str(paths[r.id]), threads=1) == "done"
    return paths


@pytest.mark.parametrize("schedule", sorted(SCHEDULES))
@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
def test_a_branch_is_bit_identical_to_the_run_trained_alone(tmp_path: Path, schedule: str, optimizer: str) -> None:
    for seed in (0, 1):
        runs = [make_run(schedule, optimizer, seed, steps) for steps in (40, 24, 10)]
        sharing = branching.find(runs)
        (tree,) = sharing.trees
        assert tree.trunk == runs[0].id and len(tree.branches) == 2
        alone = train_all(tmp_path / f"alone-{seed}", runs, branching.find([]))
        shared = train_all(tmp_path / f"shared-{seed}", runs, sharing)
        for b in tree.branches:
            own, solo = read_metrics(shared[b.run] / run_folder.METRICS), read_metrics(alone[b.run] / run_folder.METRICS)
            assert own.select(COMPARED).equals(solo.select(COMPARED)), (schedule, optimizer, seed, b)
            assert own["inherited"].to_pylist() == [True] * b.step + [False] * (b.steps - b.step)
            mine, theirs = store.read_status(shared[b.run]), store.read_status(alone[b.run])
            assert mine.final_eval_loss == theirs.final_eval_loss and mine.final_loss == theirs.final_loss
            assert mine.steps_done == b.steps and mine.requeues == 0
        trunk = read_metrics(shared[tree.trunk] / run_folder.METRICS)  # writing forks does not change the trunk
        assert trunk.select(COMPARED).equals(read_metrics(alone[tree.trunk] / run_folder.METRICS).select(COMPARED))
        assert not pc.any(trunk["inherited"]).as_py()
        assert sorted(p.name for p in (shared[tree.trunk] / run_folder.FORKS).iterdir()) == sorted(map(str, tree.forks))


def test_a_branch_whose_fork_is_missing_trains_alone_once_its_parent_has_finished(tmp_path: Path) -> None:
    runs = [make_run("wsd", "sgd", 0, steps) for steps in (40, 10)]
    sharing = branching.find(runs)
    paths = {r.id: write(tmp_path, r, branching.record_keys(sharing, r.id)) for r in runs}
    branch = paths[runs[1].id]
    assert not forks.ready(branch)  # its parent has not reached the fork yet
    store.write_status(paths[runs[0].id], store.RunStatus("failed", error="boom"))
    assert forks.ready(branch) and not forks.start_from_fork(branch, files.read_json(branch / run_folder.RECORD))
    assert train.main(str(branch), threads=1) == "done"
    assert not pc.any(read_metrics(branch / run_folder.METRICS)["inherited"]).as_py()


def test_forks_are_removed_once_every_branch_has_finished(tmp_path: Path) -> None:
    runs = [make_run("constant", "sgd", 0, steps) for steps in (30, 20, 10)]
    sharing = branching.find(runs)
    store.write_plan(tmp_path, [r.record() for r in runs])
    paths = {r.id: write(tmp_path, r, branching.record_keys(sharing, r.id)) for r in runs}
    assert train.main(str(paths[runs[0].id]), threads=1) == "done"
    assert forks.remove_forks(tmp_path) == 0  # both branches still to run
    assert train.main(str(paths[runs[2].id]), threads=1) == "done"
    assert forks.remove_forks(tmp_path) == 0  # the 10-step run removed its fork at 9 as it ended (no launcher on Slurm)
    assert [p.name for p in (paths[runs[0].id] / run_folder.FORKS).iterdir()] == ["19"]
    store.write_status(paths[runs[1].id], store.RunStatus("failed", error="boom"))
    assert forks.remove_forks(tmp_path) == 0  # a failed branch keeps its fork for --retry-failed
    store.write_status(paths[runs[1].id], store.RunStatus("diverged"))
    assert forks.remove_forks(tmp_path) == 1 and not list((paths[runs[0].id] / run_folder.FORKS).iterdir())


def test_the_summary_names_each_branch_and_counts_shared_work_once(tmp_path: Path) -> None:
    from schedsweep.results import collect

    runs = [make_run("wsd", "adamw", 0, steps) for steps in (40, 20)]
    runs = [Run(r.id, r.spec, r.labels | {"gpus": 2}, r.log) for r in runs]  # GPU-hours need GPUs
    sharing = branching.find(runs)
    (branch,) = sharing.trees[0].branches
    store.write_plan(tmp_path, [r.record() for r in runs])
    train_all(tmp_path, runs, sharing)
    summary = collect.collect(tmp_path).summary.set_index("run_id")
    trunk, own = summary.loc[runs[0].id], summary.loc[runs[1].id]
    assert (trunk["branch_of"], trunk["branch_step"], trunk["steps_trained"]) == (None, 0, 40)
    assert (own["branch_of"], own["branch_step"], own["steps_trained"]) == (runs[0].id, branch.step, 20 - branch.step)
    assert own["steps_done"] == 20 and own["n_rows"] == 20
    # The branch's clock continues the trunk's; its GPU-hours are only the seconds after the fork.
    rows = read_metrics(store.run_dir(tmp_path, runs[1].id) / run_folder.METRICS)
    shared_s = rows["wall_s"][branch.step - 1].as_py()
    assert own["wall_s_trained"] == pytest.approx(own["wall_s"] - shared_s)
    assert own["gpu_hours"] == pytest.approx(2 * own["wall_s_trained"] / 3600)
    assert trunk["gpu_hours"] == pytest.approx(2 * trunk["wall_s"] / 3600)
    trained = 40 + 20 - branch.step
    hours = (trunk["gpu_hours"] + own["gpu_hours"])
    assert collect.sharing_notes(summary.reset_index()) == [
        f"shared prefixes: 1 runs branched from another run's checkpoint; {trained} of 60 steps trained "
        f"(-{1 - trained / 60:.0%}); {hours:.2f} GPU-hours, shared steps counted once"]


def test_forks_name_the_checkpoint_file_as_the_loop_does() -> None:

    assert forks.CHECKPOINT == run_folder.CHECKPOINT
