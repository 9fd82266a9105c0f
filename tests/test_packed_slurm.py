"""Packed Slurm jobs (executor.runs_per_job, schedsweep.executors.packed) on the real 2-node test cluster with
fake GPUs as gres (tests/slurm/cluster.sh): several runs per job, one GPU per run, and a packed job requeued
with `scontrol requeue` resumes every run in flight exactly."""

from __future__ import annotations

import subprocess
import time
from collections import defaultdict
from pathlib import Path

import pytest
from helpers import _wait_for as wait
from helpers import cli, statuses
from test_gpu_slots import most_at_once

from schedsweep.executors import packed, slurm
from schedsweep.executors.settings import SlurmSettings
from schedsweep.sweep import claims, store
from schedsweep.train import metrics, pinned
from schedsweep.sweep import run_folder

LONG_STEPS = 6000  # long enough to catch two runs in flight: about 15 s each on 2 idle cores, a minute on busy ones
pytestmark = [pytest.mark.slurm, pytest.mark.usefixtures("cluster")]
RUNS = ["task=classifier", "task.n_train=256", "task.hidden=16", "budget=1.0"]
TINY = [*RUNS, "executor=slurm", "executor.cpus_per_task=1"]
LONG = [*RUNS, f"full_steps={LONG_STEPS}", "eval_every=2000", "schedule=linear", "seed=range(3)"]


def test_a_job_time_limit_is_its_runs_limits_laid_on_its_gpus() -> None:
    assert packed.job_minutes([10, 10, 10, 10], 1) == 40
    assert packed.job_minutes([10, 10, 10, 10], 2) == 20
    assert packed.job_minutes([30, 10, 10, 10], 2) == 30  # longest first: 30 | 10+10+10
    executor = SlurmSettings(runs_per_job=3, gpus_per_node=2, time_by_budget={0.5: 4, 1.0: 8})
    records = [{"id": f"r{i}", "labels": {"budget": b, "steps": 10}} for i, b in enumerate([1.0, 0.5, 0.5, 1.0])]
    assert packed.plan(records, executor) == [(["r0", "r1", "r2"], 8), (["r3"], 8)]


def test_packed_jobs_train_each_run_once_one_gpu_per_run(tmp_path: Path) -> None:
    out = cli("launch", *TINY, "full_steps=30", "eval_every=10", "schedule=linear,cosine", "seed=range(4)",
              "executor.runs_per_job=4", "executor.gpus_per_node=2", "executor.time_min=2", "--wait", "--name", "packed",
              cwd=tmp_path).stdout
    assert "queued 8 runs (2 jobs of up to 4 runs) in 1 job array(s)" in out, out
    sweep = tmp_path / "results" / "packed"
    assert set(statuses(sweep).values()) == {"done"}
    jobs = slurm.latest_jobs(sweep)
    assert len({j["job"] for j in jobs.values()}) == 2 and {j["time_min"] for j in jobs.values()} == {4}  # 2 x 2 min per GPU
    spans: dict[tuple[str, str], list[tuple[float, float]]] = defaultdict(list)
    per_job: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for rid in statuses(sweep):
        run = store.run_dir(sweep, rid)
        assert metrics.read_metrics(run / run_folder.METRICS)["step"].to_pylist() == list(range(30))
        assert len(claims.attempts(run)) == 1  # trained once, by one job
        (attempt,) = pinned.attempts(run)
        assert attempt["devices"] in ("0", "1", "2", "3") and attempt["job"] in {j["job"] for j in jobs.values()}
        spans[attempt["job"], attempt["devices"]].append((attempt["start"], attempt["end"]))
        per_job[attempt["job"]].append((attempt["start"], attempt["end"]))
    assert all(most_at_once(s) == 1 for s in spans.values())  # never two runs on one GPU
    assert all(len({d for j, d in spans if j == job}) == 2 for job in per_job)  # each job used both its GPUs
    assert max(most_at_once(s) for s in per_job.values()) == 2


def test_a_requeued_packed_job_resumes_every_run_in_flight_exactly(tmp_path: Path) -> None:
    cli("launch", *LONG, "executor=slurm", "executor.cpus_per_task=1", "executor.time_min=5", "executor.runs_per_job=3",
        "executor.gpus_per_node=2", "--name", "requeue", cwd=tmp_path)
    sweep = tmp_path / "results" / "requeue"
    (job,) = {j["job"] for j in slurm.latest_jobs(sweep).values()}
    runs = [store.run_dir(sweep, rid) for rid in statuses(sweep)]

    def in_flight() -> list[Path]:
        return [r for r in runs if store.read_status(r).status == "running" and metrics.part_files(r / run_folder.METRICS)]

    wait(lambda: len(in_flight()) == 2, 240, "two runs of the packed job to be training")
    time.sleep(1)
    subprocess.run(["scontrol", "requeue", job], check=True)
    wait(lambda: set(statuses(sweep).values()) == {"done"}, 400, "the requeued job to finish every run")
    resumed = [r for r in runs if len(pinned.attempts(r)) == 2]
    assert len(resumed) == 2  # the two in flight stopped with a checkpoint and resumed; the third started after
    for r in resumed:
        first, second = pinned.attempts(r)
        assert first["status"] == "interrupted" and second["status"] == "done"
    # Exactly: the same losses, step for step, as the same runs trained without interruption on the local pool.
    cli("launch", *LONG, "executor=local", "executor.threads_per_run=1", "--results", "local", "--name", "requeue", cwd=tmp_path)
    for r in runs:
        here = metrics.read_metrics(r / run_folder.METRICS)
        there = metrics.read_metrics(tmp_path / "local" / "requeue" / "runs" / r.name / run_folder.METRICS)
        assert here["step"].to_pylist() == list(range(LONG_STEPS))
        assert here["loss"].to_pylist() == there["loss"].to_pylist()
