"""docs/rex/ from a run of `schedsweep launch +study=rex`, by the code behind `schedsweep report`:

- report.md: every table of the report (Markdown), ranked as the study says (test error for the classifiers,
  eval loss for the rest: conf/study/rex.yaml's `report:` block, stored in the sweep's sweep.yaml);
- claims.md: the papers' claims, one row each: the paper's number, the study's with a 95% interval, a verdict;
- convergence.md: each setting's 100% winner against the same run trained 4x longer (from a second sweep,
  `rex_long`, if it exists: see index.md for the command);
- refinement.md: the refinement study (`+study=refinement`, both stages): refined vs linear vs cosine at the
  full budget per setting, and the refinement paper's two claims as rows of the claims table;
- avg_rank.png (REX Fig. 1, per optimizer) and sensitivity_<task>.png (metric against peak LR at 100%).

    .venv/bin/python docs/rex/figures.py results/rex docs/rex [--long results/rex_long]
        [--refinement results/refinement] [--plan +study=rex ...]

Only the runs of `+study=rex` as conf/ plans it now count (a folder may hold runs of earlier grids). Intervals of
shares are a bootstrap over the 10 (task, optimizer) settings (a setting's budgets move together: they share
the task and optimizer), 2000 resamples, seed 0; they hold how the share varies between settings of this kind,
not across the model sizes of the paper.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from schedsweep.plan.grid import make_plan
from schedsweep.plan.ranking import RankBy
from schedsweep.results import collect, compare, contrasts, plots, render, report
from schedsweep.sweep import store
from schedsweep.sweep.status import FINAL

LOW = [0.01, 0.05, 0.1]  # REX Table 1: "Low" = 1, 5, 10% (< 25%)
HIGH = [0.25, 0.5, 1.0]
BOOT, SEED = 2000, 0

# (claim, the paper's number and where, what we compute). The paper numbers are REX Table 1's (arXiv 2107.04197v1)
# as transcribed in the team's reference notes (shared/reference/rex-protocol.md).
TOP_K_CLAIMS = [
    ("REX is Top-1 at low budgets", "73% (REX Table 1)", "rex", LOW, 1),
    ("REX is Top-3 at low budgets", "95% (REX Table 1)", "rex", LOW, 3),
    ("REX is Top-1 at high budgets", "67% (REX Table 1)", "rex", HIGH, 1),
    ("REX is Top-3 at high budgets", "88% (REX Table 1)", "rex", HIGH, 3),
    ("linear is Top-1 at low budgets", "10% (REX Table 1)", "linear", LOW, 1),
    ("linear is Top-3 at low budgets", "78% (REX Table 1)", "linear", LOW, 3),
    ("no schedule (constant) is never Top-1 at low budgets", "0% (REX Table 1, 'None')", "constant", LOW, 1),
    ("no schedule (constant) is never Top-3 at low budgets", "0% (REX Table 1, 'None')", "constant", LOW, 3),
]


def study_runs(sweep: Path, plan: list[str]) -> tuple[pd.DataFrame, pd.DataFrame, RankBy]:
    summary = collect.collect(sweep).summary
    runs = report.collected_runs(sweep, summary)
    runs = runs[runs["id"].isin({run.id for run in make_plan(plan).runs})]
    return runs, summary, RankBy.parse(store.read_rank_by(sweep))


def finished_settings(runs: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    setting = runs["task"] + " " + runs["optimizer"]
    finished = runs["status"].isin(list(FINAL)).groupby(setting).transform("all")
    done, left = sorted(set(setting[finished])), sorted(set(setting[~finished]))
    header = (f"Settings with every run finished: {', '.join(done) or 'none'} ({int(finished.sum())} runs); "
              f"unfinished: {', '.join(left) or 'none'}.\n\n")
    return runs[finished], header


def problems_of(ranked: pd.DataFrame) -> pd.DataFrame:
    """One row per (setting, budget, schedule) that is its own competitor (same_as rows dropped), with the
    setting id, budget fraction, top1/top3 (finite mean and rank <= k) and best (in the best group)."""
    frame = compare.distinct(ranked).copy()
    frame["fraction"] = compare.budget_fraction(frame).round(4).to_numpy()
    frame["setting"] = frame["task"].astype(str) + " " + frame["optimizer"].astype(str)
    finite = np.isfinite(frame["mean"].astype(float))
    for k in (1, 3):
        frame[f"top{k}"] = (frame["rank"] <= k) & finite
    frame["best"] = frame["best_group"].astype(bool)
    return frame


def share(frame: pd.DataFrame, schedule: str, budgets: list[float], column: str) -> tuple[float, float, float, int]:
    """(share %, bootstrap low, high, problems) of `column` for `schedule` over the budgets given."""
    rows = frame[(frame["schedule"] == schedule) & frame["fraction"].isin(budgets)]
    if rows.empty:
        return float("nan"), float("nan"), float("nan"), 0
    by_setting = rows.groupby("setting")[column].agg(["sum", "count"])
    hits, counts = by_setting["sum"].to_numpy(float), by_setting["count"].to_numpy(float)
    rng = np.random.default_rng(SEED)
    draws = rng.integers(0, len(hits), size=(BOOT, len(hits)))
    boot = 100 * hits[draws].sum(axis=1) / counts[draws].sum(axis=1)
    return 100 * hits.sum() / counts.sum(), *np.percentile(boot, [2.5, 97.5]), int(counts.sum())


def paper_share(paper: str) -> float:
    return float(paper.split("%")[0])


def share_verdict(paper: float, ours: float, low: float, high: float) -> str:
    if low <= paper <= high:
        return "agrees (the paper's share lies in our interval)"
    return f"disagrees: {'lower' if high < paper else 'higher'} here, the paper's {paper:g}% is outside our interval"


def contrast_row(ranked: pd.DataFrame, runs: pd.DataFrame, a: str, b: str, budgets: list[float],
                 maximize: bool) -> dict:
    """REX-style paired contrast A - B (schedsweep.results.contrasts) over the problems at these budgets;
    `runs` carry the ranked metric in report.TASK_METRIC."""
    part = ranked[compare.budget_fraction(ranked).round(4).isin(budgets).to_numpy()].reset_index(drop=True)
    seeds = contrasts.seed_scores(part, report.best_runs(runs, part), report.TASK_METRIC)
    table = contrasts.contrasts(part, seeds, baseline=b, maximize=maximize)
    row = table[(table["a"] == a) & (table["b"] == b)]
    return row.iloc[0].to_dict() if len(row) else {}


def claims(rep: report.Report, runs: pd.DataFrame) -> str:
    """The claims table; `runs` carry the ranked metric in report.TASK_METRIC."""
    frame = problems_of(rep.ranked)
    lines = ["| claim | the paper | this study (95% interval) | verdict |", "|---|---|---|---|"]
    for claim, paper, schedule, budgets, k in TOP_K_CLAIMS:
        value, low, high, n = share(frame, schedule, budgets, f"top{k}")
        best, blow, bhigh, _ = share(frame, schedule, budgets, "best")
        ours = (f"{value:.0f}% [{low:.0f}, {high:.0f}] of {n} problems; in the best group in {best:.0f}% "
                f"[{blow:.0f}, {bhigh:.0f}]")
        lines.append(f"| {claim} | {paper} | {ours} | {share_verdict(paper_share(paper), value, low, high)} |")
    for claim, paper, a, b, budgets in [
        ("REX beats linear at low budgets", "REX abstract ('outperforms the linear schedule in the low "
         "budget regime')", "rex", "linear", LOW),
        ("REX matches or beats linear at high budgets", "REX abstract ('matching or exceeding')", "rex", "linear", HIGH),
        ("linear decay matches or beats cosine at the full budget (REX study)", "refinement paper, abstract ('the "
         "linear-decay schedule matches or outperforms ... cosine annealing')", "linear", "cosine", [1.0]),
    ]:
        lines.append(claim_row(claim, paper, a, b, contrast_row(rep.ranked, runs, a, b, budgets, rep.maximize), rep.maximize))
    return "\n".join(lines) + "\n"


def convergence(long_sweep: Path, rep: report.Report) -> str:
    """Per setting: the 100% winner's metric against the same schedule and LR trained 4x longer."""
    summary = collect.collect(long_sweep).summary
    longer = report.collected_runs(long_sweep, summary)
    rank_by = RankBy.parse(store.read_rank_by(long_sweep))
    longer, _ = report.task_metric(longer, rank_by.metric, rank_by.metric_by_task)
    full = rep.ranked[(compare.budget_fraction(rep.ranked) == 1.0).to_numpy() & (rep.ranked["rank"] == 1).to_numpy()]
    lines = ["| setting | 100% winner (peak LR) | at 100% (2,000 steps) | 4x longer (8,000 steps) | change |",
             "|---|---|---|---|---|"]
    for _, cell in full.sort_values(["task", "optimizer"]).iterrows():
        same = longer[(longer["task"] == cell["task"]) & (longer["optimizer"] == cell["optimizer"])
                      & (longer["schedule"] == cell["schedule"]) & np.isclose(longer["lr"], cell["best_lr"])]
        values = same[report.TASK_METRIC].astype(float)
        if values.empty:
            continue
        change = 100 * (values.mean() - cell["mean"]) / abs(cell["mean"])
        lines.append(f"| {cell['task']} {cell['optimizer']} | {cell['schedule']} ({cell['best_lr']:.3g}) | "
                     f"{cell['mean']:.4g} | {values.mean():.4g} (n={len(values)}) | {change:+.1f}% |")
    return "\n".join(lines) + "\n"


