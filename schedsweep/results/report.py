"""Ranking schedules per budget: the numbers behind `schedsweep report`.

DataFrame in, DataFrame out; nothing here prints (schedsweep.results.render does). The input is one row per
planned run: the collected summary (schedsweep.results.collect) or, without collecting, plan.jsonl joined with
the status.json files (`load_runs`).

A run's *setting* is its task, optimizer and every spec key whose value differs between runs of the
sweep, whatever command lines planned them (schedsweep.plan.variants), except what is compared (schedule,
budget), tuned (optimizer.lr) or aggregated (seed). Within one (setting, budget) each schedule gets its best
peak LR, its mean over seeds at that LR with a 95% confidence interval, and a rank, as in REX (Chen et
al., MLSys 2022); `pivot` averages those ranks over budgets, and schedsweep.results.compare across settings.

NaN is a status, not a number: a diverged run scores +inf (AlgoPerf scores a miss as infinite), so it
ranks after every finite result, and a schedule with no result at all is still listed, ranked last.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from schedsweep.results import caveats, collect, compare, contrasts, identical, lr_fit, significance
from schedsweep.results.significance import T975, t_quantile  # noqa: F401 - re-exported
from schedsweep.results.pivot import AVG_RANK, PIVOT_FIELDS, pivot  # noqa: F401 - AVG_RANK, PIVOT_FIELDS re-exported
from schedsweep.sweep import store
from schedsweep.sweep.run_folder import RunFolder
from schedsweep.errors import ConfigError
from schedsweep.sweep.status import DIVERGED, DONE, FAILED

METRICS = ("final_eval_loss", "final_loss", "best_eval_loss")
# Any logged column ranks by its last logged value; these names are what a user would type.
METRIC_ALIASES = {"eval_loss": "final_eval_loss", "loss": "final_loss", "last_k_loss": "train_loss_last_k",
                  **{c: f"final_{c}" for c in collect.FINAL_OF}}
TASK_METRIC = "final_task_metric"  # each task's own metric in one column (task_metric)
RANKABLE = (*METRICS, "train_loss_last_k", *(f"final_{c}" for c in collect.FINAL_OF), "wall_s", "gpu_hours", "samples_seen")
LABELS = collect.LABELS
STATUS_COLUMNS = ("status", "final_eval_loss", "final_loss", "best_eval_loss", "steps_done", "wall_s", "error")
CELL_STATS = ("best_lr", "mean", "std", "ci95", "n", "n_runs", "n_diverged", "n_failed", "n_missing", "mark")
RANK_COLUMNS = (*CELL_STATS, "rank", "gap", "gap_pct", "same_as", "best_group", "p_vs_best", "p_test", "lr_edge")
# Marks: "" a full result; "partial" some seeds of the best LR unfinished; "diverged" no LR has a
# finite mean; "failed"/"missing" no finished run (failed wins: resubmission is needed, not patience).
# In the pivot only, "absent" is a schedule the plan never ran at a budget its setting has.
NO_RESULT = ("failed", "missing")
_RESERVED = frozenset({*collect.RESERVED, *STATUS_COLUMNS, *RANK_COLUMNS, "lr_star"})  # lr_star: --fit-lr



def load_runs(sweep_dir: Path) -> pd.DataFrame:
    """One row per planned run, in plan order, joined with its status.json (absent = pending).

    Columns: id, task, optimizer, schedule, budget, steps, lr, seed, one column per setting key
    (named as the key, e.g. `task.d_model`), then status, final_eval_loss, final_loss,
    best_eval_loss, steps_done, wall_s, error, _lr_digest (schedsweep.results.identical; a copy of a run
    follows for each schedule name the plan merged into it). `budget` keeps the user's spelling (object dtype:
    0.25 is a fraction, 500 is steps); `steps` is the resolved step count that orders budgets.
    """
    records = store.read_plan(Path(sweep_dir))
    frame = collect.label_frame(records, Path(sweep_dir) / store.PLAN).rename(columns={"run_id": "id"})
    statuses = [RunFolder.of(Path(sweep_dir), r["id"]).status() for r in records]
    for column in STATUS_COLUMNS:
        frame[column] = [getattr(s, column) for s in statuses]
    losses = {k: float for k in ("final_eval_loss", "final_loss", "best_eval_loss", "wall_s")}
    return identical.attach(frame.astype({**losses, "steps_done": int}), records)


def collected_runs(sweep_dir: Path, summary: pd.DataFrame) -> pd.DataFrame:
    """The runs `report` ranks: the collected summary (collect.runs_frame) with the plan's schedule
    digests and the schedule names it planned once (schedsweep.results.identical)."""
    return identical.attach(collect.runs_frame(summary), store.read_plan(Path(sweep_dir)))


def pair_optimizers(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs of tasks trained with several optimizers, relabelled to rank (optimizer, schedule) pairs.

    The schedule label becomes "optimizer/schedule" and the optimizer "(compared)", so one ranking per
    budget compares, e.g., adamw/cosine with schedulefree_adamw/constant (schedule-free runs only exist
    beside scheduled ones). Empty when every task has one optimizer. The report shows this ranking
    beside the per-optimizer settings, which REX's tables treat as separate settings.
    """
    several = runs.groupby("task", sort=False)["optimizer"].transform("nunique") > 1
    out = runs[several].copy()
    if identical.DIGEST in out.columns:  # one LR sequence under two optimizers is two competitors
        digest = out[identical.DIGEST]
        out[identical.DIGEST] = (digest.astype(str) + "|" + out["optimizer"].astype(str)).where(digest.notna(), None)
    out.loc[several, "schedule"] = out.loc[several, "optimizer"].astype(str) + "/" + out.loc[several, "schedule"].astype(str)
    out.loc[several, "optimizer"] = "(compared)"
    return out


