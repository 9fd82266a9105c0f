"""init_from=PATH init_step=N: runs that start from a checkpoint a plain torch script wrote, their ids, their
steps, and a script task that reads run.init_checkpoint."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from schedsweep.errors import ConfigError
from schedsweep.plan.grid import make_plan
from schedsweep.results import collect
from schedsweep.sweep import run_folder, store
from schedsweep.train.metrics import read_metrics

from helpers import cli

TASK = ["task=classifier", "task.n_train=256", "task.hidden=16", "eval_every=5"]
OPT = ["optimizer=adamw", "optimizer.lr=0.01", "optimizer.weight_decay=0.0"]
PLAIN = """\
import sys
import torch
from schedsweep.tasks.classifier import Classifier

# A user's own loop: the model, plain AdamW over model.parameters(), a constant LR, 20 updates.
task = Classifier(n_train=256, hidden=16, seed=0)
model = task.build_model()
optimizer = torch.optim.AdamW(model.parameters(), lr=0.01, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
batches = task.batches()
for step in range(20):
    optimizer.zero_grad()
    task.loss(model, next(batches)).backward()
    optimizer.step()
torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict()}, sys.argv[1])
"""


def write_checkpoint(folder: Path) -> Path:
    import subprocess

    (folder / "plain.py").write_text(PLAIN)
    path = folder / "step_20.pt"
    subprocess.run([sys.executable, "plain.py", str(path)], cwd=folder, check=True)
    return path


def one(*overrides: str):
    (run,) = make_plan([*TASK, *OPT, "full_steps=40", *overrides], check_imports=False).runs
    return run


@pytest.mark.slow
def test_ids_hold_the_checkpoints_content_and_step_not_its_path(tmp_path: Path) -> None:
    path = write_checkpoint(tmp_path)
    plain = one("budget=1.0")
    run = one("budget=1.0", f"init_from={path}", "init_step=20")
    assert "init" not in plain.spec and run.id != plain.id
    assert run.identity["init"] == {"digest": run.spec["init"]["digest"], "step": 20} and "path" not in run.identity["init"]
    moved = tmp_path / "elsewhere.pt"
    shutil.copy(path, moved)
    assert one("budget=1.0", f"init_from={moved}", "init_step=20").id == run.id  # the file's content, not its name
    assert one("budget=1.0", f"init_from={path}", "init_step=19").id != run.id
    moved.write_bytes(path.read_bytes() + b"\0")
    assert one("budget=1.0", f"init_from={moved}", "init_step=20").id != run.id
    with pytest.raises(ConfigError, match="init_from = .*missing.pt.*cannot read the file"):
        one("budget=1.0", f"init_from={tmp_path / 'missing.pt'}")
    with pytest.raises(ConfigError, match="init_step=39 leaves nothing to compare of a 40-step budget"):
        one("budget=1.0", f"init_from={path}", "init_step=39")


@pytest.mark.slow
def test_cooldowns_of_a_plain_torch_checkpoint_continue_its_run_exactly(tmp_path: Path) -> None:
    path = write_checkpoint(tmp_path)
    common = [*TASK, *OPT, "full_steps=40", "schedule=constant", "schedule.warmup=0", "executor=debug",
              "executor.threads_per_run=1"]
    cli("launch", *common, "budget=1.0", "--name", "whole", cwd=tmp_path)  # the same 40 steps in schedsweep's loop
    cli("launch", *common, "budget=1.0", f"init_from={path}", "init_step=20", "--name", "cont", cwd=tmp_path)
    whole, cont = (store.read_plan(tmp_path / "results" / n)[0]["id"] for n in ("whole", "cont"))
    rows = read_metrics(store.run_dir(tmp_path / "results" / "cont", cont) / run_folder.METRICS).to_pylist()
    ref = read_metrics(store.run_dir(tmp_path / "results" / "whole", whole) / run_folder.METRICS).to_pylist()[20:]
    assert [r["step"] for r in rows] == list(range(20, 40))
    for column in ("lr", "loss", "grad_norm", "eval_loss"):  # bit for bit: a plain AdamW's state, matched by parameter
        assert [r[column] for r in rows] == [r[column] for r in ref], column

    # WSD cooldowns of that checkpoint: the LR of each step over the whole budget, the steps counted from it
    cli("launch", *common, "schedule=wsd", "schedule.decay=0.25,0.5", "budget=1.0", f"init_from={path}", "init_step=20",
        "--name", "cool", cwd=tmp_path)
    summary = collect.collect(tmp_path / "results" / "cool").summary
    report = cli("report", str(tmp_path / "results" / "cool"), "--format", "md", cwd=tmp_path).stdout
    assert "are cooldowns of that checkpoint: they start at its step 20" in report
    assert sorted(summary["steps_trained"]) == [20, 20] and (summary["steps_done"] == 40).all()
    for record in store.read_plan(tmp_path / "results" / "cool"):
        table = read_metrics(store.run_dir(tmp_path / "results" / "cool", record["id"]) / run_folder.METRICS)
        decay = record["spec"]["schedule"]["decay"]
        lrs = table["lr"].to_pylist()
        assert lrs[0] == pytest.approx(0.01) and lrs[-1] < 0.01 * 0.1
        assert sum(lr < 0.01 for lr in lrs) == pytest.approx(decay * 40, abs=1)  # the cooldown at its place in 40 steps


SCRIPT = """\
import schedsweep.client as sweep
run = sweep.init()
open("seen.txt", "a").write(f"{run.init_checkpoint} {run.init_step} {run.start_step}\\n")
for step in range(run.start_step, run.steps):
    run.log(step, loss=1.0 / (step + 1))
run.finish(eval_loss=0.5)
"""


@pytest.mark.slow
def test_a_script_task_gets_the_checkpoint_path(tmp_path: Path) -> None:
    (tmp_path / "train.py").write_text(SCRIPT)
    ckpt = tmp_path / "mine.pt"
    ckpt.write_bytes(b"any bytes: the script reads its own checkpoint")
    cli("launch", "task=script", f"task.command='{sys.executable} train.py'", "full_steps=30", "budget=1.0",
        f"init_from={ckpt}", "init_step=10", "executor=debug", "--name", "s", cwd=tmp_path)
    assert (tmp_path / "seen.txt").read_text() == f"{ckpt} 10 10\n"
    (record,) = store.read_plan(tmp_path / "results" / "s")
    table = read_metrics(store.run_dir(tmp_path / "results" / "s", record["id"]) / run_folder.METRICS)
    assert table["step"].to_pylist() == list(range(10, 30))
