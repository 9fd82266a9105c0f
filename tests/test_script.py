"""The `script` task on the real CLI: the example script swept, ranked, and every way a script can go wrong."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import shlex
import shutil
import sys
from pathlib import Path

import pytest

from schedsweep import files
from schedsweep.results import collect
from schedsweep.train import metrics
from schedsweep.plan import grid as plan
from schedsweep.sweep import run_folder, store
from schedsweep.errors import ConfigError
from helpers import EXAMPLE, cli, statuses

PY = shlex.quote(sys.executable)


def test_the_command_and_the_files_it_names_are_the_run_id(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "train.py").write_text("print(1)\n")
    (tmp_path / "data.txt").write_text("abc")

    def ids(command: str) -> set[str]:
        return {r.id for r in plan.make_plan(["task=script", f"task.command='{command}'", "budget=1.0"]).runs}

    first = ids("python train.py --data=data.txt --out missing/")
    (first_run,) = plan.make_plan(["task=script", "task.command='python train.py --data=data.txt'", "budget=1.0"]).runs
    assert first_run.spec["task"]["files"] == {
        "train.py": hashlib.sha256(b"print(1)\n").hexdigest(),
        "data.txt": "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",  # sha256("abc")
    }
    assert ids("python train.py --data=data.txt --out missing/") == first  # same command, same files: same runs
    (tmp_path / "train.py").write_text("print(2)\n")
    assert ids("python train.py --data=data.txt --out missing/").isdisjoint(first)  # an edited script: new runs
    assert ids("python train.py --data=data.txt").isdisjoint(first)  # another command: new runs


@pytest.mark.parametrize(("override", "message"), [
    ("task=script", "task.command is not set"),
    ("task.command='python \"unclosed'", "cannot be split into arguments"),
])
def test_a_missing_or_malformed_command_is_one_message_at_plan_time(override: str, message: str) -> None:
    overrides = ["task=script", override] if override != "task=script" else [override]
    with pytest.raises(ConfigError, match=message):
        plan.make_plan(overrides)


@pytest.mark.slow
def test_the_example_script_swept_over_two_schedules_and_two_budgets_is_ranked(tmp_path: Path) -> None:
    shutil.copy(EXAMPLE, tmp_path / "train.py")
    cli("launch", "task=script", f"task.command='{PY} train.py --width 8'", "schedule=linear,cosine",
        "budget=0.5,1.0", "full_steps=40", "executor.max_parallel=2", "executor.threads_per_run=1", "--name", "ex",
        cwd=tmp_path)
    sweep = tmp_path / "results" / "ex"
    assert list(statuses(sweep).values()) == ["done"] * 4
    for record in store.read_plan(sweep):
        run = store.run_dir(sweep, record["id"])
        table = metrics.read_metrics(run / run_folder.METRICS)
        steps = record["spec"]["steps"]
        assert table["step"].to_pylist() == list(range(steps))
        assert table["samples_seen"].to_pylist() == [64 * (t + 1) for t in range(steps)]
        assert (run / "logs" / "script.out").read_text().startswith(f"done: {steps} steps")
        assert store.read_status(run).final_eval_loss == table["eval_loss"].to_pylist()[-1]
    final = {(r["labels"]["steps"], r["labels"]["schedule"]): store.read_status(store.run_dir(sweep, r["id"]))
             for r in store.read_plan(sweep)}
    ranking = _csv(cli("report", str(sweep), "--format", "csv", cwd=tmp_path).stdout)
    assert sorted((int(r["steps"]), r["schedule"]) for r in ranking) == sorted(final)
    for row in ranking:
        assert float(row["mean"]) == pytest.approx(final[int(row["steps"]), row["schedule"]].final_eval_loss)
    for steps in (20, 40):
        at = sorted(ranking, key=lambda r: float(r["mean"]))
        assert [r["rank"] for r in at if int(r["steps"]) == steps] == ["1", "2"]
    # The script's own metric is a column of the collected summary, and the report ranks by it.
    summary = collect.collect(sweep).summary
    last = {i: metrics.read_metrics(store.run_dir(sweep, i) / run_folder.METRICS)["param_norm"].to_pylist()[-1]
            for i in summary["run_id"]}
    assert summary.set_index("run_id")["final_param_norm"].to_dict() == pytest.approx(last)
    ids = {(r["labels"]["steps"], r["labels"]["schedule"]): r["id"] for r in store.read_plan(sweep)}
    by_norm = _csv(cli("report", str(sweep), "--metric", "param_norm", "--format", "csv", cwd=tmp_path).stdout)
    assert len(by_norm) == 4
    for row in by_norm:
        assert float(row["mean"]) == pytest.approx(last[ids[int(row["steps"]), row["schedule"]]])


def _csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


BAD = '''
import sys, time
mode = sys.argv[1]
if mode == "noinit":
    sys.exit(0)
import schedsweep.client as sweep
run = sweep.init()
if mode == "raise":
    raise RuntimeError("the data loader broke")
if mode == "nofinish":
    run.log(0, loss=1.0)
    sys.exit(0)
if mode == "order":
    run.log(1, loss=1.0)
    run.log(0, loss=1.0)
if mode == "beyond":
    run.log(run.steps, loss=1.0)
if mode == "nan":
    run.log(0, loss=1.0)
    run.log(1, loss=float("nan"))
    time.sleep(60)  # never reached: the client stops the script
if mode == "ok":
    for step in range(run.steps):
        run.log(step, loss=1.0 / (step + 1))
    run.finish(eval_loss=0.5)
'''


@pytest.mark.slow
def test_every_bad_script_gets_one_message_in_its_status_and_the_sweep_goes_on(tmp_path: Path) -> None:
    (tmp_path / "bad.py").write_text(BAD)
    modes = ["noinit", "raise", "nofinish", "order", "beyond", "nan", "ok"]
    commands = ",".join(f"{PY} bad.py {m}" for m in modes) + ",no-such-command-xyz --flag"
    cli("launch", "task=script", f"task.command={commands}", "budget=1.0", "full_steps=5", "executor.max_parallel=2",
        "--name", "bad", cwd=tmp_path, check=1)  # exit 1: some runs failed
    sweep = tmp_path / "results" / "bad"
    by_mode = {}
    for record in store.read_plan(sweep):
        command = record["spec"]["task"]["command"]
        by_mode[command.split()[-1]] = store.read_status(store.run_dir(sweep, record["id"]))
    assert {m: s.status for m, s in by_mode.items()} == {
        "noinit": "failed", "raise": "failed", "nofinish": "failed", "order": "failed", "beyond": "failed",
        "nan": "diverged", "ok": "done", "--flag": "failed"}
    assert "without calling schedsweep.client.init()" in by_mode["noinit"].error
    assert "exit code 1" in by_mode["raise"].error and "RuntimeError: the data loader broke" in by_mode["raise"].error
    assert "exited after step 0 without run.finish()" in by_mode["nofinish"].error
    assert by_mode["order"].error == "run.log(step=0) after step 1: steps must be logged in order."
    assert "step 5 is beyond the budget" in by_mode["beyond"].error
    assert "non-finite loss nan at step 1" in by_mode["nan"].error and by_mode["nan"].steps_done == 2
    assert by_mode["--flag"].error == ("cannot start task.command 'no-such-command-xyz --flag': "
                                       "command 'no-such-command-xyz' not found (neither a file nor on PATH)")
    assert by_mode["ok"].final_eval_loss == 0.5 and by_mode["ok"].steps_done == 5


DDP = '''
import json, os
import schedsweep.client as sweep
run = sweep.init()
keys = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")
with open(f"env-{os.environ['RANK']}.json", "w") as f:
    json.dump({k: os.environ.get(k) for k in keys} | {"cwd": os.getcwd(), "run": os.environ["SCHEDSWEEP_RUN_DIR"]}, f)
for step in range(run.steps):
    run.log(step, loss=1.0)
run.finish(eval_loss=1.0)
'''


@pytest.mark.slow
def test_two_tasks_per_run_start_two_ranks_with_torchrun_variables(tmp_path: Path) -> None:
    (tmp_path / "ddp.py").write_text(DDP)
    cli("launch", "task=script", f"task.command='{PY} ddp.py'", "budget=1.0", "full_steps=4", "executor.tasks_per_node=2",
        "--name", "ddp", cwd=tmp_path)
    sweep = tmp_path / "results" / "ddp"
    (run_id,) = statuses(sweep)
    assert statuses(sweep)[run_id] == "done"
    envs = [json.loads((tmp_path / f"env-{r}.json").read_text()) for r in (0, 1)]
    assert [(e["RANK"], e["WORLD_SIZE"], e["LOCAL_RANK"]) for e in envs] == [("0", "2", "0"), ("1", "2", "1")]
    assert envs[0]["MASTER_PORT"] == envs[1]["MASTER_PORT"] and envs[0]["MASTER_ADDR"]
    assert {e["cwd"] for e in envs} == {str(tmp_path)}  # the folder the sweep was launched from
    assert {e["run"] for e in envs} == {str(store.run_dir(sweep, run_id).resolve())}
    assert metrics.read_metrics(store.run_dir(sweep, run_id) / run_folder.METRICS)["step"].to_pylist() == [0, 1, 2, 3]
    assert (store.run_dir(sweep, run_id) / "logs" / "script.rank1.err").exists()


@pytest.mark.slow
def test_a_command_that_does_not_exist_fails_the_run_with_one_message(tmp_path: Path) -> None:
    from schedsweep.train import run as train

    record = {"id": "r", "spec": {"task": {"command": "no-such-command-xyz --flag", "files": {}}}, "labels": {}, "log": {}}
    path = tmp_path / "runs" / "r"
    files.write_json(path / run_folder.RECORD, record)
    assert train.main(str(path)) == "failed"  # the one execution seam dispatches script tasks
    assert store.read_status(path).error == ("cannot start task.command 'no-such-command-xyz --flag': "
                                             "command 'no-such-command-xyz' not found (neither a file nor on PATH)")