def setting_columns(frame: pd.DataFrame) -> list[str]:
    """The columns that name a setting: task, optimizer and every setting key (schedsweep.plan.variants)."""
    return ["task", "optimizer", *[c for c in frame.columns
                                   if c not in _RESERVED and not c.startswith("_") and c not in _extra_metrics(frame)]]


def _extra_metrics(frame: pd.DataFrame) -> list[str]:
    """final_<name> columns of extra metrics logged by scripts (schedsweep.client): rankable, never a setting."""
    return [c for c in frame.columns if c.startswith(collect.FINAL) and c not in _RESERVED]


def metric_column(runs: pd.DataFrame, metric: str) -> str:
    """The run column `metric` names: itself, or the final value of a logged column (`grad_norm`)."""
    column = METRIC_ALIASES.get(metric, metric)
    if column not in RANKABLE and f"{collect.FINAL}{metric}" in runs.columns:  # an extra metric a script logged
        column = f"{collect.FINAL}{metric}"
    if column not in RANKABLE and column not in _extra_metrics(runs) or column not in runs.columns:
        choices = [m for m in RANKABLE if m in runs.columns] + [c[len(collect.FINAL):] for c in _extra_metrics(runs)]
        logged = [a for a, c in METRIC_ALIASES.items() if c in runs.columns]
        raise ConfigError(f"unknown metric {metric!r}; choose one of: {', '.join(choices)}"
                          + (f" (or a logged column: {', '.join(logged)})." if logged else "."))
    return column


def _pruned_lrs(pruned: pd.DataFrame | None, cells: pd.DataFrame, keys: list[str]) -> pd.DataFrame | None:
    """(_cid, lr) of the pruned runs of the ranked cells."""
    if pruned is None or pruned.empty or not set(keys) <= set(pruned.columns):
        return None
    ids = cells[["_cid", *keys]].astype({k: str for k in keys})
    return pruned.astype({k: str for k in keys}).merge(ids, on=keys)[["_cid", "lr"]]


