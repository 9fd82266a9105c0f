"""What `schedsweep predict` shows: tables of predicted vs actual results and a figure of the curves."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from schedsweep import files
from schedsweep.predict.fitting import BAD_FIT
from schedsweep.predict.sweep import Group, rankings
from schedsweep.predict.validate import RANKS, degenerate


def _f(x: Any, digits: int = 4) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}g}"


def show(console: Console, groups: list[Group]) -> None:
    for group in groups:
        law = group.law
        bad = not law.fit_error <= BAD_FIT
        console.print(f"\n[bold]{group.label}[/]: law {law.kind} fitted on {int(group.runs['fitted'].sum())} runs "
                      f"({law.fitted} points) in {law.seconds:.1f} s; fit error mean {law.fit_error:.2%}, worst {law.worst_fit_error:.2%}"
                      + (" [bold red](fits badly: predictions below are not to be trusted)[/]" if bad else ""))
        for note in law.notes:
            console.print(f"[yellow]warning:[/] {note}", highlight=False)
        console.print("parameters: " + ", ".join(f"{k}={v:.4g}" for k, v in law.params.items()), highlight=False)
        for problem in degenerate(law):
            console.print(f"[bold yellow]degenerate parameter:[/] {problem}: the law fits these curves by an artefact; "
                          "its predictions away from them are not to be trusted", highlight=False)
        if group.validation is not None:
            style = "green" if group.validation.verdict == RANKS else "bold red" if not group.validation.ranks else "yellow"
            console.print(f"[{style}]{group.validation.line()}[/]", highlight=False)
        held = group.runs[~group.runs["fitted"]]
        if held.empty:
            console.print("every run of this setting was fitted: nothing held out to compare with.")
        else:
            table = Table("schedule", "budget", "steps", "seed", "actual final", "predicted final", "rel. error", "curve error",
                          title="runs not used for fitting: final eval loss")
            for r in held.sort_values(["steps", "predicted"]).itertuples():
                table.add_row(r.schedule, str(r.budget), str(r.steps), str(r.seed), _f(r.actual), _f(r.predicted),
                              f"{r.rel_error:.2%}", f"{r.curve_error:.2%}")
            console.print(table)
            console.print(f"held-out final loss: mean relative error {held['rel_error'].mean():.2%}, worst {held['rel_error'].max():.2%}")
        ranks = rankings(group)
        if not ranks.empty:
            table = Table("budget", "steps", "actual order (best first)", "predicted order", "Spearman", "top-1",
                          title="rankings per budget (all runs of the setting, mean over seeds)")
            for r in ranks.itertuples():
                table.add_row(str(r.budget), str(r.steps), r.actual_order, r.predicted_order, _f(r.spearman, 3), "yes" if r.top1 else "no")
            console.print(table)
        if group.what_if is not None:
            table = Table("budget", "steps", "rank", "schedule", "predicted final", "note", title="what-if runs (never trained)")
            for r in group.what_if.itertuples():
                table.add_row(str(r.budget), str(r.steps), str(r.rank), r.schedule, _f(r.predicted), r.outside)
            console.print(table)
            if group.what_if["outside"].astype(bool).any():
                console.print("[bold yellow]what-ifs outside the fitted budgets are extrapolations[/]: the law was not "
                              f"checked there; every what-if is at the group's peak LR ({group.key['lr']}).", highlight=False)


def plot(groups: list[Group], out: Path) -> list[tuple[float, float]]:
    """One row of panels per group, one panel per budget: actual curves solid, predicted dashed; the y-axis
    spans the actual curves (a prediction off the scale leaves the panel). Each panel's y-limits, in order."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    budgets = [sorted(set(g.runs["steps"])) for g in groups]
    cols = max(len(b) for b in budgets)
    fig, axes = plt.subplots(len(groups), cols, figsize=(4.5 * cols, 3.6 * len(groups)), squeeze=False)
    schedules = sorted({s for g in groups for s in g.runs["schedule"]})
    colors = {s: f"C{i % 10}" for i, s in enumerate(schedules)}
    for row, (group, steps_list) in enumerate(zip(groups, budgets)):
        for col, steps in enumerate(steps_list):
            ax = axes[row, col]
            for r in group.runs[group.runs["steps"] == steps].itertuples():
                _, at, loss, pred = group.curves[r.id]
                ax.plot(at, loss, color=colors[r.schedule], lw=1.2, label=f"{r.schedule}{' (fitted)' if r.fitted else ''}")
                ax.plot(range(len(pred)), pred, color=colors[r.schedule], lw=1.2, ls="--")
            observed = np.concatenate([group.curves[i][2] for i in group.runs.loc[group.runs["steps"] == steps, "id"]])
            if len(observed):  # the data's range: a prediction that runs off stays off the axes, not flattening the curves
                low, high = float(observed.min()), float(observed.max())
                pad = 0.05 * (high - low) or 0.05 * abs(high) or 0.1
                ax.set_ylim(low - pad, high + pad)
            ax.set_title(f"{group.label}\n{steps} steps (dashed: predicted)", fontsize=8)
            ax.set_xlabel("step")
            ax.set_ylabel("eval loss")
            ax.legend(fontsize=7)
        for col in range(len(steps_list), cols):
            axes[row, col].axis("off")
    limits = [tuple(map(float, ax.get_ylim())) for ax in axes.ravel() if ax.axison]
    fig.tight_layout()
    with files.replacing(out) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)
    return limits  # type: ignore[return-value]
