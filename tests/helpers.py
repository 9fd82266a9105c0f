"""Helpers the test modules share (import them from here, never from another test module)."""

from __future__ import annotations

import hashlib
import json
import math
import os
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from schedsweep import files, schedules
from schedsweep.plan.grid import make_plan
from schedsweep.plan.identity import run_id
from schedsweep.plan.point import Run as PlanRun
from schedsweep.sweep import claims, store
from schedsweep.train import metrics
from schedsweep.train import run as train
from schedsweep.train.distributed import Dist
from schedsweep.train.metrics import MetricsWriter
from schedsweep.train.script import ENV_RUN_DIR
from schedsweep.sweep import run_folder

TESTS = Path(__file__).resolve().parent
TINY = ["task=classifier", "full_steps=20", "eval_every=5", "task.n_train=256", "task.hidden=16"]
FLAKY = ["task=custom", "task._target_=helpers.FlakyTask", "budget=1.0", "eval_every=100"]
WSD = {"shape": "wsd", "warmup": 50, "decay": 0.2, "decay_shape": "linear", "final": 0.0}
TINY_LM = ["task=charlm", "task.context=16", "task.d_model=16", "task.n_layers=1", "task.n_heads=2",
           "task.batch_size=8", "task.eval_batches=2"]
TINY_MLP = ["task=classifier", "task.n_train=512", "task.hidden=16", "task.n_eval=128"]
EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "train.py"
LOG = {"eval_every": 10, "checkpoint_every": None, "checkpoint_minutes": 10}
FULL_STEPS = 1000
EVAL_EVERY = 5


def pythonpath(*folders: object) -> str:
    """PYTHONPATH for a subprocess: `folders` first, then the suite's own PYTHONPATH (a worktree run with
    PYTHONPATH=<checkout> must test that checkout in its subprocesses too)."""
    return os.pathsep.join([*map(str, folders), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))])