def rank(runs: pd.DataFrame, metric: str = "final_eval_loss", maximize: bool = False,
         pruned: pd.DataFrame | None = None) -> pd.DataFrame:
    """Rank schedules within each (setting, budget) by `metric`, one row per (setting, budget, schedule).

    A run's score is its metric when done, the worst possible (+inf when minimizing, -inf when
    maximizing) when diverged, missing otherwise. Per peak LR the score is the mean over seeds (worst
    if any seed diverged). best_lr is the LR with the best finite mean among LRs whose seeds all
    finished; failing that, among LRs with some finished seeds (mark "partial"); equal means go to the
    lower LR. rank: finite means best first, ties share the lowest rank (method="min"); then
    schedules with no finite mean (mark "diverged") sharing the next rank; then those with no result
    ("failed" or "missing"), last. gap = how much worse than the best finite mean of the budget (>= 0);
    gap_pct = 100 * gap / |best|. ci95 = t(0.975, n-1) * std / sqrt(n), the half-width of the 95%
    confidence interval of the mean over seeds (NaN when n < 2).

    Columns: setting columns, budget, steps, schedule, best_lr, mean, std (ddof=1, NaN when n == 1),
    ci95, n (finished seeds at best_lr), n_runs, n_diverged, n_failed, n_missing (pending, running,
    or done without this metric), mark, rank, gap, gap_pct, then:
    same_as: the first schedule (plan order) with the same LR sequence at this budget, else ""
    (schedsweep.results.identical); such a row is ranked as that schedule (it takes its rank, and no
    other schedule ranks behind it for it); best_group, p_vs_best, p_test: in the best group (not
    significantly worse than the winner), the one-sided p-value and its test ("paired t", "Welch t",
    "" without one) (schedsweep.results.significance); lr_edge: "low" / "high" when best_lr is the
    lowest / highest of the >= 2 LRs the cell ran with or had pruned (`pruned`: runs prune_lr never
    trained, schedsweep.sweep.prune: an LR that lost at a smaller budget is no untried edge), else "". Sorted by setting (plan order),
    steps, rank, schedule. `.attrs` holds the metric column and maximize.
    """
    column = metric_column(runs, metric)
    frame, setting, per_lr = _per_lr(runs, column, maximize)
    keys = [*setting, "budget", "steps", "schedule"]
    cells = frame.drop_duplicates("_cid")[["_cid", "_sid", *keys]]  # first rows keep the key dtypes
    by_cell = frame.groupby("_cid", sort=False)
    counts = by_cell[["_div", "_fail", "_na"]].sum().rename(columns={"_div": "n_diverged", "_fail": "n_failed"})
    counts["n_runs"] = by_cell.size()
    finite = per_lr[np.isfinite(per_lr["mean"])]
    best = finite.sort_values(["_cid", "complete", "mean", "lr"], ascending=[True, False, True, True], kind="stable")
    best = best.drop_duplicates("_cid").set_index("_cid")
    cells = cells.join(counts, on="_cid").join(best[["lr", "mean", "std", "n", "complete"]], on="_cid")

    found = cells["mean"].notna()
    scored = cells["n_runs"] > cells["_na"]  # some seed has a score (finite or inf)
    cells["n_missing"] = cells["_na"] - cells["n_failed"]
    cells["best_lr"] = cells["lr"]
    cells["mean"] = cells["mean"].where(found, np.where(scored, np.inf, np.nan))
    cells["n"] = cells["n"].fillna(0).astype(int)
    cells["mark"] = np.select(
        [found & cells["complete"].eq(True), found, scored, cells["n_failed"] > 0],
        ["", "partial", "diverged", "failed"], "missing")
    t = np.array([significance.t_quantile(n - 1) for n in cells["n"]])
    cells["ci95"] = t * cells["std"] / np.sqrt(cells["n"].where(cells["n"] > 0))

    # A schedule with another's LR sequence (identical.same_as) is that schedule: ranked without it, it takes its rank.
    problem = ["_sid", "budget", "steps"]
    cells["same_as"] = identical.same_as(cells.assign(**{identical.DIGEST: by_cell[identical.DIGEST].first()
                                                         .reindex(cells["_cid"]).to_numpy()}), problem)
    distinct = cells["same_as"].eq("")
    diverged = cells["mark"] == "diverged"
    cells = cells.assign(_finite=cells["mean"].where(found & distinct), _t0=found & distinct, _t1=diverged & distinct)
    by_budget = cells.groupby(problem, sort=False)
    n_finite = by_budget["_t0"].transform("sum")
    n_diverged = by_budget["_t1"].transform("sum")
    cells["rank"] = np.select([cells["_t0"], cells["_t1"]], [by_budget["_finite"].rank(method="min"), n_finite + 1],
                              n_finite + n_diverged + 1).astype(int)
    cells["rank"] = identical.original_values(cells, problem, "rank")
    best_mean = by_budget["_finite"].transform("min")
    cells["_pid"] = by_budget.ngroup()
    cells = cells.join(significance.best_groups(cells.assign(_finite=cells["mean"].where(found)),
                                                significance.seed_scores(frame, cells), "_pid"))
    cells["lr_edge"] = caveats.lr_edges(frame, cells, _pruned_lrs(pruned, cells, keys))
    cells["gap"] = cells["mean"] - best_mean
    cells["gap_pct"] = 100 * cells["gap"] / best_mean.abs().where(best_mean != 0)
    sign = -1.0 if maximize else 1.0
    cells["mean"] = sign * cells["mean"]

    cells = cells.sort_values(["_sid", "steps", "budget", "rank", "schedule"], kind="stable")
    ranked = cells[[*keys, *RANK_COLUMNS]].reset_index(drop=True)
    counts = ("n", "n_runs", "n_diverged", "n_failed", "n_missing", "rank")
    ranked = ranked.astype({"best_lr": float, "mean": float, "std": float, "ci95": float, "mark": object,
                            **dict.fromkeys(counts, int)})
    ranked.attrs.update(metric=column, maximize=maximize)
    return ranked


