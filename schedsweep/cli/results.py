"""CLI verbs about results: collect, report (tables, figures, HTML) and predict (loss-curve laws)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Optional

import typer

from schedsweep import files
from schedsweep.cli.app import ConfigDir, app, err, friendly, out
from schedsweep.errors import SchedsweepError
from schedsweep.results.text import TABLES


@app.command()
@friendly
def collect(
    sweep: Path = typer.Argument(..., help="A sweep folder, e.g. results/<name>."),
    last_k: int = typer.Option(20, "--last-k", help="Steps averaged for the train_loss_last_k summary column."),
    rebuild: bool = typer.Option(False, "--rebuild", help="Re-read every run, not only those changed since the last collect."),
) -> None:
    """Merge every run's metric parts into <sweep>/collected/ (one dataset + a one-row-per-run summary)."""
    from schedsweep.results import collect as collecting

    result = collecting.collect(sweep, last_k=last_k, rebuild=rebuild)
    _warn_collected(result)
    chunks = result.summary["chunk"].dropna()
    out.print(f"collected {len(result.summary)} runs into {result.path.parent}: {result.reread} re-read, "
              f"{result.reused} unchanged; {int(result.summary['n_rows'].sum())} metric rows in "
              f"{chunks.nunique()} file(s) under {result.path.parent / collecting.CHUNKS}", soft_wrap=True, highlight=False)


@app.command()
@friendly
def report(
    sweep: Path = typer.Argument(..., help="A sweep folder, e.g. results/<name>."),
    fmt: Optional[str] = typer.Option(None, "--format", help="md, csv, json or latex instead of terminal tables."),
    out_file: Optional[Path] = typer.Option(None, "--out", help="Write the --format output to this file (format from its suffix if no --format)."),
    metric: Optional[str] = typer.Option(None, "--metric", help="final_eval_loss (default), eval_error, best_eval_loss, final_loss, train_loss_last_k, or a logged column (its last value): grad_norm, lr, ...; for every task. Without it, a study's `report:` block (metric per task) if it has one."),
    maximize: bool = typer.Option(False, "--maximize/--minimize", help="Higher metric is better (accuracy-like), or lower (losses, the default)."),
    last_k: int = typer.Option(20, "--last-k", help="Steps averaged for train_loss_last_k."),
    baseline: Optional[str] = typer.Option(None, "--baseline", help="Schedule the ratio table divides by (default: linear, when swept)."),
    r_max: float = typer.Option(1.1, "--r-max", help="Dolan-More profile of final-metric ratios: counted up to this factor (shown beside r_max 1.02)."),
    table: Optional[str] = typer.Option(None, "--table", help=f"With --format csv: one of the report's tables by name: {', '.join(TABLES)}."),
    plots: Optional[Path] = typer.Option(None, "--plots", help="Write the figures as PNG files into this folder."),
    html: Optional[Path] = typer.Option(None, "--html", help="Write one self-contained HTML page (tables, figures, config)."),
    averaged: bool = typer.Option(False, "--averaged", help="Rank each averaged run (average=ema|lawa) also as <schedule>+<kind>, by its averaged weights, beside the schedules' own (the cooldown's rival)."),
    fit_lr: bool = typer.Option(False, "--fit-lr", help="lr* per (setting, budget, schedule) from a quadratic in log LR around the best (95% CI, inside the grid or not), an lr_star column in the ranking, and a power law of lr* in steps per schedule."),
) -> None:
    """Rank schedules per budget (mean ± std and 95% CI over seeds, best peak LR per schedule; with several optimizers, (optimizer, schedule) pairs), then
    compare them across settings: average rank per budget, Top-1/Top-3 shares, ratio to linear decay,
    Dolan-More profile of final-metric ratios, paired contrasts with bootstrap CIs; marks the best group
    (not significantly worse than the winner), identical schedules, best LRs at the grid's edge and
    degenerate problems. Collects the sweep first (only runs changed since the last collect)."""
    from schedsweep.results import render
    from schedsweep.results import report as reporting
    from schedsweep.sweep import store
    from schedsweep.sweep.api import Sweep

    if fmt is None and out_file is not None:  # from the suffix: .md .csv .json .tex; Markdown otherwise
        fmt = {".csv": "csv", ".json": "json", ".tex": "latex", ".latex": "latex"}.get(out_file.suffix, "md")
    if fmt is not None and fmt not in render.FORMATS:
        raise SchedsweepError(f"unknown format {fmt!r}; choose one of: {', '.join(render.FORMATS)}.")
    if table is not None and (fmt != "csv" or table not in render.TABLES):
        raise SchedsweepError(f"--table selects one table for --format csv: one of {', '.join(render.TABLES)}.")
    folder = Sweep(store.require_sweep(sweep))
    result = folder.collect(last_k)
    _warn_collected(result)
    rep = folder.report(metric, maximize, baseline, r_max, last_k, collected=result, fit_lr=fit_lr, averaged=averaged)
    if fmt is None:
        from schedsweep.results import answer, widths

        out.print("[bold]The answer[/] (the best group: schedules not significantly worse than the winner)")
        for line in answer.sentences(rep):
            out.print(f"  {line}", highlight=False, markup=False)
        out.print()

        for section in render.report_sections(rep):
            for table in widths.fit(section, out.width, render.rich_table):
                out.print(table)
                if not table.show_edge:  # a table fitted to a narrow terminal has no blank edge rows: one line apart
                    out.print()
        for note in rep.notes:
            out.print(f"[dim]note: {note}[/]", highlight=False)
    else:
        text = render.report_text(rep, fmt, table)
        if out_file is None:
            sys.stdout.write(text)
        else:
            _write(out_file, text)
            err.print(f"wrote {out_file}")
    if plots is not None or html is not None:
        _figures_and_page(sweep, result, reporting.collected_runs(sweep, result.summary), rep, plots, html)


