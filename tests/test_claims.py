"""One writer per run, interrupted runs and failures that resume: the real CLI, real processes."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from schedsweep import files
from schedsweep.train import checkpoint, metrics
from schedsweep.sweep import claims, store
from schedsweep.sweep import run_folder
from helpers import FLAKY, TESTS, _wait_for, assert_trained_once, attempts_per_seed, cli, statuses

from helpers import pythonpath



def popen(*args: str, cwd: Path) -> subprocess.Popen[str]:
    env = os.environ | {"PYTHONPATH": pythonpath(TESTS), "COLUMNS": "200"}
    return subprocess.Popen([sys.executable, "-m", "schedsweep", *args], cwd=cwd, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)






@pytest.mark.slow
def test_run_index_beside_a_local_queue_trains_every_run_once(tmp_path: Path) -> None:
    log = tmp_path / "attempts.txt"
    args = ["launch", *FLAKY, f"+task.log_to={log}", "full_steps=800", "seed=0,1,2", "executor.max_parallel=1",
            "executor.threads_per_run=1", "--name", "both"]
    cli(*args, "--no-submit", cwd=tmp_path)
    queue = popen(*args, cwd=tmp_path)
    _wait_for(lambda: log.exists(), 120, "the queue's first run to start")
    runs = [popen("run", "results/both", "--index", str(i), cwd=tmp_path) for i in (0, 1, 2)]
    outs = [p.communicate(timeout=300) for p in runs]
    assert [p.returncode for p in runs] == [0, 0, 0], outs
    assert queue.wait(timeout=300) == 0, queue.communicate()
    assert attempts_per_seed(log) == {"0": 1, "1": 1, "2": 1}  # counted by the task itself
    assert_trained_once(tmp_path / "results" / "both", 800)


@pytest.mark.slow
def test_two_local_launches_at_once_train_every_run_once(tmp_path: Path) -> None:
    log = tmp_path / "attempts.txt"
    args = ["launch", *FLAKY, f"+task.log_to={log}", "full_steps=300", "seed=0,1", "executor.max_parallel=2",
            "executor.threads_per_run=1", "--name", "twice"]
    first, second = popen(*args, cwd=tmp_path), popen(*args, cwd=tmp_path)
    codes = sorted([first.wait(timeout=300), second.wait(timeout=300)])
    assert codes in ([0, 0], [0, 2])  # 2: "being run by another schedsweep process"
    assert attempts_per_seed(log) == {"0": 1, "1": 1}
    assert_trained_once(tmp_path / "results" / "twice", 300)


@pytest.mark.slow
def test_a_live_claim_is_left_alone_and_a_stale_one_is_interrupted_then_taken_over(tmp_path: Path) -> None:
    # Another host's claims: the one fault here that cannot be caused for real on one machine.
    args = ["launch", *FLAKY, "full_steps=50", "seed=0,1", "executor=debug", "--name", "foreign"]
    cli(*args, "--no-submit", cwd=tmp_path)
    sweep = tmp_path / "results" / "foreign"
    live, stale = (store.run_dir(sweep, r["id"]) for r in store.read_plan(sweep))
    for run, beat in ((live, time.time()), (stale, time.time() - claims.STALE_S - 1)):
        store.write_status(run, store.RunStatus("running", host="elsewhere", pid=1))
        claim = claims.Claim("elsewhere", 1, 1, None, store.now(), beat, "t")
        files.write_json(run / run_folder.CLAIM, claim.__dict__)
    shown = cli("status", str(sweep), cwd=tmp_path).stdout
    assert "running 1" in shown and "interrupted 1" in shown and "elsewhere pid 1" in shown

    out = cli(*args, cwd=tmp_path).stdout
    assert "done 1" in out and "running 1" in out
    assert store.read_status(stale).status == "done"
    (taken,) = claims.attempts(stale)
    assert taken["took_over"]["host"] == "elsewhere"
    assert store.read_status(live).status == "running" and claims.read(live).host == "elsewhere"  # untouched
    assert not (live / run_folder.METRICS).exists()


@pytest.mark.slow
def test_a_failed_run_resumes_from_its_checkpoint_with_retry_failed(tmp_path: Path) -> None:
    flag = tmp_path / "fail-now"
    flag.touch()
    base = ["launch", *FLAKY, "full_steps=40", "eval_every=10", "checkpoint_every=10", "executor=debug"]
    cli(*base, "--name", "twin", cwd=tmp_path)
    args = [*base, f"+task.fail_if={flag}", "+task.fail_after=25", "--name", "flaky"]
    cli(*args, cwd=tmp_path, check=1)  # raises at step 25, after the checkpoint of step 20
    sweep = tmp_path / "results" / "flaky"
    (run_id,) = statuses(sweep)
    run = store.run_dir(sweep, run_id)
    assert store.read_status(run).status == "failed"
    assert checkpoint.load(run)["step"] == 20  # kept: a failed run is not started over
    first_part = metrics.part_files(run / run_folder.METRICS)[0]
    before = (first_part.stat().st_ino, first_part.stat().st_mtime_ns)

    flag.unlink()
    cli(*args, "--retry-failed", cwd=tmp_path)
    assert store.read_status(run).status == "done"
    assert (first_part.stat().st_ino, first_part.stat().st_mtime_ns) == before  # steps 0..19 kept, not redone
    (twin_id,) = statuses(tmp_path / "results" / "twin")
    twin = store.run_dir(tmp_path / "results" / "twin", twin_id)
    resumed, uninterrupted = metrics.read_metrics(run / run_folder.METRICS), metrics.read_metrics(twin / run_folder.METRICS)
    assert resumed["step"].to_pylist() == list(range(40))
    assert resumed["loss"].to_pylist() == uninterrupted["loss"].to_pylist()
    assert store.read_status(run).final_loss == store.read_status(twin).final_loss
    assert not (run / run_folder.CHECKPOINT).exists()


@pytest.mark.slow
def test_ctrl_c_checkpoints_the_run_and_the_next_launch_resumes_it(tmp_path: Path) -> None:
    args = ["launch", *FLAKY, "full_steps=4000", "eval_every=1000", "checkpoint_every=200", "executor=debug", "--name", "sigint"]
    proc = popen(*args, cwd=tmp_path)
    sweep = tmp_path / "results" / "sigint"
    _wait_for(lambda: store.is_sweep(sweep) and any((store.run_dir(sweep, i) / run_folder.CHECKPOINT).exists() for i in statuses(sweep)),
              120, "the run's first checkpoint")
    (run_id,) = statuses(sweep)
    run = store.run_dir(sweep, run_id)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "Traceback" not in err
    status = store.read_status(run)
    assert status.status == "interrupted" and "SIGINT" in (status.error or "")
    assert checkpoint.load(run)["step"] == status.steps_done > 0
    assert "interrupted 1" in cli("status", str(sweep), cwd=tmp_path).stdout
    cli(*args, cwd=tmp_path)
    assert metrics.read_metrics(run / run_folder.METRICS)["step"].to_pylist() == list(range(4000))
    assert len(claims.attempts(run)) == 2


@pytest.mark.slow
def test_a_ddp_rank_that_raises_stops_every_rank_as_failed(tmp_path: Path) -> None:
    flag = tmp_path / "fail-now"
    flag.touch()
    # cli's own timeout (10 minutes) fails the test if rank 0 waits out gloo's 30-minute collective timeout
    cli("launch", *FLAKY, "full_steps=2000", f"+task.fail_if={flag}", "+task.fail_after=5", "+task.fail_rank=1",
              "executor.tasks_per_node=2", "executor.threads_per_run=1", "--name", "rank", cwd=tmp_path, check=1)
    sweep = tmp_path / "results" / "rank"
    (run_id,) = statuses(sweep)
    status = store.read_status(store.run_dir(sweep, run_id))
    assert status.status == "failed"
    assert "rank1" in status.error and "FlakyTask was told to fail (rank 1)" in status.error


@pytest.mark.slow
def test_files_follow_the_umask(tmp_path: Path) -> None:
    env = os.environ | {"PYTHONPATH": pythonpath(TESTS)}
    subprocess.run([sys.executable, "-m", "schedsweep", "launch", *FLAKY, "full_steps=10", "executor=debug", "--name", "shared"],
                   cwd=tmp_path, env=env, check=True, capture_output=True, preexec_fn=lambda: os.umask(0o022))
    files = [p for p in (tmp_path / "results" / "shared").rglob("*") if p.is_file() and not p.name.startswith(".")]
    assert {"plan.jsonl", "sweep.yaml", "run.json", "status.json", "claims.jsonl"} <= {p.name for p in files}
    assert {p.name: oct(p.stat().st_mode & 0o777) for p in files} == {p.name: "0o644" for p in files}
    assert json.loads(next(p for p in files if p.name == "claims.jsonl").read_text())["host"] == socket.gethostname()
