"""Terminal views for the CLI: the plan, the progress bar, the counts line and the status table."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

from rich.console import Console, Group
from rich.text import Text

from schedsweep.sweep.status import DIVERGED, DONE, FAILED, FINAL, INTERRUPTED, PENDING, REQUEUED, RUNNING

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


def status_view(path: Path, sweep_status: Any) -> Group:
    """The counts line, then one row per run that is not done (with its step, Slurm job and error)."""
    from rich.table import Table

    from schedsweep.train import metrics
    from schedsweep.sweep import store

    table = Table("run id", "schedule", "budget", "optimizer", "lr", "seed", "status", "step", "job", "error")
    for view in sweep_status.runs:
        st = view.status
        if st.status == DONE:
            continue
        lab = view.record["labels"]
        run = store.run_dir(path, view.record["id"])
        step = st.steps_done if st.status in FINAL else metrics.reached(run / store.METRICS) or 0
        error = (st.error or "").strip().splitlines()[-1:] or [""]
        table.add_row(view.record["id"], lab["schedule"], str(lab["budget"]), lab["optimizer"], f"{lab['lr']:g}",
                      str(lab["seed"]), st.status, str(step), f"{view.job} {view.job_state}".strip(), error[0][:80])
    head = Text.from_markup(f"{path}: {len(sweep_status.runs)} runs · " + counts_line(sweep_status.counts)
                            + (" (all finished)" if sweep_status.finished else ""))
    return Group(head, table) if table.row_count else Group(head)


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