def _warn_collected(result: Any) -> None:
    warning = result.warning()
    if warning:
        err.print(f"[yellow]warning:[/] {warning}", highlight=False, soft_wrap=True)


def _figures_and_page(sweep: Path, result: Any, runs: Any, rep: Any, plots_dir: Optional[Path], html_file: Optional[Path]) -> None:
    from schedsweep.results import collect as collecting
    from schedsweep.results import html, plots, render
    from schedsweep.sweep import store
    from schedsweep.results import report as reporting

    best = reporting.best_runs(runs, plots.shown_cells(rep))
    rows = collecting.read_rows(sweep, result.summary, list(best["id"]), plots.CURVE_COLUMNS)
    figures = plots.draw(rep, best, rows)
    if plots_dir is not None:
        try:
            paths = figures.save(plots_dir)
        except OSError as e:
            raise SchedsweepError(f"cannot write figures to '{plots_dir}': {e.strerror or e}.") from None
        err.print(f"wrote {len(paths)} figures to {plots_dir}")
    if html_file is not None:
        config = sweep / store.SWEEP_CONFIG
        counts = result.summary["status"].value_counts()
        summary = f"{len(result.summary)} runs ({', '.join(f'{n} {s}' for s, n in counts.items())}); ranked by {rep.metric}."
        text = html.page(f"schedsweep report: {sweep.resolve().name}", render.report_sections(rep), figures.png,
                         config.read_text(encoding="utf-8") if config.is_file() else "(no sweep.yaml)", summary,
                         [w for w in [result.warning()] if w], rep.notes + figures.notes)
        _write(html_file, text)
        err.print(f"wrote {html_file}")


def _write(path: Path, text: str) -> None:
    """Write a report file through the one atomic writer (mode from the umask, to share); one message on failure."""

    try:
        files.write_text(path, text)
    except OSError as e:
        raise SchedsweepError(f"cannot write '{path}': {e.strerror or e}.") from None


@app.command(context_settings={"allow_extra_args": False})
@friendly
def predict(
    sweep: Path = typer.Argument(..., help="A sweep folder, e.g. results/<name>."),
    more_what_if: Optional[list[str]] = typer.Argument(None, help="More KEY=VALUES selections for --what-if."),
    fit_on: list[str] = typer.Option([], "--fit", help="Runs to fit on, KEY=VALUES (repeatable), e.g. schedule=constant,cosine; default: every finished run."),
    what: list[str] = typer.Option([], "--what-if", help="Predict untrained runs: schedule=NAMES and/or budget=VALUES (beyond the sweep's too)."),
    law: str = typer.Option("mpl", "--law", help="mpl (Multi-Power Law) or tissue (scaling law with LR annealing)."),
    optimize: bool = typer.Option(False, "--optimize", help="Write the schedule that minimises the predicted final loss."),
    budget: str = typer.Option("1.0", "--budget", help="Budget of --optimize (fraction of full_steps, or steps)."),
    name: Optional[str] = typer.Option(None, "--name", help="Name of the --optimize schedule (OUT/schedule/NAME.yaml)."),
    out_file: Optional[Path] = typer.Option(None, "--out", help="Conf folder for the --optimize schedule: OUT/schedule/NAME.yaml, used with --config-dir OUT (default: ./schedules)."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing schedule file; write it even when the validation says the law does not rank the sweep's schedules."),
    plot: Optional[Path] = typer.Option(None, "--plot", help="Figure of predicted and actual curves (default: SWEEP/predicted/curves-LAW.png)."),
    config_dir: Optional[Path] = ConfigDir,
) -> None:
    """Fit a loss-curve law on some runs, predict the others and untrained ones, optimise a schedule."""
    from schedsweep.predict.command import run

    if more_what_if and not what:
        raise SchedsweepError(f"unexpected argument(s) {' '.join(more_what_if)}: KEY=VALUES selections follow --what-if.")
    run(sweep, fit_on, [*what, *(more_what_if or [])], law, optimize, budget, name, out_file, force, plot, config_dir, out)
