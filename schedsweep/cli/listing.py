"""CLI verbs that list what is on disk: `ls` (the sweeps of a results folder) and `runs` (one sweep's runs)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from schedsweep.cli.app import app, friendly, out
from schedsweep.errors import SchedsweepError

LABELS = ("schedule", "budget", "optimizer", "lr", "seed")


@app.command("ls")
@friendly
def list_sweeps(results: Path = typer.Argument(Path("results"), help="A folder of sweeps (default: results).")) -> None:
    """The sweeps in RESULTS: name, runs by state, and when each was last launched (and with what)."""
    import json

    from schedsweep.cli import views
    from schedsweep.results import widths
    from schedsweep.results.render import Section
    from schedsweep.sweep import claims, store
    from schedsweep.sweep.run_folder import RunFolder

    if not results.is_dir():
        raise SchedsweepError(f"'{results}' is not a folder; sweeps are made by `schedsweep launch` (in ./results by default).")
    sweeps = sorted(p for p in results.iterdir() if p.is_dir() and store.is_sweep(p))
    if not sweeps:
        out.print(f"no sweeps in '{results}': start one with `schedsweep launch ...`.")
        return
    section = Section("", "", ["sweep", "runs", "states", "last launch", "command"], left=1)
    for path in sweeps:
        records = store.read_plan(path)
        statuses = claims.observe_all([RunFolder.of(path, r["id"]).path for r in records])
        counts: dict[str, int] = {}
        for st in statuses:
            counts[st.status] = counts.get(st.status, 0) + 1
        launches = (path / store.LAUNCHES).read_text(encoding="utf-8").splitlines() if (path / store.LAUNCHES).is_file() else []
        last = json.loads(launches[-1]) if launches else {}
        when = str(last.get("time", ""))[:16].replace("T", " ")
        section.rows.append([path.name, str(len(records)), _plain(views.counts_line(counts)), when, " ".join(last.get("argv", []))])
    for table in widths.fit(section, out.width, _table):
        out.print(table)


@app.command("runs")
@friendly
def list_runs(
    sweep: Path = typer.Argument(..., help="A sweep folder, e.g. results/<name>."),
    where: list[str] = typer.Option([], "--where", help="Only runs whose label KEY has one of VALUES: KEY=V1,V2 (repeatable), e.g. schedule=cosine."),
) -> None:
    """The runs of a sweep: id, labels, status, the step reached and the final eval loss (ids for `refine`)."""
    from schedsweep.plan import variants
    from schedsweep.results import widths
    from schedsweep.results.render import Section
    from schedsweep.sweep import claims, store
    from schedsweep.sweep.run_folder import RunFolder
    from schedsweep.sweep.status import RESULTS
    from schedsweep.train import metrics

    records = store.read_plan(store.require_sweep(sweep))
    wanted = _selection(where, records)
    axes = sorted({k for r in records for k in r["labels"].get("axes", {})} - {*LABELS, "optimizer.lr"})
    section = Section("", "", ["run id", *LABELS, *axes, "status", "step", "eval loss"], left=1)
    paths = [RunFolder.of(sweep, r["id"]).path for r in records]
    for record, path, st in zip(records, paths, claims.observe_all(paths)):
        labels = {**record["labels"], **record["labels"].get("axes", {})}
        if labels.get("lr") is None and st.peak_lr is not None:  # a script's own LR, as its client reported it
            labels["lr"] = st.peak_lr
        if not all(variants.matches(labels.get(k), values) for k, values in wanted.items()):
            continue
        step = st.steps_done if st.status in RESULTS else max(st.steps_done, metrics.reached(RunFolder(path).metrics) or 0)
        loss = "" if st.final_eval_loss is None else f"{st.final_eval_loss:.4f}"
        section.rows.append([record["id"], *[_cell(labels.get(k), k) for k in (*LABELS, *axes)], st.status,
                             f"{step}/{record['labels']['steps']}", loss])
    if not section.rows:
        raise SchedsweepError(f"no run of '{sweep}' matches {' '.join('--where ' + w for w in where)}.")
    # A label with one value over the shown runs is said once above the table, not repeated on every row.
    same = [i for i, h in enumerate(section.headers) if 0 < i <= len(LABELS) + len(axes)
            and len({row[i] for row in section.rows}) == 1 and len(section.rows) > 1]
    if same:
        out.print("every run: " + ", ".join(f"{section.headers[i]}={section.rows[0][i]}" for i in same), highlight=False)
        keep = [i for i in range(len(section.headers)) if i not in same]
        section.headers = [section.headers[i] for i in keep]
        section.rows = [[row[i] for i in keep] for row in section.rows]
    for table in widths.fit(section, out.width, _table):
        out.print(table)
    out.print(f"{len(section.rows)} of {len(records)} runs")


def _selection(where: list[str], records: list[dict[str, Any]]) -> dict[str, list[str]]:
    keys = {k for r in records for k in (*r["labels"], *r["labels"].get("axes", {}))} - {"axes"}
    out: dict[str, list[str]] = {}
    for item in where:
        key, sep, values = item.partition("=")
        if not sep or not values:
            raise SchedsweepError(f"--where {item!r} is not KEY=VALUE[,VALUE...] (e.g. --where schedule=cosine).")
        if key not in keys:
            raise SchedsweepError(f"--where key {key!r} is not a label of this sweep's runs; choose from: {', '.join(sorted(keys))}.")
        out.setdefault(key, []).extend(v for v in values.split(",") if v)
    return out


def _cell(value: Any, key: str) -> str:
    """The LR as '0.001' (not 0.0010000000000000002); every other label as the plan writes it (budget 1.0)."""
    if value is None:
        return ""
    return f"{value:g}" if key == "lr" and isinstance(value, float) else str(value)


def _plain(markup: str) -> str:
    from rich.text import Text

    return Text.from_markup(markup).plain


def _table(section: Any) -> Any:
    from rich import box
    from rich.table import Table

    table = Table(*section.headers, box=box.SIMPLE_HEAD, pad_edge=False)
    for row in section.rows:
        table.add_row(*row)
    return table
