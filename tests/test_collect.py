"""Collect on results folders built by hand (real plan, status and Parquet part files), answers known."""

from __future__ import annotations

import io
import json
import math
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from helpers import Run, make_logged_sweep, small, write_parts
from typer.testing import CliRunner

from schedsweep import files
from schedsweep.results import collect, measure
from schedsweep.train import metrics
from schedsweep.plan import variants
from schedsweep.sweep import store
from schedsweep.cli import app
from schedsweep.errors import ResultsError
from schedsweep.results.report import build, rank
from schedsweep.sweep import run_folder









def test_summary_has_one_row_per_run_with_the_numbers_from_the_parts(tmp_path: Path) -> None:
    sweep = small(tmp_path)
    result = collect.collect(sweep, last_k=4)
    summary = result.summary
    assert (result.reread, result.reused, result.problems) == (16, 0, [])
    assert list(summary["run_id"]) == [r["id"] for r in store.read_plan(sweep)]  # plan order
    row = summary.iloc[0]  # linear, budget 0.01 -> 10 steps, final 1.01, lr 1e-3
    assert (row["schedule"], row["budget"], row["steps"], row["status"]) == ("linear", 0.01, 10, "done")
    assert (row["steps_done"], row["n_rows"], row["samples_seen"]) == (10, 10, 80)
    assert row["wall_s"] == pytest.approx(0.1)  # status.json has none here: the last row's
    losses = 1.01 + 0.1 + (1 - np.arange(10) / 9)
    assert row["train_loss_last_k"] == pytest.approx(losses[-4:].mean())
    assert row["final_lr"] == pytest.approx(1e-3 * (1 - 9 / 10))
    assert (row["final_grad_norm"], row["final_samples_per_s"]) == (0.5, 800.0)
    assert (row["gpus"], row["gpu_hours"]) == (0.0, 0.0)
    assert row["final_eval_loss"] == pytest.approx(1.01)  # from status.json
    assert summary["chunk"].notna().all() and summary["problem"].isna().all()


def test_the_dataset_holds_every_row_of_every_part_sorted_by_run_and_step(tmp_path: Path) -> None:
    sweep = small(tmp_path)
    collect.collect(sweep)
    files = sorted((sweep / collect.COLLECTED / collect.CHUNKS).glob("*.parquet"))
    table = pa.concat_tables(pq.read_table(f) for f in files)
    assert table.num_rows == 16 * 15  # 8 runs of 10 steps, 8 of 20
    frame = table.to_pandas()
    for record in store.read_plan(sweep):
        mine = frame[frame["run_id"] == record["id"]].drop(columns="run_id").reset_index(drop=True)
        parts = metrics.read_metrics(store.run_dir(sweep, record["id"]) / run_folder.METRICS).to_pandas()
        pd.testing.assert_frame_equal(mine, parts)
    keys = list(zip(frame["run_id"], frame["step"]))
    assert keys == sorted(keys)
    assert not [p for p in (sweep / collect.COLLECTED).rglob("*") if p.name.endswith(".tmp")]