REFINEMENT_CLAIMS = [  # the refinement paper's abstract (arXiv 2310.07831), read in full
    ("linear decay matches or beats cosine (refinement study)", "refinement paper, abstract ('the linear-decay "
     "schedule matches or outperforms all commonly used default schedules including cosine annealing')", "linear", "cosine"),
    ("refined schedules improve on linear decay (refinement study)", "refinement paper, abstract ('our schedule "
     "refinement method gives further improvements')", "refined", "linear"),
]


def refinement(sweep: Path) -> tuple[str, list[str]]:
    """(refinement.md's table, claim rows) from both stages of `+study=refinement`: every run of the folder."""
    runs = report.collected_runs(sweep, collect.collect(sweep).summary)
    rank_by = RankBy.parse(store.read_rank_by(sweep))
    rep = report.build(runs, metric=rank_by.metric, metric_by_task=rank_by.metric_by_task)
    ranked_runs, _ = report.task_metric(runs, rank_by.metric, rank_by.metric_by_task)
    lines = ["| setting | refined | linear | cosine | winner | best group |", "|---|---|---|---|---|---|"]
    for (task, optimizer), cells in rep.ranked.groupby(["task", "optimizer"], sort=True):
        by = {c["schedule"]: c for _, c in cells.iterrows()}
        shown = [f"{by[s]['mean']:.4g} (lr {by[s]['best_lr']:.3g})" if s in by else "-" for s in ("refined", "linear", "cosine")]
        winner = cells.sort_values("rank").iloc[0]["schedule"]
        group = ", ".join(cells.loc[cells["best_group"].astype(bool), "schedule"])
        lines.append(f"| {task} {optimizer} | {' | '.join(shown)} | {winner} | {group} |")
    wins = rep.ranked[rep.ranked["rank"] == 1]["schedule"].value_counts()
    table = "\n".join(lines) + "\n\nWins: " + ", ".join(f"{s} {n}" for s, n in wins.items()) + f" of {wins.sum()} settings.\n"
    rows = []
    for claim, paper, a, b in REFINEMENT_CLAIMS:
        row = contrast_row(rep.ranked, ranked_runs, a, b, [1.0], rep.maximize)
        rows.append(claim_row(claim, paper, a, b, row, rep.maximize))
    return table, rows


