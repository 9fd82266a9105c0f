"""`prune_lr=ETA` through the CLI: successive halving over the LR axis, the `pruned` status (shown by status,
skipped by relaunch, listed by the report), the kept runs the very runs of an unpruned sweep."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd

import pytest
from typer.testing import CliRunner

from schedsweep.cli import app
from schedsweep.errors import ConfigError
from schedsweep.plan.grid import make_plan
from schedsweep.sweep import store
from schedsweep.train.metrics import read_metrics
from schedsweep.sweep.status import FINAL, PRUNED, RESULTS, SETTLED
from schedsweep.sweep import run_folder

GRID = ["task=quadratic", "full_steps=40", "schedule=cosine,wsd", "budget=0.25,0.5,1.0", "optimizer.lr=0.03,0.1,0.3,1,3",
        "executor=debug"]


def cli(*args: str) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


def statuses(sweep: Path) -> dict[str, str]:
    return {r["id"]: store.read_status(store.run_dir(sweep, r["id"])).status for r in store.read_plan(sweep)}


def test_pruned_is_final_and_settled_but_not_a_result() -> None:
    assert PRUNED in FINAL and PRUNED in SETTLED and PRUNED not in RESULTS


def test_prune_lr_is_typed_and_keeps_the_run_ids() -> None:
    plain, pruned = make_plan(GRID, check_imports=False), make_plan([*GRID, "prune_lr=3"], check_imports=False)
    assert [r.id for r in plain.runs] == [r.id for r in pruned.runs]
    assert (plain.prune_lr, pruned.prune_lr, pruned.share_prefix) == (0, 3, True)
    for bad in ("prune_lr=1", "prune_lr=-2", "prune_lr=x"):
        with pytest.raises(ConfigError, match="prune_lr"):
            make_plan([*GRID, bad], check_imports=False)
    assert pruned.prune_rule == "halve" and make_plan([*GRID, "prune_rule=extrap"], check_imports=False).prune_rule == "extrap"
    with pytest.raises(ConfigError, match="prune_rule must be neighbours, .*; got 'third'"):
        make_plan([*GRID, "prune_rule=third"], check_imports=False)
    with pytest.raises(ConfigError, match="prune_rule"):  # a sweep's key, not a run's: not sweepable
        make_plan([*GRID, "prune_rule=halve,extrap"], check_imports=False)


def kept_per_rung(records: dict[str, dict], now: dict[str, str]) -> dict[str, list[int]]:
    """schedule -> how many LRs trained at each budget (smallest first)."""
    out: dict[str, list[int]] = {}
    for schedule in sorted({lab["schedule"] for lab in records.values()}):
        out[schedule] = [len({lab["lr"] for i, lab in records.items() if lab["schedule"] == schedule
                              and lab["steps"] == steps and now[i] != PRUNED}) for steps in (10, 20, 40)]
    return out


@pytest.mark.slow
@pytest.mark.parametrize("rule", ["neighbours", "extrap"])
def test_prune_rule_picks_which_lrs_go_on(tmp_path: Path, rule: str) -> None:
    out = cli("launch", *GRID, "prune_lr=3", f"prune_rule={rule}", "--results", str(tmp_path), "--name", "p")
    assert f"prune_lr=3 (prune_rule={rule}): trains at most" in " ".join(out.split())
    records = {r["id"]: r["labels"] for r in store.read_plan(tmp_path / "p")}
    kept = kept_per_rung(records, statuses(tmp_path / "p"))
    for schedule, counts in kept.items():
        if rule == "neighbours":  # the best third (>= 2) and the best's neighbours: 2 to 4 of the LRs below
            assert counts[0] == 5 and 2 <= counts[1] <= 4 and 2 <= counts[2] <= min(4, counts[1]), (schedule, counts)
        else:  # every LR for the two smallest budgets (a slope needs two), then the best third, at least 2
            assert counts == [5, 5, 2], (schedule, counts)


@pytest.mark.slow
def test_a_pruned_sweep_trains_fewer_runs_skips_them_on_relaunch_and_lists_them(tmp_path: Path) -> None:
    results = str(tmp_path / "r")
    cli("launch", *GRID, "prune_lr=3", "--results", results, "--name", "p")
    sweep = tmp_path / "r" / "p"
    now = statuses(sweep)
    pruned = [i for i, s in now.items() if s == PRUNED]
    assert 0 < len(pruned) < 20 and set(now.values()) == {"done", PRUNED}
    records = {r["id"]: r["labels"] for r in store.read_plan(sweep)}
    assert all(records[i]["steps"] > 10 for i in pruned)  # every LR runs the smallest budget
    # The default rule, halve: each larger budget keeps the best third of the LRs of the one below, at least 1.
    assert kept_per_rung(records, now) == {"cosine": [5, 2, 1], "wsd": [5, 2, 1]}
    assert f"pruned {len(pruned)}" in cli("status", str(sweep))
    again = cli("launch", *GRID, "prune_lr=3", "--results", results, "--name", "p")
    assert f"{len(pruned)} pruned; 0 to run" in again
    md = cli("report", str(sweep), "--format", "md")
    assert f"prune_lr: {len(pruned)} run(s) pruned, never trained" in md and "pruned at budget 25%" in md
    ranking = pd.read_csv(io.StringIO(cli("report", str(sweep), "--format", "csv", "--table", "ranking")))
    assert (ranking["n_missing"] == 0).all() and (ranking["n_failed"] == 0).all()  # pruned is neither
    # An LR pruned at a smaller budget was tried: a best LR next to it is no untried edge, only the grid's ends are.
    edges = ranking[ranking["lr_edge"].notna()]  # an empty CSV cell reads as NaN
    assert all((e, lr) in (("high", 3.0), ("low", 0.03)) for e, lr in zip(edges["lr_edge"], edges["best_lr"]))
    assert (ranking["steps"] == 40).sum() == 2  # one LR per schedule at 100%, and none flagged unless at 0.03 or 3

    # The kept runs are the runs an unpruned sweep trains (its WSD trunks shared), bit for bit on CPU.
    cli("launch", *GRID, "--results", results, "--name", "full")
    full = tmp_path / "r" / "full"
    assert "branch trees" in cli("launch", *GRID, "--results", results, "--name", "full", "--dry-run")
    for run_id, status in now.items():
        if status == "done":
            a, b = store.read_status(store.run_dir(sweep, run_id)), store.read_status(store.run_dir(full, run_id))
            assert (a.final_loss, a.final_eval_loss) == (b.final_loss, b.final_eval_loss)


WSD = ["task=quadratic", "full_steps=40", "schedule=wsd", "schedule.warmup=2", "budget=0.25,0.5,1.0",
       "optimizer.lr=0.03,0.1,0.3,1,3", "executor=debug"]


@pytest.mark.slow
def test_pruning_on_a_wsd_trunk_stops_pruned_trunks_at_the_fork_and_continues_kept_ones_exactly(tmp_path: Path) -> None:
    results = str(tmp_path / "r")
    assert "5 branch trees share their prefixes" in cli("launch", *WSD, "prune_lr=3", "--results", results, "--name", "p")
    sweep = tmp_path / "r" / "p"
    records = {r["id"]: r["labels"] for r in store.read_plan(sweep)}
    now = statuses(sweep)
    trunks = {i: store.read_status(store.run_dir(sweep, i)) for i, lab in records.items() if lab["steps"] == 40}
    pruned = {i: st for i, st in trunks.items() if st.status == PRUNED}
    assert 0 < len(pruned) < 5 and not list((tmp_path / "r").glob("*/runs/*/hold.json"))
    # A pruned LR's trunk trained only up to the fork of the last budget its LR ran (step 9 for 25%, 17 for 50%).
    for i, st in pruned.items():
        fork = 9 if "25%" in (st.error or "") else 17
        assert st.steps_done == fork and (store.run_dir(sweep, i) / "checkpoint.pt").is_file()
    # The kept LRs' trunks went on from their forks: the very runs of the unpruned sweep, bit for bit on CPU.
    cli("launch", *WSD, "--results", results, "--name", "full", "--no-reuse")
    full = tmp_path / "r" / "full"
    done = [i for i, s in now.items() if s == "done"]
    assert any(records[i]["steps"] == 40 for i in done)
    for run_id in done:
        a, b = store.read_status(store.run_dir(sweep, run_id)), store.read_status(store.run_dir(full, run_id))
        assert (a.final_loss, a.final_eval_loss, a.steps_done) == (b.final_loss, b.final_eval_loss, b.steps_done)
        mine, theirs = (read_metrics(store.run_dir(s, run_id) / run_folder.METRICS) for s in (sweep, full))
        assert mine.column("loss").to_pylist() == theirs.column("loss").to_pylist()


@pytest.mark.slow
def test_pruning_ranked_by_a_logged_metric_with_every_larger_run_a_trunk_decides_in_one_launch(tmp_path: Path) -> None:
    # Two bugs this caught: ranking before any run had logged eval_error failed ("unknown metric"), and when every
    # held run was a trunk released up to its fork, the launch ended with them pending instead of deciding.
    out = cli("launch", "task=classifier", "full_steps=20", "schedule=cosine", "budget=0.5,1.0", "optimizer.lr=0.01,0.1,1",
              "prune_lr=3", "+report.metric=eval_error", "eval_every=5", "executor=debug", "--results", str(tmp_path),
              "--name", "p")
    assert "branch trees share their prefixes" in out
    now = statuses(tmp_path / "p")
    assert sorted(now.values()) == ["done"] * 4 + [PRUNED] * 2  # 3 LRs at 50%, the best third of them at 100%


def test_an_unknown_prune_rule_is_one_message_and_exit_2() -> None:
    result = CliRunner().invoke(app, ["launch", *GRID, "prune_lr=3", "prune_rule=third", "--dry-run"])
    assert result.exit_code == 2
    assert "prune_rule must be neighbours, top, pair, halve, extrap, extrap-pair or extrap-halve; got 'third'" in result.output
    assert "Traceback" not in result.output
