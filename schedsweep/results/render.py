"""How `schedsweep report` shows its tables: rich tables for the terminal; Markdown, LaTeX, CSV or JSON text.

Only the CLI (and schedsweep.results.html) call this; every number comes from schedsweep.results.report and
schedsweep.results.compare and is only formatted here. A report is a list of `Section`s (title, caption, a
grid of display strings); the terminal, Markdown, LaTeX and HTML all draw the same sections. CSV is
one table's raw numbers (`--table`), JSON all of them. Non-finite numbers stay visible as what they
mean: "inf" beside the mark "diverged" in tables, null in JSON, an empty cell where there is no result.
"""

from __future__ import annotations

import json
import math
from typing import Any, Iterator

import numpy as np
import pandas as pd
from rich import box
from rich.table import Table
from rich.text import Text

from schedsweep.results import caveats, contrasts, lr_fit
from schedsweep.results.numbers import ci, decimals, gap, num
from schedsweep.results.text import FORMATS, IN_BEST, TABLES, Section, sections_text  # noqa: F401 - FORMATS, TABLES, Section re-exported
from schedsweep.results.compare import budget_label
from schedsweep.results.report import AVG_RANK, Report, setting_columns
from schedsweep.results.report import pivot as pivot_of

WINNER = "bold green"
NO_SCORE = "dim"
RANK_HEADERS = ("budget", "schedule", "best lr", "mean ± std", "95% CI", "n", "rank", "gap", "p", "mark")



def fraction_label(fraction: float) -> str:
    return f"{fraction * 100:.3g}%"


# ---- sections


def setting_sections(ranked: pd.DataFrame, pivot: pd.DataFrame) -> list[Section]:
    """Per setting: the ranking (budgets apart) and REX's pivot of mean (rank) per budget."""
    metric = _metric_name(ranked)
    out: list[Section] = []
    for title, part, grid in _settings(ranked, pivot):
        ranking = Section(title, f"ranked by {metric}: best peak LR per schedule, mean ± std and 95% CI over seeds; "
                          f"rank {IN_BEST}: in the best group (not significantly worse than the winner at 5%: p, one-sided, "
                          "of a paired t-test over seeds, Welch's without shared seeds); lr edge: best LR at the "
                          "grid's edge", list(RANK_HEADERS), left=2)
        places = decimals(part["mean"])  # one precision for the whole mean column of this setting
        for _, rows in part.groupby("budget", sort=False):
            for i, row in enumerate(rows.to_dict("records")):
                cells = _ranking_cells(row, places)
                cells[0] = cells[0] if i == 0 else ""
                if _wins(row):
                    ranking.bold.add(len(ranking.rows))
                elif not math.isfinite(row["mean"]):
                    ranking.dim.add(len(ranking.rows))
                ranking.rows.append(cells)
            ranking.breaks.add(len(ranking.rows) - 1)
        out.append(ranking)
        budgets = _budgets(grid)
        table = Section(title, f"mean {metric} (rank) per budget; * partial; avg rank over budgets, as in REX",
                        ["schedule", *map(budget_label, budgets), "avg rank"])
        best_avg = grid[AVG_RANK].min()
        for key, row in grid.iterrows():
            if row[AVG_RANK] == best_avg:
                table.bold.add(len(table.rows))
            table.rows.append([str(key[-1]), *[_pivot_cell(row, b, places) for b in budgets], f"{row[AVG_RANK]:.2f}"])
        out.append(table)
    return out