def claim_row(claim: str, paper: str, a: str, b: str, row: dict, maximize: bool) -> str:
    """One contrast claim as a table row: A - B with its interval and a verdict."""
    if not row:
        return f"| {claim} | {paper} | no problem has both | not comparable |"
    better = row["ci_high"] < 0 if not maximize else row["ci_low"] > 0
    worse = row["ci_low"] > 0 if not maximize else row["ci_high"] < 0
    verdict = (f"agrees: {a} better" if better else f"disagrees: {a} worse" if worse else
               "no difference shown (the interval holds 0)" + (": consistent with 'matches'"
                                                              if "matches" in claim else ": does not show it"))
    return (f"| {claim} | {paper} | {a} - {b}: {row['diff_pct']:+.2f}% [{row['ci_low']:+.2f}, "
            f"{row['ci_high']:+.2f}] of {b}'s metric over {row['problems']} problems ({a} better in "
            f"{row['a_better']}) | {verdict} |")


def run_facts(runs: pd.DataFrame) -> str:
    """The run's size as the folder records it: runs by status, steps trained (shared prefixes once) and
    training seconds summed over runs; the diverged runs by setting and peak-LR multiple."""
    counts = runs["status"].value_counts()
    trained = int(runs["steps_trained"].sum()) if "steps_trained" in runs else int(runs["steps_done"].sum())
    diverged = runs[runs["status"] == "diverged"]
    where = (diverged.groupby(["task", "optimizer"]).size().sort_values(ascending=False))
    spots = ", ".join(f"{t} {o} {n}" for (t, o), n in where.items())
    seconds = float(runs["wall_s_trained"].sum()) if "wall_s_trained" in runs else float(runs["wall_s"].sum())
    return (f"{len(runs):,} runs: {int(counts.get('done', 0)):,} done, {int(counts.get('diverged', 0)):,} diverged "
            f"({spots or 'none'}). {trained:,} optimizer steps trained ({int(runs['steps_done'].sum()):,} counted per "
            f"run; shared prefixes train once), {seconds / 3600:.2f} hours of training summed over the runs.\n")


