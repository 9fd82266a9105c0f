"""How `schedsweep report` shows a ranking: rich tables for the terminal, Markdown, CSV or JSON text.

Only the CLI calls this; every number comes from schedsweep.report and is only formatted here.
Non-finite numbers stay visible as what they mean: "inf" beside the mark "diverged" in tables, null
in JSON, and an empty cell where there is no result at all.
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

from schedsweep.report import AVG_RANK, setting_columns

FORMATS = ("md", "csv", "json")
WINNER = "bold green"
NO_SCORE = "dim"
RANK_HEADERS = ("budget", "schedule", "best lr", "mean ± std", "n", "rank", "gap", "mark")


def budget_label(budget: Any) -> str:
    """'25%' for a fraction of the full run, '500 steps' for an absolute budget (ints are >= 2)."""
    value = float(budget)
    return f"{value * 100:g}%" if value <= 1 else f"{int(value)} steps"


def rich_tables(ranked: pd.DataFrame, pivot: pd.DataFrame) -> list[Table]:
    """Per setting, the ranking (one section per budget) and then REX's pivot of mean (rank)."""
    metric = ranked.attrs.get("metric", "loss")
    tables: list[Table] = []
    for title, part, grid in _settings(ranked, pivot):
        ranking = _table(f"{title}\nranked by {metric}")
        for header in RANK_HEADERS:
            ranking.add_column(header, justify="left" if header in ("budget", "schedule", "mark") else "right")
        for budget, rows in part.groupby("budget", sort=False):
            for i, row in enumerate(rows.to_dict("records")):
                style = WINNER if _wins(row) else NO_SCORE if not math.isfinite(row["mean"]) else None
                cells = _ranking_cells(row)
                cells[0] = budget_label(budget) if i == 0 else ""
                ranking.add_row(*cells, style=style)
            ranking.add_section()
        tables.append(ranking)

        budgets = _budgets(grid)
        table = _table(f"{title}\nmean {metric} (rank) per budget; * partial")
        table.add_column("schedule")
        for b in budgets:
            table.add_column(budget_label(b), justify="right")
        table.add_column("avg rank", justify="right")
        best_avg = grid[AVG_RANK].min()
        for key, row in grid.iterrows():
            cells = [Text(_pivot_cell(row, b), style=WINNER if _cell_wins(row, b) else "") for b in budgets]
            avg = row[AVG_RANK]
            table.add_row(str(key[-1]), *cells, Text(f"{avg:.2f}", style=WINNER if avg == best_avg else ""))
        tables.append(table)
    return tables


def to_text(ranked: pd.DataFrame, pivot: pd.DataFrame, fmt: str) -> str:
    """The report as Markdown (GitHub tables), CSV (the ranked frame) or JSON ({ranking, pivot})."""
    if fmt == "md":
        return _markdown(ranked, pivot)
    if fmt == "csv":
        # pandas writes inf as "inf" and NaN as "", so a diverged mean stays readable in a sheet.
        return ranked.to_csv(index=False)
    if fmt == "json":
        doc = {
            "metric": ranked.attrs.get("metric"),
            "ranking": [{k: _json_value(v) for k, v in r.items()} for r in ranked.to_dict("records")],
            "pivot": _pivot_records(pivot),
        }
        return json.dumps(doc, indent=1, allow_nan=False) + "\n"
    raise ValueError(f"unknown format {fmt!r}; choose one of: {', '.join(FORMATS)}.")


def _settings(ranked: pd.DataFrame, pivot: pd.DataFrame) -> Iterator[tuple[str, pd.DataFrame, pd.DataFrame]]:
    """(title, ranking rows, pivot rows) per setting; both frames list settings in plan order."""
    setting = setting_columns(ranked)
    parts = ranked.groupby(setting, sort=False, dropna=False)
    grids = pivot.groupby(level=list(range(len(setting))), sort=False, dropna=False)
    for (key, part), (_, grid) in zip(parts, grids):
        title = " ".join(f"{c}={_plain(v)}" for c, v in zip(setting, key))
        yield title, part, grid


