"""End to end: the real `schedsweep` CLI in subprocesses, real training, real Parquet files."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from schedsweep.train import checkpoint, metrics
from schedsweep.sweep import store
from schedsweep.sweep import run_folder

from helpers import TINY, _wait_for, cli, statuses










@pytest.mark.slow
def test_local_sweep_end_to_end(tmp_path: Path) -> None:
    args = ["launch", *TINY, "schedule=linear,cosine", "budget=0.5,1.0", "optimizer=sgd", "optimizer.lr=0.05", "--name", "e2e"]
    first = cli(*args, "executor.max_parallel=2", cwd=tmp_path)
    sweep = tmp_path / "results" / "e2e"
    assert set(statuses(sweep).values()) == {"done"} and len(statuses(sweep)) == 4
    assert (sweep / "sweep.yaml").is_file() and "4 to run" in first.stdout

    for record in store.read_plan(sweep):
        folder = store.run_dir(sweep, record["id"]) / run_folder.METRICS
        table = metrics.read_metrics(folder)
        assert table.schema.equals(metrics.schema_for(["eval_error"]))  # the classifier logs its held-out error
        steps = record["spec"]["steps"]
        assert table["step"].to_pylist() == list(range(steps))  # one row per step, none missing or doubled
        shown = cli("schedules", "show", record["labels"]["schedule"], "--steps", str(steps), "--peak-lr", "0.05", "--csv", cwd=tmp_path)
        expected = [float(line.split(",")[1]) for line in shown.stdout.splitlines()[1:]]
        assert table["lr"].to_pylist() == pytest.approx(expected, rel=1e-12)
        evals = [s for s, e in zip(table["step"].to_pylist(), table["eval_loss"].to_pylist()) if e is not None]
        assert evals == [s for s in range(steps) if (s + 1) % 5 == 0 or s == steps - 1]
        errors = [s for s, e in zip(table["step"].to_pylist(), table["eval_error"].to_pylist()) if e is not None]
        assert errors == evals and all(0 <= e <= 1 for e in table["eval_error"].to_pylist() if e is not None)
        assert all(v is not None and v > 0 for v in table["grad_norm"].to_pylist())
        status = store.read_status(store.run_dir(sweep, record["id"]))
        assert status.final_eval_loss == pytest.approx(table["eval_loss"].to_pylist()[-1])
        for part in metrics.part_files(folder):
            assert pq.read_metadata(part).num_rows > 0

    mtimes = {p: p.stat().st_mtime_ns for p in sweep.rglob("*.parquet")}
    again = cli(*args, cwd=tmp_path)
    assert "skipping 4 done" in again.stdout and "0 to run" in again.stdout
    assert {p: p.stat().st_mtime_ns for p in sweep.rglob("*.parquet")} == mtimes

    report = cli("report", str(sweep), "--format", "json", cwd=tmp_path)
    ranking = json.loads(report.stdout)["ranking"]
    assert {row["schedule"] for row in ranking} == {"linear", "cosine"}
    table = cli("report", str(sweep), cwd=tmp_path).stdout
    assert "linear" in table and "cosine" in table


@pytest.mark.slow
def test_custom_task_failures_and_retry_failed(tmp_path: Path) -> None:
    flag = tmp_path / "fail-now"
    flag.touch()
    args = ["launch", "task=custom", "task._target_=helpers.FlakyTask", f"+task.fail_if={flag}", "full_steps=10",
            "eval_every=5", "budget=1.0", "seed=0,1", "executor=debug", "--name", "flaky"]
    cli(*args, cwd=tmp_path, check=1)  # failed runs make launch exit 1
    sweep = tmp_path / "results" / "flaky"
    assert set(statuses(sweep).values()) == {"failed"}
    error = store.read_status(store.run_dir(sweep, store.read_plan(sweep)[0]["id"])).error
    assert "FlakyTask was told to fail" in error

    flag.unlink()
    kept = cli(*args, cwd=tmp_path, check=0)
    assert "skipping 2 failed" in kept.stdout and "--retry-failed" in kept.stdout
    assert set(statuses(sweep).values()) == {"failed"}

    cli(*args, "--retry-failed", cwd=tmp_path)
    assert set(statuses(sweep).values()) == {"done"}
    assert all((store.run_dir(sweep, i) / "status.previous.json").exists() for i in statuses(sweep))


@pytest.mark.slow
def test_divergence_is_a_status_and_ranks_last(tmp_path: Path) -> None:
    cli("launch", *TINY, "budget=1.0", "schedule=constant,linear", "optimizer=sgd", "optimizer.lr=0.05,1e9",
        "executor=debug", "--name", "div", cwd=tmp_path)
    sweep = tmp_path / "results" / "div"
    assert sorted(statuses(sweep).values()) == ["diverged", "diverged", "done", "done"]
    diverged = [i for i, s in statuses(sweep).items() if s == "diverged"]
    rows = metrics.read_metrics(store.run_dir(sweep, diverged[0]) / run_folder.METRICS)
    assert rows.num_rows < 20  # stopped early
    ranking = list(csv.DictReader(io.StringIO(cli("report", str(sweep), "--format", "csv", "--table", "ranking",
                                                  cwd=tmp_path).stdout)))
    # each schedule ranks by its best LR (0.05, finite): the diverged LR (1e9) is no schedule's best
    assert sorted(r["schedule"] for r in ranking) == ["constant", "linear"] and {r["best_lr"] for r in ranking} == {"0.05"}
    # a schedule that diverged at every LR it ran ranks after both finite ones, marked
    cli("launch", *TINY, "budget=1.0", "schedule=cosine", "optimizer=sgd", "optimizer.lr=1e9", "executor=debug",
        "--name", "div", cwd=tmp_path, check=None)
    ranking = list(csv.DictReader(io.StringIO(cli("report", str(sweep), "--format", "csv", "--table", "ranking",
                                                  cwd=tmp_path).stdout)))
    last = max(ranking, key=lambda r: float(r["rank"]))
    assert (last["schedule"], last["mark"], float(last["rank"])) == ("cosine", "diverged", 3.0)


@pytest.mark.slow
def test_no_wait_returns_at_once_and_the_background_queue_finishes(tmp_path: Path) -> None:
    out = cli("launch", *TINY, "budget=0.5", "schedule=rex", "--no-wait", "--name", "bg", cwd=tmp_path)
    assert "running in the background" in out.stdout
    sweep = tmp_path / "results" / "bg"
    deadline = time.time() + 120
    while time.time() < deadline and set(statuses(sweep).values()) != {"done"}:
        time.sleep(0.5)
    assert set(statuses(sweep).values()) == {"done"}
    status = cli("status", str(sweep), cwd=tmp_path).stdout
    assert "done 1" in status


@pytest.mark.slow
def test_dry_run_shows_the_plan_and_writes_nothing(tmp_path: Path) -> None:
    out = cli("launch", *TINY, "schedule=linear,cosine,rex", "budget=0.1,0.25,1.0", "optimizer=sgd,adamw",
              "optimizer.lr=0.03,0.1", "seed=0,1", "--dry-run", cwd=tmp_path).stdout
    assert "= 72 runs" in out and "schedule 3" in out and "optimizer.lr 2" in out
    assert "nothing written" in out
    assert not (tmp_path / "results").exists()


@pytest.mark.slow
def test_schedules_show_csv_and_list(tmp_path: Path) -> None:
    out = cli("schedules", "show", "rex", "--steps", "100", "--csv", cwd=tmp_path).stdout.splitlines()
    assert out[0] == "step,lr" and len(out) == 101
    assert [line.split(",")[0] for line in out[1:]] == [str(t) for t in range(100)]
    assert float(out[1].split(",")[1]) == 1.0
    assert float(out[51].split(",")[1]) == pytest.approx(2 / 3)
    listing = cli("schedules", "list", cwd=tmp_path).stdout
    for name in ("constant", "linear", "cosine", "step", "exponential", "onecycle", "rex", "wsd"):
        assert name in listing


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["launch", "schedule=nope", "--dry-run"], "unknown schedule 'nope'"),
        (["launch", "optimizer=nope", "--dry-run"], "unknown optimizer 'nope'"),
        (["launch", "task=nope", "--dry-run"], "unknown task 'nope'"),
        (["launch", "optimizer.nope=1", "--dry-run"], "optimizer.nope"),
        (["launch", "budget=0", "--dry-run"], "budget 0 is not allowed"),
        (["launch", "budget=-1", "--dry-run"], "budget -1 is not allowed"),
        (["launch", "optimizer.lr=-0.1", "--dry-run"], "must be a number > 0"),
        (["launch", "schedule=wsd", "schedule.warmup=0.5", "schedule.decay=0.7", "--dry-run"], "warmup"),
        (["launch", "seed=range(0)", "--dry-run"], "zero runs"),
        (["launch", "executor.nope=1", "--dry-run"], "executor"),
        (["report", "does/not/exist"], "does not exist"),
        (["report", "."], "not a schedsweep sweep"),
        (["status", "does/not/exist"], "does not exist"),
        (["schedules", "show", "nope"], "unknown schedule 'nope'"),
        (["launch", "--config-dir", "conf_bad", "schedule=broken", "--dry-run"], "broken.yaml"),
        (["launch", "task=classifier", "budget=0.5", "--results", "a_file"], "not a folder"),
        (["report", "a_file"], "is a file"),
        (["report", "torn"], "line 2 is not valid JSON"),
        (["launch", "--name", "../x", "--dry-run"], "--name"),
        (["launch", "executor=slurm", "executor.nodes=-1", "--dry-run"], "executor.nodes must be an integer >= 1; got -1"),
        (["launch", "executor=slurm", "executor.setup=5", "--dry-run"], "executor.setup must be a list"),
        (["launch", "executor=local", "executor.max_parallel=0", "--dry-run"], "executor.max_parallel"),
        (["cancel", "does/not/exist"], "does not exist"),
        (["run", "torn", "--index", "0"], "line 2 is not valid JSON"),
        (["export-sbatch", "does/not/exist"], "does not exist"),
    ],
)
@pytest.mark.slow
def test_bad_input_is_one_message_and_exit_2(tmp_path: Path, args: list[str], expected: str) -> None:
    (tmp_path / "conf_bad" / "schedule").mkdir(parents=True)
    (tmp_path / "conf_bad" / "schedule" / "broken.yaml").write_text("shape: rex\nwarmup: [0.1,\n")
    (tmp_path / "a_file").write_text("not a folder")
    (tmp_path / "torn").mkdir()
    (tmp_path / "torn" / "plan.jsonl").write_text('{"id": "a"}\n{"id": \n')
    proc = cli(*args, cwd=tmp_path, check=2)
    assert expected in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert proc.stderr.startswith("error:")





@pytest.mark.slow
def test_a_killed_run_resumes_exactly_from_its_checkpoint(tmp_path: Path) -> None:
    args = ["launch", "task=classifier", "task.n_train=2048", "full_steps=600", "budget=1.0", "eval_every=50",
            "checkpoint_every=50", "executor.threads_per_run=1", "--no-reuse"]  # twins: both trained
    cli(*args, "--name", "twin", cwd=tmp_path)  # the uninterrupted twin: same spec, same run id
    cli(*args, "--name", "killed", "--no-wait", cwd=tmp_path)
    sweep = tmp_path / "results" / "killed"
    (run_id,) = statuses(sweep)
    run = store.run_dir(sweep, run_id)
    _wait_for(lambda: (run / run_folder.CHECKPOINT).exists() and checkpoint.load(run)["step"] >= 150, 120, "a checkpoint")
    # Kill everything at once, as a crashed machine would: the queue and the run's worker, in the queue's session
    # (one signal, so the worker does not outlive its launcher long enough to checkpoint and stop cleanly).
    os.killpg(int((sweep / ".lock").read_text()), signal.SIGKILL)
    _wait_for(lambda: not _pid_alive(store.read_status(run).pid), 10, "the run's process to die")
    assert store.read_status(run).status == "running"  # stale: nobody will finish it
    shown = cli("status", str(sweep), cwd=tmp_path).stdout
    counts = shown.splitlines()[0]
    assert "interrupted 1" in counts and "running" not in counts  # its writer is gone: not running forever

    relaunch = cli(*args, "--name", "killed", cwd=tmp_path)
    assert "1 to run" in relaunch.stdout
    twin = store.run_dir(tmp_path / "results" / "twin", run_id)
    resumed, uninterrupted = metrics.read_metrics(run / run_folder.METRICS), metrics.read_metrics(twin / run_folder.METRICS)
    assert resumed["step"].to_pylist() == list(range(600))  # no step missing, none twice
    for column in ("lr", "loss", "grad_norm", "eval_loss"):
        assert resumed[column].to_pylist() == uninterrupted[column].to_pylist(), column
    assert store.read_status(run).final_eval_loss == store.read_status(twin).final_eval_loss
    assert not (run / run_folder.CHECKPOINT).exists()  # removed once the run is done


def _pid_alive(pid: int | None) -> bool:
    try:
        os.kill(pid or 0, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and "Z" not in Path(f"/proc/{pid}/stat").read_text().split()[2]


@pytest.mark.slow
def test_reduce_on_plateau_is_driven_by_the_runs_own_eval_losses(tmp_path: Path) -> None:
    from schedsweep import schedules

    cli("launch", *TINY, "full_steps=60", "budget=1.0", "schedule=plateau", "schedule.patience=0", "schedule.threshold=0.5", "optimizer=sgd",
        "optimizer.lr=0.05", "executor=debug", "--name", "plateau", cwd=tmp_path)
    sweep = tmp_path / "results" / "plateau"
    (record,) = store.read_plan(sweep)
    table = metrics.read_metrics(store.run_dir(sweep, record["id"]) / run_folder.METRICS)
    replay = schedules.build(record["spec"]["schedule"], 60)
    expected = []
    for step, eval_loss in zip(table["step"].to_pylist(), table["eval_loss"].to_pylist()):
        expected.append(0.05 * replay(step))
        if eval_loss is not None:
            replay.observe(eval_loss)
    assert table["lr"].to_pylist() == pytest.approx(expected, rel=1e-12)
    assert len(set(expected)) > 1  # it did reduce


@pytest.mark.slow
def test_run_index_out_of_range_is_a_clear_error(tmp_path: Path) -> None:
    cli("launch", *TINY, "budget=0.5", "--no-submit", "--name", "one", cwd=tmp_path)
    proc = cli("run", "results/one", "--index", "5", cwd=tmp_path, check=2)
    assert "--index 5 is out of range" in proc.stderr and "Traceback" not in proc.stderr
