"""Terminal views for the CLI: the plan, the progress bar, the counts line and the status table."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

from rich.console import Console, Group
from rich.text import Text

from schedsweep.sweep.status import DIVERGED, DONE, FAILED, FINAL, INTERRUPTED, PENDING, REQUEUED, RUNNING, STATES

COLORS = {DONE: "green", RUNNING: "cyan", REQUEUED: "magenta", INTERRUPTED: "bright_magenta", PENDING: "white",
          FAILED: "red", DIVERGED: "yellow"}


def counts_line(state: Any) -> str:
    return " · ".join(f"[{c}]{s} {state.get(s, 0)}[/]" for s, c in COLORS.items())


def print_plan(out: Console, plan: Any, full: bool) -> None:
    from rich.table import Table

    axes = " × ".join(f"{k} {n}" for k, n in plan.counts.items()) or "no swept keys"
    dup = f" ({plan.duplicates} duplicate grid points planned once)" if plan.duplicates else ""
    out.print(f"plan [bold]{plan.name}[/]: {axes} = [bold]{len(plan.runs)} runs[/]{dup}")
    for what, n in plan.merged.items():  # name what was merged: "linear_twin = linear"
        out.print(f"  {what}: planned once ({n} grid point{'s' if n != 1 else ''})", highlight=False)
    if not full:
        return
    extras = sorted({k for r in plan.runs for k in r.labels["axes"]} - {"schedule", "budget", "optimizer", "task", "optimizer.lr", "seed"})
    table = Table("#", "run id", "task", "optimizer", "schedule", "budget", "steps", "lr", "seed", *extras)
    shown = plan.runs if len(plan.runs) <= 60 else plan.runs[:50]
    for i, run in enumerate(shown):
        lab = run.labels
        table.add_row(
            str(i), run.id, lab["task"], lab["optimizer"], lab["schedule"], str(lab["budget"]), str(lab["steps"]),
            f"{lab['lr']:g}", str(lab["seed"]), *(str(lab["axes"].get(k, "")) for k in extras),
        )
    out.print(table)
    if len(shown) < len(plan.runs):
        out.print(f"... and {len(plan.runs) - len(shown)} more runs")
    out.print("dry run: nothing written, nothing submitted.")


@contextmanager
def progress_bar(console: Console, sweep_dir: Path) -> Iterator[Callable[[Any, dict[str, str]], None]]:
    """A progress bar over the runs that were unfinished when the launch started; yields its update().
    Its ETA counts steps (schedsweep.sweep.eta), not runs: runs of different budgets differ 10x in length."""
    import time

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from schedsweep.sweep import eta

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TextColumn("eta {task.fields[eta]}"), console=console, transient=False) as bar:
        task = bar.add_task("starting", total=None, eta="?")
        estimate = eta.Estimate.of(sweep_dir)  # the runs this launch will train

        def update(state: Any, statuses: dict[str, str]) -> None:
            left = estimate.left_s(statuses, time.monotonic())
            bar.update(task, description=counts_line(state), completed=estimate.finished(statuses),
                       total=len(estimate.queue), eta=eta.clock(left))

        yield update


ATTENTION = (FAILED, INTERRUPTED, RUNNING, REQUEUED)  # the runs `status` lists by default, in this order
SHOWN = 20  # attention rows shown without --all


def status_view(path: Path, sweep_status: Any, show_all: bool = False) -> Group:
    """The counts line, the counts per setting (task, optimizer), then the runs that need attention
    (failed, interrupted, running, requeued: at most SHOWN), or with `show_all` one row per run."""
    from collections import Counter

    from rich.table import Table

    runs = sweep_status.runs
    head = Text.from_markup(f"{path}: {len(runs)} runs · " + counts_line(sweep_status.counts)
                            + (" (all finished)" if sweep_status.finished else ""))
    parts: list[Any] = [head]
    by_setting: dict[tuple[str, str], Counter[str]] = {}
    for view in runs:
        lab = view.record["labels"]
        by_setting.setdefault((lab["task"], lab["optimizer"]), Counter())[view.status.status] += 1
    if len(by_setting) > 1:
        states = [s for s in STATES if any(c[s] for c in by_setting.values())]
        settings = Table("task", "optimizer", *states, title="runs per setting", title_justify="left")
        for (task, optimizer), counts in sorted(by_setting.items()):
            settings.add_row(task, optimizer, *(str(counts[s]) for s in states))
        parts.append(settings)
    shown = runs if show_all else sorted((v for v in runs if v.status.status in ATTENTION),
                                          key=lambda v: ATTENTION.index(v.status.status))
    if shown:
        parts.append(_run_table(path, shown if show_all else shown[:SHOWN]))
        if not show_all and len(shown) > SHOWN:
            parts.append(Text(f"... {len(shown) - SHOWN} more that need attention; --all lists every run"))
    return Group(*parts)


def _run_table(path: Path, views: list[Any]) -> Any:
    from rich.table import Table

    from schedsweep.sweep import store
    from schedsweep.train import metrics

    table = Table("run id", "schedule", "budget", "optimizer", "lr", "seed", "status", "step", "job", "error")
    for view in views:
        st = view.status
        lab = view.record["labels"]
        run = store.run_dir(path, view.record["id"])
        step = st.steps_done if st.status in FINAL or st.status == PENDING else metrics.reached(run / store.METRICS) or 0
        error = (st.error or "").strip().splitlines()[-1:] or [""]
        table.add_row(view.record["id"], lab["schedule"], str(lab["budget"]), lab["optimizer"], f"{lab['lr']:g}",
                      str(lab["seed"]), st.status, str(step), f"{view.job} {view.job_state}".strip(), error[0][:80])
    return table


def print_sharing(out: Console, plan: Any, full: bool) -> None:
    """The shared-prefix line; with `full` (--dry-run) every tree: trunk, fork steps, branches (at most 20 trees)."""
    from schedsweep.sharing import branching

    if not plan.share_prefix:
        out.print("  every run trains from step 0 (share_prefix=false)")
        return
    sharing = branching.plan_trees(plan.runs, True)
    out.print(f"  {sharing.line()}")
    if not full:
        return
    runs = {r.id: r for r in plan.runs}

    def name(run_id: str) -> str:
        lab = runs[run_id].labels
        return f"{run_id} (budget {lab['budget']}, {lab['steps']} steps)"

    for tree in sharing.trees[:20]:
        out.print(f"  trunk {name(tree.trunk)}: forks at {', '.join(map(str, tree.forks))}")
        for b in tree.branches:
            of = "" if b.of == tree.trunk else f" of {b.of}"
            out.print(f"    └ {name(b.run)}: from step {b.step}{of}, trains {b.steps - b.step}")
    if len(sharing.trees) > 20:
        out.print(f"  ... and {len(sharing.trees) - 20} more trees")