def test_collect_is_incremental(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sweep = small(tmp_path)
    collect.collect(sweep)
    summary_path = sweep / collect.COLLECTED / collect.SUMMARY
    before = summary_path.stat().st_mtime_ns
    again = collect.collect(sweep)
    assert (again.reread, again.reused) == (0, 16)
    assert summary_path.stat().st_mtime_ns == before  # nothing changed: nothing written

    # One run is re-run with other numbers: only it is re-read, and its rows are replaced.
    record = store.read_plan(sweep)[3]
    path = store.run_dir(sweep, record["id"])
    for part in metrics.part_files(path / run_folder.METRICS):
        part.unlink()
    write_parts(path, 10, 0.5, 1e-3)
    store.write_status(path, store.RunStatus("done", steps_done=10, final_eval_loss=0.5, final_loss=0.6))
    measured: list[str] = []
    real = measure.measure
    monkeypatch.setattr(measure, "measure", lambda d, i, last_k: measured.append(i) or real(d, i, last_k))
    third = collect.collect(sweep)
    assert (third.reread, third.reused, measured) == (1, 15, [record["id"]])
    row = third.summary.set_index("run_id").loc[record["id"]]
    assert row["final_eval_loss"] == 0.5
    rows = collect.read_rows(sweep, third.summary, [record["id"]], ["step", "loss"])
    assert len(rows) == 10 and rows["loss"].iloc[-1] == pytest.approx(0.6)
    assert third.summary.drop(columns="fingerprint").equals(collect.read_summary(sweep).drop(columns="fingerprint"))


def test_runs_added_and_dropped_from_the_plan(tmp_path: Path) -> None:
    sweep = small(tmp_path)
    collect.collect(sweep)
    records = store.read_plan(sweep)
    store.write_plan(sweep, records[:-2])  # re-planned without the last two runs
    result = collect.collect(sweep)
    assert len(result.summary) == 14 and result.reread == 0
    rows = collect.read_rows(sweep, result.summary, [r["id"] for r in records], ["step"])
    assert set(rows["run_id"]) == {r["id"] for r in records[:-2]}
    files = list((sweep / collect.COLLECTED / collect.CHUNKS).glob("*.parquet"))
    assert sum(pq.read_metadata(f).num_rows for f in files) == int(result.summary["n_rows"].sum())


def test_missing_and_corrupt_run_folders_are_named_and_the_rest_still_works(tmp_path: Path) -> None:
    sweep = small(tmp_path)
    records = store.read_plan(sweep)
    gone, torn_status, torn_part = (store.run_dir(sweep, records[i]["id"]) for i in (0, 5, 9))
    for p in gone.rglob("*"):
        if p.is_file():
            p.unlink()
    for p in sorted(gone.rglob("*"), reverse=True):
        p.rmdir()
    gone.rmdir()
    (torn_status / run_folder.STATUS).write_text('{"status": "do')
    metrics.part_files(torn_part / run_folder.METRICS)[1].write_bytes(b"PAR1 not really")
    result = collect.collect(sweep)
    assert len(result.problems) == 3
    warning = result.warning()
    assert warning.startswith("3 run folder(s) missing or unreadable")
    assert f"runs/{records[0]['id']}: no run folder" in warning
    assert f"runs/{records[5]['id']}: unreadable" in warning and "status.json" in warning
    assert f"runs/{records[9]['id']}: unreadable metrics" in warning
    statuses = result.summary.set_index("run_id")["status"]
    assert (statuses[records[0]["id"]], statuses[records[5]["id"]], statuses[records[9]["id"]]) == ("pending", "failed", "done")
    ranked = rank(collect.runs_frame(result.summary))
    assert len(ranked) == 4 and set(ranked["mark"]) <= {"", "partial"}
    assert len(collect.collect(sweep).problems) == 3  # still named when nothing changed since


def test_axis_values_come_back_as_the_plan_wrote_them(tmp_path: Path) -> None:
    runs = [Run("rex", 500, 1.0, extra={"optimizer.betas": [0.9, 0.95], "task.width": 64, "task.dropout": None}),
            Run("rex", 0.25, 1.1, extra={"optimizer.betas": [0.9, 0.99], "task.width": 128, "task.dropout": 0.1})]
    sweep = make_logged_sweep(tmp_path / "s", runs)
    fresh = collect.collect(sweep).summary
    stored = collect.read_summary(sweep)
    for summary in (fresh, stored):
        assert list(summary["budget"]) == [500, 0.25] and type(summary["budget"][0]) is int
        assert list(summary["task.width"]) == [64, 128] and type(summary["task.width"][0]) is int
        assert list(summary["task.dropout"]) == [None, 0.1]
        assert list(summary["optimizer.betas"]) == ['[0.9, 0.95]', '[0.9, 0.99]']
    assert collect.runs_frame(stored).columns[0] == "id"


def test_gpus_from_the_run_record_or_the_slurm_executor(tmp_path: Path) -> None:
    sweep = small(tmp_path)
    records = store.read_plan(sweep)
    records[0]["spec"]["gpus"] = 4
    store.write_plan(sweep, records)
    files.write_text(sweep / store.SWEEP_CONFIG, "executor:\n  kind: slurm\n  nodes: 2\n  gpus_per_node: 8\n")
    summary = collect.collect(sweep).summary
    path = store.run_dir(sweep, records[0]["id"])
    store.write_status(path, store.RunStatus("done", steps_done=10, final_eval_loss=1.0, wall_s=1800.0))
    summary = collect.collect(sweep).summary
    assert list(summary["gpus"][:2]) == [4.0, 16.0]
    assert summary["gpu_hours"][0] == pytest.approx(2.0)  # 0.5 h x 4 GPUs


def test_last_k_change_rereads_every_run_and_bad_last_k_is_an_error(tmp_path: Path) -> None:
    sweep = small(tmp_path)
    collect.collect(sweep, last_k=2)
    result = collect.collect(sweep, last_k=3)
    assert result.reread == 16
    with pytest.raises(ResultsError, match="--last-k"):
        collect.collect(sweep, last_k=0)


def test_an_unwritable_collected_folder_gives_the_summary_in_memory(tmp_path: Path) -> None:
    sweep = small(tmp_path)
    (sweep / collect.COLLECTED).write_text("in the way")  # mkdir fails as it would without permission
    result = collect.collect(sweep)
    assert not result.written and len(result.summary) == 16
    assert "computed in memory" in result.warning()


def test_diverged_and_running_runs(tmp_path: Path) -> None:
    runs = [Run("linear", 0.02, 1.0), Run("cosine", 0.02, status="diverged"), Run("rex", 0.02, status="running")]
    sweep = make_logged_sweep(tmp_path / "s", runs)
    summary = collect.collect(sweep).summary.set_index("schedule")
    assert summary.loc["cosine", "n_rows"] == 11 and math.isinf(summary.loc["cosine", "train_loss_last_k"])
    assert summary.loc["rex", "status"] == "running" and summary.loc["rex", "n_rows"] == 10
    rep = build(collect.runs_frame(collect.collect(sweep).summary))
    assert list(rep.ranked["mark"]) == ["", "diverged", "missing"]


def test_rank_by_any_logged_column(tmp_path: Path) -> None:
    sweep = small(tmp_path)
    runs = collect.runs_frame(collect.collect(sweep).summary)
    by_alias = rank(runs, "last_k_loss")
    assert by_alias.attrs["metric"] == "train_loss_last_k"
    assert rank(runs, "lr").attrs["metric"] == "final_lr"
    assert list(rank(runs, "grad_norm")["rank"]) == [1, 1, 1, 1]  # every run logged 0.5: ties share rank 1


# ---- the CLI


def cli(*args: str) -> object:
    return CliRunner().invoke(app, list(args))


def test_cli_collect_prints_counts_and_warns_about_missing_runs(tmp_path: Path) -> None:
    sweep = small(tmp_path)
    first = cli("collect", str(sweep))
    assert first.exit_code == 0 and "16 re-read, 0 unchanged" in first.stdout and "240 metric" in first.stdout
    record = store.read_plan(sweep)[2]
    (store.run_dir(sweep, record["id"]) / run_folder.STATUS).write_text("{")
    second = cli("collect", str(sweep))
    assert second.exit_code == 0 and "1 re-read, 15 unchanged" in second.stdout
    assert "warning: 1 run folder(s) missing or unreadable" in second.stderr and record["id"] in second.stderr


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--format", "xlsx"], "unknown format 'xlsx'; choose one of: md, csv, json, latex."),
        (["--format", "md", "--table", "topk"], "--table selects one table for --format csv"),
        (["--format", "csv", "--table", "nope"], "one of ranking, pivot, budgets"),
        (["--metric", "accuracy"], "unknown metric 'accuracy'"),
        (["--baseline", "nope"], "--baseline 'nope' is not a schedule of this sweep; choose one of: linear, cosine."),
        (["--r-max", "1"], "--r-max must be greater than 1"),
        (["--last-k", "0"], "--last-k must be at least 1"),
        (["--format", "md", "--out", "a_file/x.md"], "cannot write 'a_file/x.md'"),
        (["--html", "a_file/x.html"], "cannot write 'a_file/x.html'"),
    ],
)
def test_cli_report_errors_are_one_message_and_exit_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str],
                                                     expected: str) -> None:
    sweep = small(tmp_path)
    (tmp_path / "a_file").write_text("not a folder")
    monkeypatch.chdir(tmp_path)
    result = cli("report", str(sweep), *args)
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error:") and expected in " ".join(result.stderr.split())
    assert len(result.stderr.strip().splitlines()) <= 2 and "Traceback" not in result.output


