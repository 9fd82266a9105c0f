"""A script run is labelled as it ran: optimizer "script" and the script's own peak LR, unless the sweep chose them."""

from __future__ import annotations

import csv
import io
import json
import shlex
import sys
from pathlib import Path

import pytest

from schedsweep.plan import grid as plan
from schedsweep.sweep import run_folder, store
from schedsweep.train import metrics
from helpers import cli

PY = shlex.quote(sys.executable)

# Its own plain SGD on a quadratic (no torch: the test is about labels), and its own default LR.
OWN_SGD = '''
import schedsweep.client as sweep
run = sweep.init(steps=50, peak_lr=0.01, schedule="cosine")
print("peak_lr", run.peak_lr, flush=True)
w = 5.0
for step in range(run.start_step, run.steps):
    grad = 2 * w
    w -= run.lr_at(step) * grad
    run.log(step, loss=w * w)
run.finish(eval_loss=w * w)
'''
COMMON = ["task=script", f"task.command='{PY} own.py'", "budget=1.0", "full_steps=20", "executor=debug"]


def _launch(tmp_path: Path, name: str, *extra: str) -> Path:
    (tmp_path / "own.py").write_text(OWN_SGD)
    cli("launch", *COMMON, "schedule=linear,cosine", *extra, "--name", name, cwd=tmp_path)
    return tmp_path / "results" / name


def _ranking(sweep: Path, tmp_path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(cli("report", str(sweep), "--format", "csv", "--table", "ranking",
                                               cwd=tmp_path).stdout)))


@pytest.mark.slow
def test_a_script_with_its_own_sgd_and_lr_is_reported_as_script_at_its_own_lr(tmp_path: Path) -> None:
    sweep = _launch(tmp_path, "own")
    for record in store.read_plan(sweep):
        assert record["labels"]["optimizer"] == "script" and record["labels"]["lr"] is None
        assert record["spec"]["optimizer"] == {}  # adamw's defaults are not this run's
        run = store.run_dir(sweep, record["id"])
        assert store.read_status(run).peak_lr == 0.01  # reported back by the client
        assert (run / "logs" / "script.out").read_text().startswith("peak_lr 0.01")
        assert metrics.read_metrics(run / run_folder.METRICS)["lr"].to_pylist()[0] == pytest.approx(0.01)
    rows = _ranking(sweep, tmp_path)
    assert sorted(r["schedule"] for r in rows) == ["cosine", "linear"]
    assert {r["optimizer"] for r in rows} == {"script"}
    assert {float(r["best_lr"]) for r in rows} == {0.01}
    text = cli("report", str(sweep), cwd=tmp_path).stdout
    assert "adamw" not in text and "0.003" not in text
    listing = cli("runs", str(sweep), cwd=tmp_path).stdout
    assert "optimizer=script" in listing and "lr=0.01" in listing and "adamw" not in listing


@pytest.mark.slow
def test_an_lr_swept_by_the_user_is_the_scripts_lr(tmp_path: Path) -> None:
    sweep = _launch(tmp_path, "lrs", "optimizer.lr=0.02,0.05")
    seen = set()
    for record in store.read_plan(sweep):
        assert record["labels"]["optimizer"] == "script"
        assert record["spec"]["optimizer"] == {"lr": record["labels"]["lr"]}  # only what the user set
        run = store.run_dir(sweep, record["id"])
        assert store.read_status(run).peak_lr == record["labels"]["lr"]
        seen.add(record["labels"]["lr"])
    assert seen == {0.02, 0.05}
    rows = _ranking(sweep, tmp_path)
    assert {r["optimizer"] for r in rows} == {"script"} and {float(r["best_lr"]) for r in rows} <= {0.02, 0.05}


def test_a_chosen_optimizer_keeps_its_section_and_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "own.py").write_text(OWN_SGD)
    overrides = ["task=script", f"task.command='{PY} own.py'", "budget=1.0"]
    (chosen,) = plan.make_plan([*overrides, "optimizer=sgd"]).runs
    assert chosen.labels["optimizer"] == "sgd" and chosen.spec["optimizer"]["_target_"] == "torch.optim.SGD"
    assert chosen.labels["lr"] == chosen.spec["optimizer"]["lr"] is not None
    (scaled,) = plan.make_plan([*overrides, "optimizer.lr=0.1", "lr_mult=0.5"]).runs
    assert scaled.spec["optimizer"] == {"lr": 0.05} and scaled.labels["lr"] == 0.05
    (own,) = plan.make_plan(overrides).runs
    assert own.labels["optimizer"] == "script" and own.spec["optimizer"] == {}
    assert len({chosen.id, scaled.id, own.id}) == 3
    assert json.dumps(own.identity["optimizer"]) == "{}"