def _table(title: str) -> Table:
    # Without a minimum width rich wraps the title to a narrow table's width, one word per line.
    width = min(100, max(map(len, title.splitlines())) + 2)
    return Table(title=title, box=box.SIMPLE_HEAD, title_justify="left", min_width=width)


def _budgets(grid: pd.DataFrame) -> list[Any]:
    """The budgets this setting has (pivot columns of other settings' budgets are all NaN here)."""
    return [b for b, field in grid.columns if field == "mark" and grid[(b, "mark")].notna().any()]


def _wins(row: dict[str, Any]) -> bool:
    return row["rank"] == 1 and math.isfinite(row["mean"])


def _cell_wins(row: pd.Series, budget: Any) -> bool:
    return row[(budget, "rank")] == 1 and math.isfinite(row[(budget, "mean")])


def _ranking_cells(row: dict[str, Any]) -> list[str]:
    mean, std = row["mean"], row["std"]
    spread = _num(mean) if pd.isna(std) or not math.isfinite(mean) else f"{mean:.4g} ± {std:.2g}"
    return [
        budget_label(row["budget"]),
        str(row["schedule"]),
        _num(row["best_lr"], ".3g"),
        spread,
        str(row["n"]),
        str(row["rank"]),
        _gap(row["gap_pct"]),
        _notes(row),
    ]


def _notes(row: dict[str, Any]) -> str:
    """The mark, then what else happened to this schedule's runs: '(1 div, 2 miss)'."""
    counts = [(row["n_diverged"], "div"), (row["n_failed"], "fail"), (row["n_missing"], "miss")]
    counts = [f"{n} {what}" for n, what in counts if n]
    return " ".join([row["mark"], f"({', '.join(counts)})" if counts else ""]).strip()


def _pivot_cell(row: pd.Series, budget: Any) -> str:
    mean, rank, mark = row[(budget, "mean")], row[(budget, "rank")], row[(budget, "mark")]
    value = (f"{mean:.4g}" + ("*" if mark == "partial" else "")) if math.isfinite(mean) else str(mark)
    return f"{value} ({int(rank)})"


def _markdown(ranked: pd.DataFrame, pivot: pd.DataFrame) -> str:
    metric = ranked.attrs.get("metric", "loss")
    out: list[str] = []
    for title, part, grid in _settings(ranked, pivot):
        out += [f"## {title}", "", f"Ranked by {metric}: best peak LR per schedule, mean ± std over seeds.", ""]
        headers = ["budget", "schedule", "best lr", "mean", "std", "n", "rank", "gap", "mark"]
        rows = [
            [budget_label(r["budget"]), r["schedule"], _num(r["best_lr"], ".3g"), _num(r["mean"]),
             _num(r["std"], ".2g"), r["n"], r["rank"], _gap(r["gap_pct"]), _notes(r)]
            for r in part.to_dict("records")
        ]
        out += [_md_table(headers, rows), ""]
        budgets = _budgets(grid)
        out += [f"Mean {metric} (rank) per budget (* partial); avg rank over budgets, as in REX.", ""]
        rows = [
            [key[-1], *[_pivot_cell(row, b) for b in budgets], f"{row[AVG_RANK]:.2f}"]
            for key, row in grid.iterrows()
        ]
        out += [_md_table(["schedule", *map(budget_label, budgets), "avg rank"], rows), ""]
    return "\n".join(out)


def _md_table(headers: list[str], rows: list[list[Any]]) -> str:
    def line(cells: list[Any]) -> str:
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"

    return "\n".join([line(headers), line(["---"] * len(headers)), *map(line, rows)])


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


def _json_value(value: Any) -> Any:
    """Plain JSON: numpy scalars unwrapped; NaN and inf become null (the mark says why)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is not None and not isinstance(value, (str, int, float, bool)) and pd.isna(value):
        return None
    return value


def _num(value: Any, spec: str = ".4g") -> str:
    if pd.isna(value):
        return ""
    return format(value, spec) if math.isfinite(value) else ("inf" if value > 0 else "-inf")


def _gap(pct: float) -> str:
    return _num(pct) if not math.isfinite(pct) or pd.isna(pct) else f"{pct:+.1f}%"


def _plain(value: Any) -> str:
    return "none" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)