def fill(path: Path, name: str, text: str) -> None:
    """Replace what lies between `<!-- name:start -->` and `<!-- name:end -->` in `path` (if it has them)."""
    if not path.exists():
        return
    page = path.read_text(encoding="utf-8")
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    if start in page and end in page:
        head, rest = page.split(start, 1)
        path.write_text(f"{head}{start}\n{text}{end}{rest.split(end, 1)[1]}", encoding="utf-8")


def long_commands(rep: report.Report) -> str:
    """The launches of the convergence check: each setting's 100% winner at its best LR, 4x longer, 3 seeds."""
    full = rep.ranked[(compare.budget_fraction(rep.ranked) == 1.0).to_numpy() & (rep.ranked["rank"] == 1).to_numpy()]
    lines = []
    for _, cell in full.sort_values(["task", "optimizer"]).iterrows():
        lines.append(f"schedsweep launch +study=rex task={cell['task']} optimizer={cell['optimizer']} "
                     f"schedule={cell['schedule']} optimizer.lr={cell['best_lr']:.6g} lr_mult=1 full_steps=8000 "
                     f"budget=1.0 --name rex_long")
    return "\n".join(lines) + "\n"


def draw(sweep: Path, summary: pd.DataFrame, runs: pd.DataFrame, rep: report.Report, wanted: str) -> bytes:
    best = report.best_runs(runs, plots.shown_cells(rep))
    rows = collect.read_rows(sweep, summary, list(best["id"]), plots.CURVE_COLUMNS)
    return plots.draw(rep, best, rows).png[wanted]


def main(sweep: Path, out: Path, long_sweep: Path | None = None, plan: tuple[str, ...] = ("+study=rex",),
         refinement_sweep: Path | None = None) -> None:
    runs, summary, rank_by = study_runs(sweep, list(plan))
    runs, header = finished_settings(runs)
    build = dict(metric=rank_by.metric, metric_by_task=rank_by.metric_by_task)
    rep = report.build(runs, **build)
    ranked_runs, _ = report.task_metric(runs, rank_by.metric, rank_by.metric_by_task)
    (out / "report.md").write_text(header + render.report_text(rep, "md"), encoding="utf-8")
    facts = run_facts(runs)
    (out / "run.md").write_text(header + facts, encoding="utf-8")
    fill(out / "index.md", "run", header + facts)
    table = claims(rep, ranked_runs)
    if refinement_sweep is not None and (refinement_sweep / "sweep.yaml").exists():
        refined, rows = refinement(refinement_sweep)
        (out / "refinement.md").write_text(refined, encoding="utf-8")
        fill(out / "index.md", "refinement", refined)
        table += "\n".join(rows) + "\n"
    (out / "claims.md").write_text(header + table, encoding="utf-8")
    (out / "long.sh").write_text(long_commands(rep), encoding="utf-8")
    for page in (out / "index.md", out.parent.parent / "README.md"):
        fill(page, "claims", table)
    if long_sweep is not None and (long_sweep / "sweep.yaml").exists():
        (out / "convergence.md").write_text(convergence(long_sweep, rep), encoding="utf-8")
        fill(out / "index.md", "convergence", convergence(long_sweep, rep))
    for task in sorted(set(runs["task"])):
        full = runs[(runs["task"] == task) & (runs["budget"].astype(float) == 1.0)]
        (out / f"sensitivity_{task}.png").write_bytes(draw(sweep, summary, full, report.build(full, **build),
                                                           "sensitivity"))
    (out / "avg_rank.png").write_bytes(draw(sweep, summary, runs, rep, "avg_rank"))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("sweep", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--long", type=Path, default=None, help="the sweep of 4x longer runs (convergence.md)")
    parser.add_argument("--plan", nargs="+", default=["+study=rex"], help="overrides that plan the study's runs")
    parser.add_argument("--refinement", type=Path, default=None, help="the +study=refinement sweep (refinement.md)")
    args = parser.parse_args()
    main(args.sweep, args.out, args.long, tuple(args.plan), args.refinement)
