"""Slurm behaviour on the real one-node cluster started by tests/slurm/cluster.sh (never a mock).

Outside CI these tests skip with one line when no cluster answers; with CI=true a missing cluster
fails them. The cluster's MaxArraySize is 4, so a 6-run sweep is cut into two arrays.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from schedsweep.train import metrics
from schedsweep.sweep import claims, store
from schedsweep.results import report
from schedsweep.executors import slurm, squeue
from schedsweep.sweep.api import Sweep
from schedsweep.sweep import run_folder
from helpers import FLAKY, assert_trained_once, attempts_per_seed
from helpers import _wait_for as _wait
from helpers import TESTS, cli, statuses

from helpers import accounting, pythonpath

pytestmark = [pytest.mark.slurm, pytest.mark.usefixtures("cluster")]
TINY = ["task=classifier", "task.n_train=256", "task.hidden=16", "eval_every=5", "executor=slurm"]






def _queue_empty(sweep: Path) -> bool:
    return not slurm.active_runs(sweep)


def test_a_sweep_over_max_array_size_runs_in_chunked_arrays_and_ranks(tmp_path: Path) -> None:
    assert squeue.max_array_size() == 4  # tests/slurm/cluster.sh: low, so that six runs make two arrays
    out = cli("launch", *TINY, "full_steps=20", "schedule=linear,cosine", "budget=1.0", "seed=range(3)",
              "executor.time_per_step_s=1", "--wait", "--name", "s6", cwd=tmp_path).stdout
    assert "queued 6 runs in 2 job array(s)" in out
    sweep = tmp_path / "results" / "s6"
    assert set(statuses(sweep).values()) == {"done"}
    jobs = slurm.latest_jobs(sweep)
    assert len({j["array"] for j in jobs.values()}) == 2 and len(jobs) == 6
    assert sorted(int(j["job"].split("_")[1]) for j in jobs.values()) == [0, 0, 1, 1, 2, 3]  # tasks 0-3, then 0-1
    ranked = report.build(report.load_runs(sweep)).ranked  # what `schedsweep report` prints
    assert sorted(ranked["schedule"]) == ["cosine", "linear"] and list(ranked["n"]) == [3, 3]
    assert sorted(ranked["rank"]) == [1, 2] and ranked["mean"].between(0.1, 3.0).all()


@pytest.mark.accounting
def test_relaunch_never_double_submits_and_cancel_leaves_nothing(tmp_path: Path) -> None:
    args = ["launch", *TINY, "full_steps=20", "budget=1.0", "seed=range(3)", "+executor.additional_parameters.hold=true",
            "--name", "held"]
    first = cli(*args, cwd=tmp_path).stdout
    assert "queued 3 runs" in first
    again = cli(*args, cwd=tmp_path).stdout
    assert "queued 0 runs" in again and "3 already pending or running" in again
    sweep = tmp_path / "results" / "held"
    assert len(slurm.active_runs(sweep)) == 3
    cancelled = cli("cancel", str(sweep), cwd=tmp_path).stdout
    assert "cancelled 1 job array(s)" in cancelled
    _wait(lambda: _queue_empty(sweep), 30, "the queue to empty")
    squeue = subprocess.run(["squeue", "-h", "-r", "-j", next(iter(slurm.latest_jobs(sweep).values()))["array"]],
                            capture_output=True, text=True).stdout
    assert squeue.strip() == ""
    _wait(lambda: "failed 3" in cli("status", str(sweep), cwd=tmp_path).stdout, 60, "cancelled runs to show as failed")
    error = store.read_status(store.run_dir(sweep, store.read_plan(sweep)[0]["id"])).error
    assert "CANCELLED" in error or ("left the queue" in error and not accounting())


@pytest.mark.accounting
def test_a_run_that_raises_is_failed_with_its_error(tmp_path: Path) -> None:
    flag = tmp_path / "fail-now"
    flag.touch()
    cli("launch", "task=custom", "task._target_=helpers.FlakyTask", f"+task.fail_if={flag}", "full_steps=10",
        "budget=1.0", "executor=slurm", "--wait", "--name", "raises", cwd=tmp_path, check=1)
    sweep = tmp_path / "results" / "raises"
    (status,) = [store.read_status(store.run_dir(sweep, r["id"])) for r in store.read_plan(sweep)]
    assert status.status == "failed" and "FlakyTask was told to fail" in (status.error or "")


@pytest.mark.accounting
def test_a_requeued_job_resumes_exactly(tmp_path: Path) -> None:
    args = ["task=classifier", "task.n_train=2048", "full_steps=1500", "budget=1.0", "eval_every=100", "checkpoint_every=100", "--no-reuse"]  # a twin to compare with: trained, not reused
    cli("launch", *args, "executor=debug", "executor.threads_per_run=1", "--name", "twin", cwd=tmp_path)
    cli("launch", *args, "executor=slurm", "--name", "requeued", cwd=tmp_path)
    sweep = tmp_path / "results" / "requeued"
    (run_id,) = statuses(sweep)
    run = store.run_dir(sweep, run_id)
    _wait(lambda: (run / run_folder.CHECKPOINT).exists(), 120, "a first checkpoint")
    job = slurm.latest_jobs(sweep)[run_id]["job"]
    subprocess.run(["scontrol", "requeue", job], check=True)
    _wait(lambda: store.read_status(run).status == "done", 240, "the requeued run to finish")
    twin = store.run_dir(tmp_path / "results" / "twin", run_id)
    resumed, uninterrupted = metrics.read_metrics(run / run_folder.METRICS), metrics.read_metrics(twin / run_folder.METRICS)
    assert resumed["step"].to_pylist() == list(range(1500))
    assert resumed["loss"].to_pylist() == uninterrupted["loss"].to_pylist()
    assert store.read_status(run).final_eval_loss == store.read_status(twin).final_eval_loss
    assert len(claims.attempts(run)) == 2 and {a["job"] for a in claims.attempts(run)} == {job}  # one job, twice


def test_two_task_ddp_matches_its_single_process_twin(tmp_path: Path) -> None:
    args = ["task=classifier", "task.n_train=1024", "full_steps=30", "budget=1.0", "eval_every=10", "--no-reuse"]  # a twin to compare with: trained, not reused
    cli("launch", *args, "executor=debug", "executor.threads_per_run=1", "--name", "single", cwd=tmp_path)
    cli("launch", *args, "executor=slurm", "executor.tasks_per_node=2", "--wait", "--name", "ddp", cwd=tmp_path)
    cli("launch", *args, "executor.tasks_per_node=2", "executor.threads_per_run=1", "--name", "ddp_local", cwd=tmp_path)
    (run_id,) = statuses(tmp_path / "results" / "single")
    single = metrics.read_metrics(store.run_dir(tmp_path / "results" / "single", run_id) / run_folder.METRICS)
    for name in ("ddp", "ddp_local"):
        ddp = metrics.read_metrics(store.run_dir(tmp_path / "results" / name, run_id) / run_folder.METRICS)
        assert ddp["step"].to_pylist() == list(range(30))
        assert ddp["loss"].to_pylist() == pytest.approx(single["loss"].to_pylist(), rel=1e-5)
        evals = [(a, b) for a, b in zip(ddp["eval_loss"].to_pylist(), single["eval_loss"].to_pylist()) if a or b]
        assert len(evals) == 3 and all(a == pytest.approx(b, rel=1e-5) for a, b in evals)
        assert ddp["samples_seen"].to_pylist() == single["samples_seen"].to_pylist()


def test_two_node_ddp_over_four_ranks_matches_its_single_process_twin(tmp_path: Path) -> None:
    """executor.nodes=2 executor.tasks_per_node=2: one run over 4 ranks on node1 and node2 (two slurmd on this host)."""
    nodes = subprocess.run(["sinfo", "-h", "-N", "-o", "%N"], capture_output=True, text=True).stdout.split()
    if len(set(nodes)) < 2:
        pytest.skip(f"the test cluster has {len(set(nodes))} node(s); start two with: bash tests/slurm/cluster.sh start")
    args = ["task=classifier", "task.n_train=1024", "full_steps=30", "budget=1.0", "eval_every=10", "--no-reuse"]  # a twin to compare with: trained, not reused
    cli("launch", *args, "executor=debug", "executor.threads_per_run=1", "--name", "single", cwd=tmp_path)
    cli("launch", *args, "executor=slurm", "executor.nodes=2", "executor.tasks_per_node=2", "--wait", "--name", "multi",
        cwd=tmp_path)
    (run_id,) = statuses(tmp_path / "results" / "single")
    single = metrics.read_metrics(store.run_dir(tmp_path / "results" / "single", run_id) / run_folder.METRICS)
    multi_dir = store.run_dir(tmp_path / "results" / "multi", run_id)
    multi = metrics.read_metrics(multi_dir / run_folder.METRICS)
    assert store.read_status(multi_dir).status == "done"
    assert multi["step"].to_pylist() == list(range(30))
    assert multi["loss"].to_pylist() == pytest.approx(single["loss"].to_pylist(), rel=1e-5)
    evals = [(a, b) for a, b in zip(multi["eval_loss"].to_pylist(), single["eval_loss"].to_pylist()) if a or b]
    assert len(evals) == 3 and all(a == pytest.approx(b, rel=1e-5) for a, b in evals)
    assert multi["samples_seen"].to_pylist() == single["samples_seen"].to_pylist()
    # submitit's log of each task names its node and rank (read from the logs: sacct may be off)
    job = slurm.latest_jobs(tmp_path / "results" / "multi")[run_id]["job"]
    logs = (tmp_path / "results" / "multi" / ".submitit").glob(f"*/{job}_*_log.out")
    ranks = {m.groups() for log in logs for m in re.finditer(r"node=(\d)\(2\), global_rank=(\d)\(4\)", log.read_text())}
    assert ranks == {("0", "0"), ("0", "1"), ("1", "2"), ("1", "3")}


def test_exported_sbatch_script_submitted_by_plain_sbatch_runs_the_sweep(tmp_path: Path) -> None:
    cli("launch", *TINY, "full_steps=20", "schedule=linear,rex", "budget=0.5,1.0", "--no-submit", "--name", "plain", cwd=tmp_path)
    cli("export-sbatch", "results/plain", "--out", "plain.sbatch", cwd=tmp_path)
    env = os.environ | {"PYTHONPATH": pythonpath(Path(__file__).parent)}
    subprocess.run(["sbatch", "--wait", "plain.sbatch"], cwd=tmp_path, env=env, check=True, capture_output=True, timeout=300)
    assert set(statuses(tmp_path / "results" / "plain").values()) == {"done"}


def test_a_sweep_larger_than_max_array_size_is_exported_as_arrays_that_status_shows(tmp_path: Path) -> None:
    n = squeue.max_array_size() + 2
    cli("launch", *TINY, "full_steps=10", "budget=1.0", f"seed=range({n})", "--no-submit", "--name", "big", cwd=tmp_path)
    printed = cli("export-sbatch", "results/big", "--out", "big.sbatch", cwd=tmp_path).stdout
    commands = [line.split() for line in printed.splitlines() if line.startswith("sbatch ")]  # as the README says
    assert len(commands) == 2
    env = os.environ | {"PYTHONPATH": pythonpath(Path(__file__).parent)}
    jobs = [subprocess.run([*cmd[:1], "--parsable", *cmd[1:]], cwd=tmp_path, env=env, check=True, capture_output=True,
                           text=True).stdout.strip() for cmd in commands]
    sweep = Sweep(tmp_path / "results" / "big")
    _wait(lambda: any(v.job.startswith(f"{jobs[1]}_") and v.job_state == "RUNNING" for v in sweep.status().runs),
          300, "the second array's tasks to show in status")
    _wait(lambda: set(statuses(sweep.path).values()) == {"done"}, 400, "every run to finish")
    assert f"{n} runs · done {n} (all finished)" in cli("status", "results/big", cwd=tmp_path).stdout
    runs = [store.run_dir(sweep.path, r["id"]) for r in store.read_plan(sweep.path)]
    expected = [f"{jobs[0]}_{i}" for i in range(n - 2)] + [f"{jobs[1]}_{i}" for i in range(2)]
    assert [claims.attempts(r)[0]["job"] for r in runs] == expected  # run OFFSET+i trained by task i of its array


def test_usr2_checkpoints_and_requeues_itself_then_resumes_exactly(tmp_path: Path) -> None:
    # SIGUSR2 is what Slurm sends signal_delay_s before the time limit (and at preemption). The Slurm run steps
    # slowly (50 ms) until it has requeued, so the signal reaches it mid-run however loaded the machine is.
    slow = tmp_path / "slow"
    args = ["task=custom", "task._target_=helpers.FlakyTask", f"+task.slow_if={slow}", "full_steps=1500", "budget=1.0",
            "eval_every=100", "checkpoint_every=100", "--no-reuse"]  # a twin to compare with: trained, not reused
    cli("launch", *args, "executor=debug", "executor.threads_per_run=1", "--name", "twin", cwd=tmp_path)
    slow.touch()
    cli("launch", *args, "executor=slurm", "executor.max_requeues=1", "--name", "usr2", cwd=tmp_path)
    sweep = tmp_path / "results" / "usr2"
    (run_id,) = statuses(sweep)
    run = store.run_dir(sweep, run_id)
    _wait(lambda: (metrics.reached(run / run_folder.METRICS) or 0) > 0 or (run / run_folder.CHECKPOINT).exists(), 120, "training to start")
    job = slurm.latest_jobs(sweep)[run_id]["job"]
    subprocess.run(["scancel", "--signal=USR2", job], check=True)
    _wait(lambda: store.read_status(run).requeues == 1, 240, "the run to checkpoint and requeue itself")
    slow.unlink()
    _wait(lambda: store.read_status(run).status == "done", 240, "the self-requeued run to finish")
    assert store.read_status(run).requeues == 1
    twin = store.run_dir(tmp_path / "results" / "twin", run_id)
    resumed, uninterrupted = metrics.read_metrics(run / run_folder.METRICS), metrics.read_metrics(twin / run_folder.METRICS)
    assert resumed["step"].to_pylist() == list(range(1500))
    assert resumed["loss"].to_pylist() == uninterrupted["loss"].to_pylist()


def test_a_local_launch_leaves_the_runs_live_on_the_cluster_alone(tmp_path: Path) -> None:
    log, slow = tmp_path / "attempts.txt", tmp_path / "slow"
    slow.touch()  # 50 ms a step until removed: the jobs are still running when the local launch looks (a loaded machine included)
    args = ["launch", *FLAKY, f"+task.log_to={log}", f"+task.slow_if={slow}", "full_steps=6000", "eval_every=2000", "seed=0,1",
            "--name", "live"]
    cli(*args, "executor=slurm", cwd=tmp_path)
    sweep = tmp_path / "results" / "live"
    runs = [store.run_dir(sweep, r["id"]) for r in store.read_plan(sweep)]
    _wait(lambda: all(claims.read(r) is not None for r in runs), 180, "both Slurm jobs to claim their runs")
    local = cli(*args, "executor=local", "executor.threads_per_run=1", cwd=tmp_path).stdout
    assert "running 2" in local and "done" not in local  # nothing trained here (zero counts are not shown)
    slow.unlink()
    _wait(lambda: set(statuses(sweep).values()) == {"done"}, 300, "the Slurm jobs to finish")
    assert attempts_per_seed(log) == {"0": 1, "1": 1}
    assert_trained_once(sweep, 6000)
    assert all(claims.attempts(r)[0]["job"] for r in runs)  # claimed by the array tasks


def _shims(tmp_path: Path) -> dict[str, str]:
    """A PATH where sacct fails (no accounting) and squeue's first call times out (then real squeue)."""
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    (bin_ / "sacct").write_text("#!/bin/sh\necho 'sacct: error: Slurm accounting storage is disabled' >&2\nexit 1\n")
    real = subprocess.run(["which", "squeue"], capture_output=True, text=True, check=True).stdout.strip()
    (bin_ / "squeue").write_text(f"#!/bin/sh\nif [ ! -e {bin_}/failed-once ]; then touch {bin_}/failed-once\n"
                                 "echo 'slurm_load_jobs error: Socket timed out on send/recv operation' >&2; exit 1; fi\n"
                                 f'exec {real} "$@"\n')
    for shim in ("sacct", "squeue"):
        (bin_ / shim).chmod(0o755)
    return os.environ | {"PATH": f"{bin_}:{os.environ['PATH']}", "PYTHONPATH": pythonpath(TESTS), "COLUMNS": "200"}