def lr_sensitivity(runs: pd.DataFrame, metric: str = "final_eval_loss", maximize: bool = False) -> pd.DataFrame:
    """Every peak LR's result, not just the best: one row per (setting, budget, schedule, lr).

    Columns: setting columns, budget, steps, schedule, lr, mean (over finished seeds; worst if one
    diverged), std, n (finished seeds), n_runs, n_diverged. Plan order, then lr.
    """
    column = metric_column(runs, metric)
    frame, setting, per_lr = _per_lr(runs, column, maximize)
    keys = [*setting, "budget", "steps", "schedule"]
    first = frame.drop_duplicates("_cid").set_index("_cid")[keys]
    out = per_lr.join(first, on="_cid")
    out["mean"] = (-1.0 if maximize else 1.0) * out["mean"]
    out = out.rename(columns={"n_total": "n_runs"})
    return out[[*keys, "lr", "mean", "std", "n", "n_runs", "n_diverged"]].reset_index(drop=True)


def best_runs(runs: pd.DataFrame, ranked: pd.DataFrame) -> pd.DataFrame:
    """The finished runs (every seed) at each schedule's best peak LR: what the curves and LR plots show.

    Columns: the runs' columns plus `_cell`, the row number in `ranked` of the run's (setting, budget,
    schedule). Cells without a finite result have no runs here.
    """
    keys = [*setting_columns(ranked), "budget", "steps", "schedule"]
    cell_of = {k: i for i, k in enumerate(_keys(ranked, keys))}
    cell = pd.Series([cell_of.get(k, -1) for k in _keys(runs, keys)], index=runs.index)
    best_lr = ranked["best_lr"].to_numpy()
    at_best = (cell >= 0) & (runs["lr"].to_numpy() == best_lr[cell.clip(lower=0)])
    return runs[at_best & (runs["status"] == DONE)].assign(_cell=cell[at_best])


def _keys(frame: pd.DataFrame, columns: list[str]) -> list[tuple[str, ...]]:
    """Row keys as text, so None, NaN, 500 and 0.25 compare as the plan wrote them."""
    return list(zip(*(frame[c].map(repr) for c in columns)))


def winners(ranked: pd.DataFrame) -> pd.DataFrame:
    """The rank-1 schedule(s) of each (setting, budget), every one of a tie; none where nothing finished."""
    return ranked[(ranked["rank"] == 1) & np.isfinite(ranked["mean"])].reset_index(drop=True)