def report_sections(rep: Report) -> list[Section]:
    """Every table of the report: per setting, then the four comparisons across settings."""
    across: list[Section] = []
    n_settings = len(rep.ranked.groupby(setting_columns(rep.ranked), sort=False, dropna=False))
    better = "higher" if rep.maximize else "lower"
    metric = _metric_name(rep.ranked)

    counted = caveats.count_note(rep.problems)
    caption = (f"rank of each schedule by {metric} averaged over {n_settings} setting(s); 1 is best; a schedule "
               f"identical to another at a budget counts once, as the other; over {counted}")
    if rep.ranked["optimizer"].nunique() > 1:  # REX's Fig. 1 is per optimizer; the pooled table is not REX's
        across.append(_rank_section("Average rank per budget and optimizer (REX Fig. 1)", caption, rep.by_optimizer))
        across.append(_rank_section("Average rank per budget, optimizers pooled", caption, rep.by_budget))
    else:
        across.append(_rank_section("Average rank per budget (REX Fig. 1)", caption, rep.by_budget))

    top = rep.top_k
    section = Section("Top-1 / Top-3 shares (REX Table 1)",
                      "% of problems (setting x budget) where the schedule ranks first / in the first three / is in "
                      "the best group (not significantly worse than the winner); low budgets are < 25% of the full "
                      "run (REX: 1, 5, 10%); a schedule identical to another at a budget counts once, as the other; "
                      f"(n) problems; over {counted}",
                      ["schedule", "low (<25%)", "high (≥25%)", "overall"])
    for i, (schedule, row) in enumerate(zip(top.index, top.to_dict("records"))):
        shares = [_share(row, g) for g in ("low", "high", "all")]
        if row.get("same_as") and not row["n_all"]:  # identical to another schedule at every budget
            shares[-1] = f"= {row['same_as']}"
        section.rows.append([str(schedule), *shares])
        if row["all_top1"] == top["all_top1"].max():
            section.bold.add(i)
    across.append(section)

    if len(rep.ratios):
        summary = rep.ratio_summary
        section = Section(f"Against {rep.baseline} (refinement paper)", f"over the problems with a {rep.baseline} result: "
                          f"better = {better} {metric} than {rep.baseline}; geomean of the ratios below",
                          ["schedule", "problems", "better", "equal", "worse", "geomean", "best", "worst"])
        for schedule, row in zip(summary.index, summary.to_dict("records")):
            section.rows.append([str(schedule), str(row["n"]), str(row["better"]), str(row["equal"]), str(row["worse"]),
                                 *[num(row[c], ".3f") for c in ("geomean", "best", "worst")]])
        across.append(section)
        names = list(rep.ratios.index.names)
        section = Section(f"Ratio to {rep.baseline} per problem",
                          f"{metric} of each schedule / {rep.baseline}'s at its best LR; {'> 1' if rep.maximize else '< 1'} "
                          f"beats {rep.baseline}", [*names, *map(str, rep.ratios.columns)], left=len(names))
        for key, row in rep.ratios.iterrows():
            key = key if isinstance(key, tuple) else (key,)
            labels = [_plain(v) for v in key[:-1]] + [budget_label(key[-1])]
            section.rows.append([*labels, *[num(v, ".3f") for v in row]])
        across.append(section)

    perf = rep.performance
    other = rep.performance_2.reindex(perf.index)
    section = Section(f"Dolan-More profile of final-metric ratios, r_max = {rep.r_max:g} and {rep.r_max_2:g}",
                      f"share of problems within a factor τ of the best {metric}, integrated over τ in [1, r_max] "
                      "and divided by r_max - 1: 1 = best everywhere (not AlgoPerf's profile, which is of times to a "
                      f"target, with r_max = 4); over {counted}",
                      ["schedule", f"score ({rep.r_max:g})", f"score ({rep.r_max_2:g})", "problems", "best",
                       f"within {rep.r_max:g}x"])
    for i, (schedule, row) in enumerate(zip(perf.index, perf.to_dict("records"))):
        section.rows.append([str(schedule), num(row["score"], ".3f"), num(other.loc[schedule, "score"], ".3f"),
                             str(row["n"]), str(row["best"]), str(row["within"])])
        if row["score"] == perf["score"].max():
            section.bold.add(i)
    across.append(section)
    if len(rep.contrasts):
        across.append(_contrast_section(rep, counted))
    for section in across:
        section.across = True
    if len(rep.ranked.groupby([*setting_columns(rep.ranked), "budget"], sort=False, dropna=False)) < 2:
        across = []  # one problem (one setting at one budget): its own ranking says it all
    pairs = setting_sections(rep.pairs, pivot_of(rep.pairs)) if len(rep.pairs) else []
    return setting_sections(rep.ranked, rep.pivot) + pairs + across + _lr_sections(rep)


# ---- output formats