class FlakyTask:
    """A user's own task (the protocol in schedsweep.tasks), defined here and swept by import path.

    It raises while the file named by `fail_if` exists, so a test can make a run fail for real: from
    its `fail_after`-th training step of this process on, and only on rank `fail_rank` (all ranks if < 0).
    While the file named by `slow_if` exists, each step sleeps 50 ms (a job a test can catch running).
    """

    def __init__(self, seed: int, width: int = 8, fail_if: str = "", fail_after: int = 0, fail_rank: int = -1,
                 log_to: str = "", slow_if: str = "") -> None:
        self.seed, self.width, self.fail_if, self.fail_after, self.fail_rank = seed, width, fail_if, fail_after, fail_rank
        self.slow_if = slow_if
        self.calls = 0
        if log_to:  # one line per attempt at training a run (train builds the task once per attempt)
            with open(log_to, "a") as f:
                f.write(f"{seed} {os.getpid()}\n")
        g = torch.Generator().manual_seed(0)
        self.x = torch.randn(64, 4, generator=g)
        self.y = self.x @ torch.randn(4, 1, generator=g)

    def build_model(self) -> torch.nn.Module:
        return torch.nn.Sequential(torch.nn.Linear(4, self.width), torch.nn.Tanh(), torch.nn.Linear(self.width, 1))

    def batches(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        g = torch.Generator().manual_seed(self.seed)
        while True:
            idx = torch.randint(0, 64, (16,), generator=g)
            yield self.x[idx], self.y[idx]

    def loss(self, model: torch.nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        self.calls += 1
        rank = torch.distributed.get_rank() if torch.distributed.is_initialized() else 0
        if self.fail_if and Path(self.fail_if).exists() and self.calls > self.fail_after and self.fail_rank in (-1, rank):
            raise RuntimeError(f"FlakyTask was told to fail (rank {rank})")
        if self.slow_if and Path(self.slow_if).exists():
            time.sleep(0.05)
        x, y = batch
        return torch.nn.functional.mse_loss(model(x), y)

    def evaluate(self, model: torch.nn.Module) -> float:
        return float(torch.nn.functional.mse_loss(model(self.x), self.y))


def cli(*args: str, cwd: Path, check: int | None = 0) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"PYTHONPATH": pythonpath(TESTS), "COLUMNS": "200"}
    proc = subprocess.run([sys.executable, "-m", "schedsweep", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    if check is not None:
        assert proc.returncode == check, f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    return proc


def statuses(sweep: Path) -> dict[str, str]:
    return {r["id"]: store.read_status(store.run_dir(sweep, r["id"])).status for r in store.read_plan(sweep)}


def _wait_for(predicate: Any, seconds: float, what: str) -> None:
    deadline = time.time() + seconds
    while not predicate():
        assert time.time() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def attempts_per_seed(log: Path) -> Counter[str]:
    return Counter(line.split()[0] for line in log.read_text().splitlines())


def assert_trained_once(sweep: Path, steps: int) -> None:
    for rid, status in statuses(sweep).items():
        run = store.run_dir(sweep, rid)
        assert status == "done"
        assert metrics.read_metrics(run / run_folder.METRICS)["step"].to_pylist() == list(range(steps))  # one row per step
        assert len(claims.attempts(run)) == 1
        assert not (run / run_folder.CLAIM).exists()  # released


def run(schedule: dict[str, Any], steps: int, seed: int = 0, log: dict[str, Any] = LOG) -> PlanRun:
    spec = {"task": {"name": "t"}, "optimizer": {"name": "sgd", "lr": 0.1}, "schedule": schedule, "steps": steps,
            "seed": seed, "grad_clip": None}
    return PlanRun(run_id(spec), spec, {"schedule": schedule["shape"], "budget": steps, "steps": steps}, log)


def make_logged_sweep(root: Path, runs: list[Run], **kw: object) -> Path:
    """make_sweep, plus metric parts for every run that started (done, diverged, running)."""
    make_sweep(root, runs, **kw)
    for record, run in zip(store.read_plan(root), runs):
        steps = record["labels"]["steps"]
        if run.status in ("done", "diverged", "running"):
            final = run.loss if run.loss is not None else 1.0
            write_parts(store.run_dir(root, record["id"]), steps if run.status != "running" else steps // 2, final,
                        run.lr, diverge_at=steps // 2 if run.status == "diverged" else None)
    return root


def small(tmp_path: Path) -> Path:
    runs = [Run(s, b, loss + b, lr=lr, seed=seed) for b in (0.01, 0.02) for s, loss in (("linear", 1.0), ("cosine", 1.2))
            for lr in (1e-3, 3e-3) for seed in (0, 1)]
    return make_logged_sweep(tmp_path / "sweep", runs)


def run_record(overrides: list[str]) -> dict[str, Any]:
    (run,) = make_plan(overrides).runs
    return run.record()


def train_in(tmp: Path, record: dict[str, Any], state: dict[str, Any] | None = None) -> tuple[store.RunStatus, list[dict]]:
    """train.train() in this process; (status, the Parquet rows)."""
    tmp.mkdir(parents=True, exist_ok=True)
    writer = MetricsWriter(tmp / run_folder.METRICS)
    status = train.train(record, tmp, Dist(), writer, state, train.StopFlag())
    writer.flush()
    return status, metrics.read_metrics(tmp / run_folder.METRICS).to_pylist()


def numbers(rows: list[dict]) -> list[dict]:
    """Rows without the timing columns, which differ between any two runs."""
    return [{k: v for k, v in r.items() if k not in ("wall_s", "samples_per_s")} for r in rows]


@dataclass(frozen=True)
class Run:
    """One planned run and what happened to it; status "pending" writes no status.json."""

    schedule: str
    budget: float | int = 1.0
    loss: float | None = None
    status: str = "done"
    lr: float = 1e-3
    seed: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def make_sweep(root: Path, runs: list[Run], swept: tuple[str, ...] = ("optimizer.lr", "seed")) -> Path:
    records = []
    for run in runs:
        steps = run.budget if isinstance(run.budget, int) else round(run.budget * FULL_STEPS)
        axes = {"schedule": run.schedule, "budget": run.budget, **run.extra}
        axes.update({k: v for k, v in (("optimizer.lr", run.lr), ("seed", run.seed)) if k in swept})
        labels = {"task": "charlm", "optimizer": "adamw", "schedule": run.schedule, "budget": run.budget,
                  "steps": steps, "lr": run.lr, "seed": run.seed, "axes": axes}
        run_id = hashlib.sha256(json.dumps(labels, sort_keys=True).encode()).hexdigest()[:12]
        records.append({"id": run_id, "labels": labels, "spec": spec_of(run, steps), "log": {}})
        if run.status != "pending":
            loss = run.loss if run.status == "done" else None
            status = store.RunStatus(run.status, steps_done=steps, final_loss=loss, final_eval_loss=loss,
                                     best_eval_loss=loss, error="boom" if run.status == "failed" else None)
            store.write_status(store.run_dir(root, run_id), status)
    store.write_plan(root, records)
    return root


def make_run_dir(tmp_path: Path, monkeypatch: Any, schedule: str = "linear", steps: int = 12) -> Path:
    """A run folder as `launch` writes it, and $SCHEDSWEEP_RUN_DIR pointing at it (for schedsweep.client's tests)."""

    spec = {"task": {"command": "python train.py", "files": {}}, "optimizer": {"name": "adamw", "lr": 0.1},
            "schedule": schedules.load(schedule), "steps": steps, "seed": 3, "grad_clip": None}
    path = tmp_path / "runs" / "r1"
    files.write_json(path / run_folder.RECORD, {"id": "r1", "spec": spec, "labels": {}, "log": {"eval_every": 5}})
    monkeypatch.setenv(ENV_RUN_DIR, str(path))
    return path


def accounting() -> bool:
    """Whether the test cluster has accounting (sacct answers)."""
    return subprocess.run(["sacct", "-n", "-X"], capture_output=True).returncode == 0


def write_parts(run_path: Path, steps: int, final: float, lr: float, part_rows: int = 7, diverge_at: int | None = None) -> pa.Table:
    """Rows for steps 0..steps-1 (fewer if diverged): train loss falls linearly to `final + 0.1`,
    eval every EVAL_EVERY steps and at the last step ends at `final`; lr decays linearly."""
    n = steps if diverge_at is None else diverge_at + 1
    t = np.arange(n)
    loss = final + 0.1 + (1.0 - t / max(steps - 1, 1))
    if diverge_at is not None:
        loss[-1] = math.inf
    is_eval = ((t + 1) % EVAL_EVERY == 0) | (t == steps - 1)
    eval_loss = np.where(is_eval, final + (steps - 1 - t) * 0.01, np.nan)
    table = pa.table({
        "step": t, "lr": lr * (1 - t / steps), "loss": loss, "grad_norm": np.full(n, 0.5), "grad_norm_l1": np.full(n, 5.0),
        "eval_loss": pa.array(eval_loss, from_pandas=True), "samples_seen": (t + 1) * 8, "wall_s": (t + 1) * 0.01,
        "samples_per_s": np.full(n, 800.0), "inherited": np.zeros(n, dtype=bool)}, schema=metrics.SCHEMA)
    folder = run_path / run_folder.METRICS
    folder.mkdir(parents=True, exist_ok=True)
    for i, start in enumerate(range(0, n, part_rows)):
        pq.write_table(table.slice(start, part_rows), folder / f"part-{i:05d}.parquet")
    return table


def spec_of(run: Run, steps: int) -> dict[str, Any]:
    """The run's spec, with each `extra` key ("task.d_model") set at its place."""
    spec: dict[str, Any] = {"task": {"_target_": "schedsweep.tasks.charlm.CharLM"}, "optimizer": {"_target_": "torch.optim.AdamW", "lr": run.lr},
                            "schedule": {"shape": run.schedule}, "steps": steps, "seed": run.seed, "grad_clip": None}
    for key, value in run.extra.items():
        *sections, leaf = key.split(".")
        node = spec
        for section in sections:
            node = node.setdefault(section, {})
        node[leaf] = value
    return spec