def test_cli_report_formats_and_out_file(tmp_path: Path) -> None:
    sweep = small(tmp_path)
    doc = json.loads(cli("report", str(sweep), "--format", "json").stdout)
    assert {"ranking", "pivot", "budgets", "topk", "ratios", "ratio_summary", "profile", "notes"} <= set(doc)
    topk = cli("report", str(sweep), "--format", "csv", "--table", "topk").stdout
    assert topk.splitlines()[0].startswith("schedule,low_top1,low_top3,low_best,n_low")
    out = tmp_path / "table.tex"
    result = cli("report", str(sweep), "--out", str(out))
    assert result.exit_code == 0 and out.read_text().startswith("% schedsweep report") and "\\toprule" in out.read_text()
    terminal = cli("report", str(sweep)).stdout
    assert "Average rank per budget" in terminal and "Ratio to linear" in terminal and "Dolan-More profile" in terminal
    assert os.path.isdir(sweep / collect.COLLECTED)


def test_a_damaged_collected_chunk_is_collected_again(tmp_path: Path) -> None:
    sweep = small(tmp_path)
    collect.collect(sweep)
    chunk = next((sweep / collect.COLLECTED / collect.CHUNKS).glob("*.parquet"))
    chunk.write_bytes(b"not parquet")
    with pytest.raises(ResultsError, match="collect --rebuild"):
        collect.read_rows(sweep, collect.read_summary(sweep), [store.read_plan(sweep)[0]["id"]], ["step"])
    os.utime(store.run_dir(sweep, store.read_plan(sweep)[0]["id"]) / run_folder.STATUS, ns=(1, 1))  # one run changed
    result = collect.collect(sweep)
    assert result.reread == 16
    assert len(collect.read_rows(sweep, result.summary, list(result.summary["run_id"]), ["step"])) == 240