def rich_tables(ranked: pd.DataFrame, pivot: pd.DataFrame) -> list[Table]:
    """Per setting, the ranking (one section per budget) and then REX's pivot of mean (rank)."""
    return [rich_table(s) for s in setting_sections(ranked, pivot)]


def rich_table(section: Section) -> Table:
    title = f"{section.title}\n{section.caption}"
    # Without a minimum width rich wraps the title to a narrow table's width, one word per line.
    width = min(100, max(map(len, title.splitlines())) + 2)
    table = Table(title=title, box=box.SIMPLE_HEAD, title_justify="left", min_width=width, pad_edge=False,
                  padding=(0, 1), collapse_padding=True)
    for i, header in enumerate(section.headers):
        table.add_column(header, justify="left" if section.is_label(i) else "right", no_wrap=i > 0)
    for i, row in enumerate(section.rows):
        style = WINNER if i in section.bold else NO_SCORE if i in section.dim else None
        table.add_row(*[Text(c) for c in row], style=style, end_section=i in section.breaks)
    return table


def to_text(ranked: pd.DataFrame, pivot: pd.DataFrame, fmt: str) -> str:
    """The per-setting tables as Markdown, LaTeX, CSV (the ranked frame) or JSON ({ranking, pivot})."""
    if fmt == "csv":
        # pandas writes inf as "inf" and NaN as "", so a diverged mean stays readable in a sheet.
        return ranked.to_csv(index=False)
    if fmt == "json":
        doc = {"metric": ranked.attrs.get("metric"), "maximize": bool(ranked.attrs.get("maximize", False)),
               "ranking": _records(ranked), "pivot": _pivot_records(pivot)}
        return json.dumps(doc, indent=1, allow_nan=False) + "\n"
    return sections_text(setting_sections(ranked, pivot), fmt)


def report_text(rep: Report, fmt: str, table: str | None = None) -> str:
    """The whole report as Markdown, LaTeX or JSON; CSV is one table's numbers (default: the ranking)."""
    if fmt == "csv":
        return raw_tables(rep)[table or "ranking"].to_csv(index=False)
    if table is not None:
        raise ValueError(f"--table selects the table of --format csv; with --format {fmt} every table is written.")
    if fmt == "json":
        doc = {"metric": rep.metric, "maximize": rep.maximize, "baseline": rep.baseline, "r_max": rep.r_max,
               "ranking": _records(rep.ranked), "pivot": _pivot_records(rep.pivot), "notes": rep.notes,
               **{name: _records(frame) for name, frame in raw_tables(rep).items() if name not in ("ranking", "pivot")}}
        return json.dumps(doc, indent=1, allow_nan=False) + "\n"
    text = sections_text(report_sections(rep), fmt)
    if fmt == "md":
        from schedsweep.results import answer

        text = "\n".join(["## The answer", "", *[f"- {line}" for line in answer.sentences(rep)], "", ""]) + text
    if fmt == "latex":
        text = "% schedsweep report: tables use booktabs (\\usepackage{booktabs})\n\n" + text
    if rep.notes:
        notes = [f"% {n}" for n in rep.notes] if fmt == "latex" else [f"- {n}" for n in rep.notes]
        text += "\n".join(["Notes:" if fmt == "md" else "% Notes:", "", *notes, ""]) + "\n"
    return text


def raw_tables(rep: Report) -> dict[str, pd.DataFrame]:
    """Each table's numbers as a flat frame (budget fractions and ratio columns named as strings)."""
    pivot = rep.pivot.copy()
    pivot.columns = [f"{budget_label(b)} {f}" if f else str(b) for b, f in pivot.columns]
    budgets = rep.by_budget.rename(columns=lambda c: fraction_label(c) if isinstance(c, float) else c)
    return {
        "ranking": rep.ranked,
        "pivot": pivot.reset_index(),
        "budgets": budgets.reset_index(),
        "budgets_by_optimizer": rep.by_optimizer.rename(
            columns=lambda c: fraction_label(c) if isinstance(c, float) else c).reset_index(),
        "topk": rep.top_k.reset_index(),
        "ratios": rep.ratios.reset_index(),
        "ratio_summary": rep.ratio_summary.reset_index(),
        "profile": rep.performance.reset_index(),
        "pairs": rep.pairs,
        "contrasts": rep.contrasts,
        "problems": rep.problems,
        "lr_fit": rep.lr_fit,
        "lr_law": rep.lr_law,
    }