def test_wait_ends_without_accounting_and_survives_a_transient_squeue_error(tmp_path: Path) -> None:
    env = _shims(tmp_path)
    args = ["launch", *TINY, "full_steps=20", "budget=1.0", "seed=range(2)", "+executor.additional_parameters.hold=true",
            "--wait", "--name", "noacct"]
    waiting = subprocess.Popen([sys.executable, "-m", "schedsweep", *args], cwd=tmp_path, env=env, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    sweep = tmp_path / "results" / "noacct"
    _wait(lambda: len(slurm.latest_jobs(sweep)) == 2, 120, "the array to be queued")
    time.sleep(3)  # --wait is polling now; its first squeue call failed once and was retried
    subprocess.run(["scancel", next(iter(slurm.latest_jobs(sweep).values()))["array"]], check=True)
    out, err = waiting.communicate(timeout=120)  # never: waited on forever
    assert waiting.returncode == 1 and "failed 2" in out, err
    assert (tmp_path / "bin" / "failed-once").exists()
    error = store.read_status(store.run_dir(sweep, store.read_plan(sweep)[0]["id"])).error
    assert "left the queue" in error
    shown = subprocess.run([sys.executable, "-m", "schedsweep", "status", str(sweep)], cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0 and "failed 2" in shown.stdout