@dataclass
class Report:
    """Every table of `schedsweep report`, computed; schedsweep.results.render and .html only format them."""

    ranked: pd.DataFrame
    pivot: pd.DataFrame
    by_budget: pd.DataFrame  # optimizers pooled
    by_optimizer: pd.DataFrame  # REX Fig. 1: per optimizer
    top_k: pd.DataFrame
    ratios: pd.DataFrame
    ratio_summary: pd.DataFrame
    performance: pd.DataFrame
    profile: pd.DataFrame
    sensitivity: pd.DataFrame
    pairs: pd.DataFrame  # (optimizer, schedule) pairs ranked per budget where a task has several optimizers
    contrasts: pd.DataFrame  # paired contrasts across problems, bootstrap CIs (schedsweep.results.contrasts)
    problems: pd.DataFrame  # one row per problem, degenerate ones marked (schedsweep.results.caveats)
    performance_2: pd.DataFrame  # the profile scores at the second r_max (compare.R_MAX_2)
    metric: str
    maximize: bool
    baseline: str
    r_max: float
    r_max_2: float = compare.R_MAX_2
    notes: list[str] = field(default_factory=list)
    lr_fit: pd.DataFrame = field(default_factory=pd.DataFrame)  # `--fit-lr`: lr* per cell (schedsweep.results.lr_fit)
    lr_law: pd.DataFrame = field(default_factory=pd.DataFrame)  # `--fit-lr`: lr* against steps per (setting, schedule)


def task_metric(runs: pd.DataFrame, metric: str, by_task: dict[str, str]) -> tuple[pd.DataFrame, str]:
    """The runs with TASK_METRIC: each task's metric (by_task, else `metric`), and a label that says which.

    A study ranks each task by its own metric (schedsweep.plan.ranking): REX ranks by test error, the
    VAE by loss. Every task's values are in one column, so one ranking covers every setting.
    """
    values = pd.Series(np.nan, index=runs.index, dtype=float)
    used: dict[str, str] = {}
    for task in dict.fromkeys(runs["task"]):
        column = metric_column(runs, by_task.get(str(task), metric))
        rows = runs["task"] == task
        values[rows] = runs.loc[rows, column].astype(float)
        used[str(task)] = column
    default = metric_column(runs, metric) if any(str(t) not in by_task for t in used) else None
    others = ", ".join(f"{t}: {c}" for t, c in used.items() if c != default)
    label = "; ".join([*([default] if default else []), *([others] if others else [])])
    return runs.assign(**{TASK_METRIC: values}), label


def build(runs: pd.DataFrame, metric: str = "final_eval_loss", maximize: bool = False, baseline: str = "linear",
          r_max: float = compare.R_MAX, low: float = compare.LOW_BUDGET,
          metric_by_task: dict[str, str] | None = None, fit_lr: bool = False,
          pruned: pd.DataFrame | None = None) -> Report:
    """Rank, then every cross-setting table (schedsweep.results.compare) over the same ranking.

    metric_by_task: task -> metric for the tasks not ranked by `metric` (`task_metric`). fit_lr: lr* per
    cell and its power law in steps (schedsweep.results.lr_fit), and an `lr_star` column in the ranking.
    """
    if not r_max > 1:
        raise ConfigError(f"--r-max must be greater than 1 (got {r_max:g}).")
    label = None
    if metric_by_task:
        runs, label = task_metric(runs, metric, metric_by_task)
        metric = TASK_METRIC
    ranked = rank(runs, metric, maximize, pruned)
    column = ranked.attrs["metric"]
    if label:
        ranked.attrs["metric"] = label
    notes: list[str] = []
    ratios = compare.ratio_to_baseline(ranked, baseline)
    notes += ratios.attrs.get("notes", [])
    perf = compare.performance_ratios(ranked)
    notes += perf.attrs.get("notes", [])
    problems = caveats.problems(ranked)
    seeds = contrasts.seed_scores(ranked, best_runs(runs, ranked), column)
    r_max_2 = compare.R_MAX_2 if r_max != compare.R_MAX_2 else compare.R_MAX
    sensitivity = lr_sensitivity(runs, metric, maximize)
    fits = law = pd.DataFrame()
    if fit_lr:
        setting = setting_columns(ranked)
        fits = lr_fit.fit_lr(sensitivity, setting, maximize)
        law = lr_fit.power_law(fits, setting)
        ranked = lr_fit.attach(ranked, fits, setting)
    return Report(
        ranked=ranked,
        pivot=pivot(ranked),
        by_budget=compare.rank_by_budget(ranked),
        by_optimizer=compare.rank_by_budget(ranked, by=("optimizer",)),
        top_k=compare.top_k(ranked, low=low),
        ratios=ratios,
        ratio_summary=compare.ratio_summary(ratios, maximize),
        performance=compare.profile_scores(perf, r_max),
        profile=compare.profile(perf, r_max),
        sensitivity=sensitivity,
        pairs=_pairs(runs, metric, maximize, label),
        contrasts=contrasts.contrasts(ranked, seeds, baseline, maximize),
        problems=problems,
        performance_2=compare.profile_scores(perf, r_max_2),
        metric=ranked.attrs["metric"],
        maximize=maximize,
        baseline=baseline,
        r_max=r_max,
        r_max_2=r_max_2,
        notes=notes + compare.fraction_notes(ranked) + significance.no_test_note(ranked)
        + caveats.edge_note(ranked, compare.budget_label) + caveats.degenerate_note(problems, compare.budget_label)
        + caveats.trial_note(runs),
        lr_fit=fits,
        lr_law=law,
    )