# ---- cells


def _settings(ranked: pd.DataFrame, pivot: pd.DataFrame) -> Iterator[tuple[str, pd.DataFrame, pd.DataFrame]]:
    """(title, ranking rows, pivot rows) per setting; both frames list settings in plan order."""
    setting = setting_columns(ranked)
    parts = ranked.groupby(setting, sort=False, dropna=False)
    grids = pivot.groupby(level=list(range(len(setting))), sort=False, dropna=False)
    for (key, part), (_, grid) in zip(parts, grids):
        yield " ".join(f"{c}={_plain(v)}" for c, v in zip(setting, key)), part, grid


def _metric_name(ranked: pd.DataFrame) -> str:
    metric = ranked.attrs.get("metric", "loss")
    return f"{metric} (higher is better)" if ranked.attrs.get("maximize") else metric


def _budgets(grid: pd.DataFrame) -> list[Any]:
    """The budgets this setting has (pivot columns of other settings' budgets are all NaN here)."""
    return [b for b, field in grid.columns if field == "mark" and grid[(b, "mark")].notna().any()]


def _wins(row: dict[str, Any]) -> bool:
    return row["rank"] == 1 and math.isfinite(row["mean"])


def _ranking_cells(row: dict[str, Any], places: int = 4) -> list[str]:
    mean, std = row["mean"], row["std"]
    spread = num(mean) if not math.isfinite(mean) else f"{mean:.{places}f}" if pd.isna(std) else \
        f"{mean:.{places}f} ± {std:.2g}"
    best = f" {IN_BEST}" if row.get("best_group") is True or row.get("best_group") is np.True_ else ""
    return [budget_label(row["budget"]), str(row["schedule"]), num(row["best_lr"], ".3g"), spread, ci(row["ci95"]),
            str(row["n"]), f"{row['rank']}{best}", gap(row["gap"], row["gap_pct"], places), _p(row.get("p_vs_best")), _notes(row)]


def _p(p: Any) -> str:
    if p is None or pd.isna(p):
        return ""
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def _notes(row: dict[str, Any]) -> str:
    """The mark, then what else happened to this schedule's runs: '(1 div, 2 miss)'."""
    counts = [(row["n_diverged"], "div"), (row["n_failed"], "fail"), (row["n_missing"], "miss")]
    counts = [f"{n} {what}" for n, what in counts if n]
    same = f"= {row['same_as']}" if row.get("same_as") else ""
    edge = f"lr edge {row['lr_edge']}" if row.get("lr_edge") else ""
    return " ".join([same, row["mark"], f"({', '.join(counts)})" if counts else "", edge]).strip()


def _pivot_cell(row: pd.Series, budget: Any, places: int = 4) -> str:
    mean, rank, mark = row[(budget, "mean")], row[(budget, "rank")], row[(budget, "mark")]
    value = (f"{mean:.{places}f}" + ("*" if mark == "partial" else "")) if math.isfinite(mean) else str(mark)
    return f"{value} ({int(rank)})"


def _share(row: dict[str, Any], group: str) -> str:
    n = int(row[f"n_{group}"])
    if n == 0:
        return ""
    best = f" / {row[f'{group}_best']:.0f}" if f"{group}_best" in row else ""
    return f"{row[f'{group}_top1']:.0f} / {row[f'{group}_top3']:.0f}{best} ({n})"


def _rank_section(title: str, caption: str, grid: pd.DataFrame) -> Section:
    fractions = [c for c in grid.columns if c not in ("all", "n")]
    keys = list(grid.index.names) if grid.index.nlevels > 1 else ["schedule"]
    section = Section(title, caption, [*keys, *map(fraction_label, fractions), "all", "problems"], left=len(keys))
    best = grid.groupby(level=0)["all"].transform("min") if grid.index.nlevels > 1 else grid["all"].min()
    for i, (key, row) in enumerate(zip(grid.index, grid.to_dict("records"))):
        labels = [str(k) for k in key] if isinstance(key, tuple) else [str(key)]
        section.rows.append([*labels, *[num(row[f], ".2f") for f in fractions], num(row["all"], ".2f"), str(row["n"])])
        if row["all"] == (best.iloc[i] if isinstance(best, pd.Series) else best):
            section.bold.add(i)
    return section