# ---- settings come from the specs, whatever the command lines were


def plan_records(*overrides: str) -> list[dict]:
    from schedsweep.plan.grid import make_plan

    base = ["task=classifier", "full_steps=20", "budget=1.0", "schedule=linear,cosine"]
    return [r.record() for r in make_plan([*base, *overrides], check_imports=False).runs]


def test_a_key_that_differs_between_launches_is_a_setting_never_pooled(tmp_path: Path) -> None:
    first, second = plan_records(), plan_records("task.hidden=8")
    assert [r["labels"]["axes"] for r in first] == [r["labels"]["axes"] for r in second]  # same swept keys
    assert variants.setting_keys(first) == [] and variants.setting_keys(first + second) == ["task.hidden"]
    assert variants.new_setting_keys(first, second) == ["task.hidden"]
    assert variants.new_setting_keys(first, first) == [] and variants.new_setting_keys([], second) == []
    frame = collect.label_frame(first + second, tmp_path / "plan.jsonl")
    assert list(frame["task.hidden"]) == [128, 128, 8, 8]  # as the spec spells it, the default included


def test_equal_meanings_are_one_setting_and_other_sections_do_not_leak(tmp_path: Path) -> None:
    zero = plan_records("optimizer=sgd", "optimizer.weight_decay=0")
    assert variants.setting_keys(zero + plan_records("optimizer=sgd", "optimizer.weight_decay=0.0")) == []
    # sgd's momentum differs from adamw's betas: the optimizer name already tells them apart
    assert variants.setting_keys(zero + plan_records("optimizer=adamw")) == []
    both = plan_records("optimizer=sgd,adamw", "optimizer.weight_decay=0.5") + plan_records("optimizer=sgd,adamw")
    assert variants.setting_keys(both) == ["optimizer.weight_decay"]
    frame = collect.label_frame(both, tmp_path / "plan.jsonl")
    assert sorted(zip(frame["optimizer"], frame["optimizer.weight_decay"])) == sorted(
        [("sgd", 0.5)] * 2 + [("adamw", 0.5)] * 2 + [("sgd", 0.0)] * 2 + [("adamw", 0.01)] * 2)