def _pairs(runs: pd.DataFrame, metric: str, maximize: bool, label: str | None) -> pd.DataFrame:
    paired = pair_optimizers(runs)
    ranked = rank(paired, metric, maximize) if len(paired) else rank(runs, metric, maximize).iloc[0:0]
    if label:
        ranked.attrs["metric"] = label
    return ranked


def _per_lr(runs: pd.DataFrame, column: str, maximize: bool) -> tuple[pd.DataFrame, list[str], pd.DataFrame]:
    """Scored runs with setting (_sid) and cell (_cid) ids, and per (cell, lr): n_total, n, mean, std, complete.

    Scores are oriented so that lower is better: the metric, negated when maximizing; +inf diverged.
    """
    _require_measured(runs, column)
    runs = runs.reset_index(drop=True)
    setting = setting_columns(runs)
    status = runs["status"]
    value = (-1.0 if maximize else 1.0) * runs[column].astype(float)
    score = value.where(status == DONE).mask(status == DIVERGED, np.inf)
    if identical.DIGEST not in runs.columns:  # without the plan's specs: no schedule is known identical
        runs = runs.assign(**{identical.DIGEST: None})
    frame = runs.assign(_score=score, _div=status == DIVERGED, _fail=status == FAILED, _na=score.isna(),
                        _sid=runs.groupby(setting, sort=False, dropna=False).ngroup())
    frame["_cid"] = frame.groupby(["_sid", "budget", "steps", "schedule"], sort=False, dropna=False).ngroup()
    grouped = frame.groupby(["_cid", "lr"], sort=True, dropna=False)
    by_lr = grouped["_score"]
    per_lr = pd.DataFrame({"n_total": by_lr.size(), "n": by_lr.count(), "mean": by_lr.mean(),
                           "std": by_lr.std(ddof=1), "n_diverged": grouped["_div"].sum()}).reset_index()
    # std of [x, inf] is NaN; of one seed, NaN (ddof=1).
    per_lr["complete"] = per_lr["n"] == per_lr["n_total"]
    return frame, setting, per_lr


def _require_measured(runs: pd.DataFrame, column: str) -> None:
    """Refuse to rank by a metric that no finished run recorded (e.g. eval loss of a task without eval)."""
    done = runs[runs["status"] == DONE]
    if len(done) and done[column].isna().all():
        measured = [m for m in RANKABLE if m in done.columns and done[m].notna().any()]
        hint = f"rank by one of: {', '.join(measured)}" if measured else "no loss was recorded at all"
        raise ConfigError(f"no finished run recorded {column}; {hint}.")