def _lr_sections(rep: Report) -> list[Section]:
    """`--fit-lr`: lr* per cell with its 95% CI, and per (setting, schedule) the power law of lr* in steps."""
    if rep.lr_fit.empty:
        return []
    keys = [c for c in rep.lr_fit.columns if c not in ("steps", *lr_fit.FIT_COLUMNS)]
    cells = Section("Fitted peak LR (--fit-lr)", "lr* = minimum of a quadratic in ln(lr) through the best LR and up to "
                    f"{lr_fit.SPAN} grid points each side (weighted by the seeds' spread); 95% CI by the delta method; "
                    "outside: beyond the LRs run (extend the grid)", [*keys, "lr*", "95% CI", "points", "in grid"], left=len(keys))
    for row in rep.lr_fit.to_dict("records"):
        ci = "" if pd.isna(row["lr_star_low"]) else f"[{row['lr_star_low']:.3g}, {row['lr_star_high']:.3g}]"
        shown = "" if pd.isna(row["lr_star"]) else "yes" if row["lr_star_inside"] else "outside"
        cells.rows.append([*(budget_label(row[k]) if k == "budget" else _plain(row[k]) for k in keys),
                           num(row["lr_star"], ".3g"), ci, str(row["lr_points"]), shown])
    lkeys = [c for c in rep.lr_law.columns if c not in lr_fit.LAW_COLUMNS]
    law = Section("Fitted peak LR against the budget (--fit-lr)", "lr*(steps) = coefficient x steps^exponent, least "
                  "squares in log-log over the budgets whose lr* is inside its grid", [*lkeys, "budgets", "exponent",
                  "coefficient", "lr* at steps"], left=len(lkeys))
    for row in rep.lr_law.to_dict("records"):
        at = "" if pd.isna(row["lr_at_ref"]) else f"{row['lr_at_ref']:.3g} at {row['ref_steps']}"
        law.rows.append([*(_plain(row[k]) for k in lkeys), str(row["budgets"]), num(row["exponent"], ".3f"),
                         num(row["coefficient"], ".3g"), at])
    return [cells, law]


def _contrast_section(rep: Report, counted: str) -> Section:
    section = Section("Paired contrasts across problems",
                      f"mean over problems of 100 (A - B) / |B| of {_metric_name(rep.ranked)} (negative: A "
                      "lower), 95% bootstrap interval over settings and seeds (paired seeds); a better = problems "
                      f"where A's mean is better; no verdict under {contrasts.MIN_SETTINGS} settings; of {counted}",
                      ["contrast", "settings", "problems", "a better", "A - B (%)", "95% interval", "verdict"])
    for row in rep.contrasts.to_dict("records"):
        section.rows.append([row["contrast"], str(row["settings"]), str(row["problems"]), str(row["a_better"]),
                             f"{row['diff_pct']:+.2f}",
                             f"[{row['ci_low']:+.2f}, {row['ci_high']:+.2f}]", row["verdict"]])
    return section


def _pivot_records(pivot: pd.DataFrame) -> list[dict[str, Any]]:
    names = list(pivot.index.names)
    records = []
    for key, row in pivot.iterrows():
        budgets = [
            {"budget": _json_value(b), "label": budget_label(b),
             **{f: _json_value(row[(b, f)]) for f in ("mean", "rank", "mark")}}
            for b, field in pivot.columns
            if field == "mark" and not pd.isna(row[(b, "mark")])
        ]
        record = {n: _json_value(v) for n, v in zip(names, key)}
        records.append({**record, "avg_rank": _json_value(row[AVG_RANK]), "budgets": budgets})
    return records


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{str(k): _json_value(v) for k, v in r.items()} for r in frame.to_dict("records")]


def _json_value(value: Any) -> Any:
    """Plain JSON: numpy scalars unwrapped; NaN and inf become null (the mark says why)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is not None and not isinstance(value, (str, int, float, bool)) and pd.isna(value):
        return None
    return value


def _plain(value: Any) -> str:
    return "none" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)
