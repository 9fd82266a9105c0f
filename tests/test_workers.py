"""The local executor's worker pool: real worker processes training real runs, real signals and kills."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from helpers import TINY, cli, statuses

from schedsweep import executors
from schedsweep.train import checkpoint, metrics, run as train
from schedsweep.sweep import store
from schedsweep.executors import workers
from schedsweep.plan.grid import make_plan
from schedsweep.sweep.api import Sweep
from schedsweep.sweep import run_folder

from helpers import pythonpath

LONG = ["task=classifier", "budget=1.0", "full_steps=1000000", "eval_every=1000000", "task.n_train=256", "task.hidden=16"]


def runs(tmp_path: Path, name: str, overrides: list[str]) -> list[Path]:
    """Run folders of a planned sweep, ready to train."""
    plan = make_plan(overrides, name=name)
    sweep, _ = Sweep.create(plan, tmp_path / "results")
    return [store.run_dir(sweep.path, r.id) for r in plan.runs]


def wait_for(predicate: Any, seconds: float, what: str) -> None:
    deadline = time.time() + seconds
    while not predicate():
        assert time.time() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def finish_all(pool: workers.Pool, seconds: float = 300) -> list[workers.Finished]:
    done: list[workers.Finished] = []
    deadline = time.time() + seconds
    while pool.busy:
        assert time.time() < deadline, "runs did not finish"
        done += pool.poll(wait_s=5)
    return done


@pytest.mark.slow
def test_one_worker_trains_runs_one_after_another_as_a_fresh_process_would(tmp_path: Path) -> None:
    paths = runs(tmp_path, "pool", [*TINY, "budget=1.0", "schedule=linear,cosine", "seed=0,1", "optimizer=sgd"])
    with workers.Pool(1, threads=1) as pool:
        finished = []
        for path in paths:
            pool.submit(path)
            finished += finish_all(pool)
        pids = {store.read_status(p).pid for p in paths}
    assert [(f.run_dir, f.status) for f in finished] == [(p, "done") for p in paths]
    assert len(pids) == 1  # one process trained all four
    # The same runs trained in this process, one process per run as before: identical metrics.
    for path in paths[2:]:
        twin = Path(str(path).replace("/pool/", "/twin/"))
        twin.mkdir(parents=True)
        (twin / run_folder.RECORD).write_bytes((path / run_folder.RECORD).read_bytes())
        assert train.main(str(twin), 1) == "done"
        ours, theirs = metrics.read_metrics(path / run_folder.METRICS), metrics.read_metrics(twin / run_folder.METRICS)
        for column in ("step", "lr", "loss", "grad_norm", "eval_loss"):
            assert ours[column].to_pylist() == theirs[column].to_pylist(), column
    assert "Traceback" not in (paths[0] / "logs" / "run.log").read_text()


@pytest.mark.slow
def test_a_killed_worker_fails_its_run_only_and_is_replaced(tmp_path: Path) -> None:
    long_run, = runs(tmp_path, "long", LONG)
    short_runs = runs(tmp_path, "short", [*TINY, "budget=1.0", "seed=0,1"])
    with workers.Pool(2, threads=1) as pool:
        pool.submit(long_run)
        pool.submit(short_runs[0])
        wait_for(lambda: store.read_status(long_run).status == "running", 120, "the long run to start")
        os.kill(store.read_status(long_run).pid, signal.SIGKILL)
        finished = {f.run_dir: f for f in finish_all(pool)}
        assert finished[long_run].status is None and "signal SIGKILL" in finished[long_run].error
        assert finished[short_runs[0]].status == "done"
        pool.submit(short_runs[1])  # on a new worker
        assert [(f.run_dir, f.status) for f in finish_all(pool)] == [(short_runs[1], "done")]
    assert executors._outcome(long_run, None, lambda: finished[long_run].error) == "failed"  # no checkpoint yet
    assert "signal SIGKILL" in (store.read_status(long_run).error or "")


@pytest.mark.slow
def test_a_run_past_its_timeout_checkpoints_and_stops(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(workers, "GRACE_S", 600.0)  # a loaded machine may take long to reach the first step
    run, = runs(tmp_path, "slow", LONG)
    with workers.Pool(1, threads=1, timeout_s=3) as pool:
        pool.submit(run)
        (finished,) = finish_all(pool, 120)
    assert finished.status == "interrupted"
    assert checkpoint.load(run)["step"] == store.read_status(run).steps_done > 0


@pytest.mark.slow
def test_ctrl_c_of_the_launcher_checkpoints_running_runs_and_a_relaunch_finishes_them(tmp_path: Path) -> None:
    args = ["launch", *LONG, "full_steps=4000", "seed=0,1", "executor.max_parallel=2",
            "executor.threads_per_run=1", "--name", "stop"]
    env = os.environ | {"PYTHONPATH": pythonpath(Path(__file__).parent)}
    # SIGINT back to its default in the launcher: a test run started in the background inherits it ignored.
    proc = subprocess.Popen([sys.executable, "-m", "schedsweep", *args], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    sweep = tmp_path / "results" / "stop"
    wait_for(lambda: sweep.is_dir() and list(statuses(sweep).values()) == ["running"] * 2, 120, "both runs to train")
    time.sleep(1)
    pids = [store.read_status(store.run_dir(sweep, i)).pid for i in statuses(sweep)]
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "interrupted" in stderr
    assert list(statuses(sweep).values()) == ["interrupted"] * 2
    for run_id in statuses(sweep):
        run = store.run_dir(sweep, run_id)
        assert 0 < checkpoint.load(run)["step"] == store.read_status(run).steps_done < 4000
    assert not any(_alive(pid) for pid in pids)  # the workers ended with the launcher

    relaunch = cli(*args, cwd=tmp_path)
    assert "2 to run" in relaunch.stdout and list(statuses(sweep).values()) == ["done"] * 2


@pytest.mark.slow
def test_a_worker_whose_launcher_dies_checkpoints_its_run(tmp_path: Path) -> None:
    run, = runs(tmp_path, "orphan", LONG)
    code = f"from schedsweep.executors import workers; p = workers.Pool(1, 1); p.submit({str(run)!r}); import time; time.sleep(600)"
    launcher = subprocess.Popen([sys.executable, "-c", code])
    wait_for(lambda: store.read_status(run).status == "running", 120, "the run to start")
    worker = store.read_status(run).pid
    launcher.kill()
    launcher.wait()
    wait_for(lambda: not _alive(worker), 60, "the worker to end")
    assert store.read_status(run).status == "interrupted" and checkpoint.load(run)["step"] > 0


def _alive(pid: int | None) -> bool:
    """Running (a zombie that no init has reaped yet counts as ended)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False