def test_variants_of_one_schedule_name_rank_apart(tmp_path: Path) -> None:
    records = plan_records() + plan_records("schedule.final=0.1")
    assert variants.setting_keys(records) == []  # schedule keys are compared, not a setting
    frame = collect.label_frame(records, tmp_path / "plan.jsonl")
    assert list(frame["schedule"]) == ["linear (final=0.0)", "cosine (final=0.0)", "linear (final=0.1)", "cosine (final=0.1)"]
    assert list(collect.label_frame(plan_records(), tmp_path / "plan.jsonl")["schedule"]) == ["linear", "cosine"]


@pytest.mark.slow
def test_cli_second_launch_with_another_value_reports_two_settings(tmp_path: Path) -> None:
    import subprocess
    import sys

    def launch(*extra: str) -> subprocess.CompletedProcess[str]:
        args = ["launch", "task=classifier", "full_steps=10", "eval_every=5", "task.n_train=256", "budget=1.0",
                "schedule=linear", "executor=debug", "--name", "pool", *extra]
        return subprocess.run([sys.executable, "-m", "schedsweep", *args], cwd=tmp_path, capture_output=True, text=True,
                              timeout=600, check=True, env=os.environ | {"COLUMNS": "200"})

    assert "differ in" not in launch().stdout
    assert "this launch adds runs that differ in: task.hidden" in launch("task.hidden=8").stdout
    sweep = tmp_path / "results" / "pool"
    report = [sys.executable, "-m", "schedsweep", "report", str(sweep), "--format"]
    csv = pd.read_csv(io.StringIO(subprocess.run([*report, "csv"], capture_output=True, text=True, check=True).stdout))
    assert csv[["task", "task.hidden", "schedule", "n"]].values.tolist() == [["classifier", 128, "linear", 1], ["classifier", 8, "linear", 1]]
    ranking = json.loads(subprocess.run([*report, "json"], capture_output=True, text=True, check=True).stdout)["ranking"]
    by_hidden = {row["task.hidden"]: row for row in ranking}
    assert sorted(by_hidden) == [8, 128] and [by_hidden[h]["n"] for h in (8, 128)] == [1, 1]
    finals = {r["spec"]["task"].get("hidden"): store.read_status(store.run_dir(sweep, r["id"])).final_eval_loss
              for r in store.read_plan(sweep)}
    assert by_hidden[8]["mean"] == pytest.approx(finals[8]) and by_hidden[128]["mean"] == pytest.approx(finals[128])
    assert finals[8] != finals[128]


def test_one_schedule_name_fitted_per_optimizer_is_not_a_variant(tmp_path: Path) -> None:
    # The refinement study's `refined` schedule: one name, other points for each optimizer.
    from schedsweep.plan.grid import make_plan

    base = ["task=classifier", "full_steps=20", "budget=1.0", "schedule=piecewise"]
    records = [r.record() for points, optimizer in (("[[0,1],[1,0]]", "sgd"), ("[[0,1],[0.5,0.2],[1,0]]", "adamw"))
               for r in make_plan([*base, f"optimizer={optimizer}", f"schedule.points={points}"], check_imports=False).runs]
    assert records[0]["identity"]["schedule"] != records[1]["identity"]["schedule"]
    assert list(collect.label_frame(records, tmp_path / "plan.jsonl")["schedule"]) == ["piecewise", "piecewise"]
