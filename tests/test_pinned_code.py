"""Pinned code: each run records the code it trained with; a relaunch whose task module changed stops before
training, naming the runs, and --rerun-stale / --keep-stale each do what they say (real CLI, real runs)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from helpers import cli, statuses

from schedsweep import files
from schedsweep.sweep import stale, store
from schedsweep.train import pinned

TASK = '''
import torch


class Tiny:
    def __init__(self, seed: int = 0) -> None:
        g = torch.Generator().manual_seed(seed)
        self.x = torch.randn(64, 4, generator=g)
        self.y = self.x.sum(1, keepdim=True)

    def build_model(self):
        return torch.nn.Linear(4, 1)

    def batches(self):
        while True:
            yield self.x, self.y

    def loss(self, model, batch):
        x, y = batch
        return torch.nn.functional.mse_loss(model(x), y)

    def evaluate(self, model):
        return float(torch.nn.functional.mse_loss(model(self.x), self.y))
'''
GRID = ["task=custom", "task._target_=mytask.Tiny", "full_steps=10", "budget=1.0", "schedule=linear,cosine", "eval_every=5",
        "executor=debug", "--name", "pin", "--results", "results"]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.slow
def test_a_changed_task_module_stops_the_relaunch_and_both_options_work(tmp_path: Path) -> None:
    module = tmp_path / "mytask.py"
    module.write_text(TASK)
    cli("launch", *GRID, cwd=tmp_path)
    sweep = tmp_path / "results" / "pin"
    runs = [store.run_dir(sweep, r["id"]) for r in store.read_plan(sweep)]
    first = pinned.read(runs[0])
    assert first["sha256"] == digest(module) and first["file"] == str(module) and first["task"] == "mytask.Tiny"
    assert first["package"].startswith("schedsweep ") and first["git"] is None  # tmp_path is no git folder

    module.write_text(TASK + "\n# tuned\n")  # the run ids do not change: only the code does
    stopped = cli("launch", *GRID, cwd=tmp_path, check=2)
    said = " ".join(stopped.stderr.split())
    assert "2 run(s) of sweep" in said and "Nothing was trained" in said and "--rerun-stale" in said and "--keep-stale" in said
    assert all(r.name in said for r in runs)
    assert [len(pinned.attempts(r)) for r in runs] == [1, 1]  # nothing trained

    cli("launch", *GRID, "--keep-stale", cwd=tmp_path)
    assert [len(pinned.attempts(r)) for r in runs] == [1, 1] and set(statuses(sweep).values()) == {"done"}
    assert set(files.read_json(sweep / stale.FILE)) == {r.name for r in runs}
    cli("launch", *GRID, cwd=tmp_path)  # kept once: the next launch accepts them
    report = cli("report", str(sweep), cwd=tmp_path)
    assert "2 run(s) were kept with code other than the sweep's latest launch (--keep-stale)" in " ".join(report.stdout.split())

    cli("launch", *GRID, "--rerun-stale", cwd=tmp_path)
    assert [len(pinned.attempts(r)) for r in runs] == [2, 2] and set(statuses(sweep).values()) == {"done"}
    assert {pinned.read(r)["sha256"] for r in runs} == {digest(module)}
    assert files.read_json(sweep / stale.FILE) == {}
    report = cli("report", str(sweep), cwd=tmp_path)
    assert "--keep-stale" not in report.stdout
