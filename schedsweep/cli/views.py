"""Terminal views for the CLI: the plan, the progress bar, the counts line and the status table."""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

from rich.console import Console, Group
from rich.text import Text

from schedsweep.sweep.status import DIVERGED, DONE, FAILED, INTERRUPTED, PENDING, REQUEUED, RUNNING

COLORS = {DONE: "green", RUNNING: "cyan", REQUEUED: "magenta", INTERRUPTED: "bright_magenta", PENDING: "white",
          FAILED: "red", DIVERGED: "yellow"}


def counts_line(state: Any) -> str:
    """The states that have runs, e.g. 'done 3 · running 2 · pending 7' ('pending 0' when there are none)."""
    shown = [(s, c) for s, c in COLORS.items() if state.get(s, 0)] or [(PENDING, COLORS[PENDING])]
    return " · ".join(f"[{c}]{s} {state.get(s, 0)}[/]" for s, c in shown)


def print_plan(out: Console, plan: Any, full: bool) -> None:
    from rich.table import Table

    axes = " × ".join(f"{k} {n}" for k, n in plan.counts.items()) or "no swept keys"
    dup = f" ({plan.duplicates} duplicate grid points planned once)" if plan.duplicates else ""
    out.print(f"plan [bold]{plan.name}[/]: {axes} = [bold]{len(plan.runs)} runs[/]{dup}")
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

    # The bar takes the width the other columns leave (expand); the elapsed time only where there is room.
    elapsed = [TimeElapsedColumn()] if console.width >= 100 else []
    wide = console.is_terminal  # off a terminal the console is 10,000 columns wide (cli.app._console)
    with Progress(TextColumn("{task.description}"), BarColumn(bar_width=None if wide else 40), MofNCompleteColumn(),
                  *elapsed, TextColumn("eta {task.fields[eta]}"), console=console, transient=False, expand=wide) as bar:
        task = bar.add_task("starting", total=None, eta="?")
        estimate = eta.Estimate.of(sweep_dir)  # the runs this launch will train

        def update(state: Any, statuses: dict[str, str]) -> None:
            left = estimate.left_s(statuses, time.monotonic())
            bar.update(task, description=counts_line(state), completed=estimate.finished(statuses),
                       total=len(estimate.queue), eta=eta.clock(left))

        yield update


def status_view(path: Path, sweep_status: Any, width: int = 10_000) -> Group:
    """The counts line, then one row per run that is not done (its step, its Slurm job), then each error
    on its own lines: a table no wider than `width` (results.widths) whose numbers are never cut."""
    from schedsweep.results import widths
    from schedsweep.results.render import Section
    from schedsweep.train import metrics
    from schedsweep.sweep import store

    section = Section("", "", ["run id", "schedule", "budget", "optimizer", "lr", "seed", "status", "step", "job"], left=2)
    errors = []
    for view in sweep_status.runs:
        st = view.status
        if st.status == DONE:
            continue
        lab = view.record["labels"]
        run = store.run_dir(path, view.record["id"])
        # A failed run's status may predate its last metric part (it failed between writes): the furthest step.
        reached = metrics.reached(run / store.METRICS) or 0
        step = st.steps_done if st.status in (DONE, DIVERGED) else max(st.steps_done or 0, reached)
        section.rows.append([view.record["id"], lab["schedule"], str(lab["budget"]), lab["optimizer"], f"{lab['lr']:g}",
                             str(lab["seed"]), st.status, str(step), f"{view.job} {view.job_state}".strip()])
        error = (st.error or "").strip().splitlines()[-1:]
        if error:
            errors.append(Text(f"{view.record['id']} ({st.status} at step {step}): {error[0]}", style=COLORS[st.status]))
    if not any(row[-1] for row in section.rows):  # no Slurm job: no column
        section.headers.pop()
        section.rows = [row[:-1] for row in section.rows]
    counts = sweep_status.counts
    if sweep_status.finished and counts.get(INTERRUPTED):
        tail = " (not finished: launch the same command again to resume the interrupted runs)"
    elif sweep_status.finished:
        tail = " (all finished)"
    else:
        tail = ""
    head = Text.from_markup(f"{path}: {len(sweep_status.runs)} runs · " + counts_line(counts) + tail)
    if not section.rows:
        return Group(head)
    return Group(head, *widths.fit(section, width, _plain_table), *errors)


def print_failures(out: Console, path: Path, sweep_status: Any, new: int, argv: list[str]) -> None:
    """After a launch with failures: how many, the first error, and the commands to see and retry them."""
    import shlex

    failed = [v for v in sweep_status.runs if v.status.status == FAILED]
    out.print(f"[red]{new} run(s) failed in this launch[/] ({len(failed)} failed in the sweep).", highlight=False)
    if failed:
        first = failed[0]
        error = (first.status.error or "no error recorded").strip().splitlines()[-1]
        out.print(f"first error, run {first.record['id']} at step {first.status.steps_done}: {error}",
                  highlight=False, markup=False)
    retry = [*argv, "--retry-failed"] if "--retry-failed" not in argv else argv
    out.print(f"see them: schedsweep status {shlex.quote(str(path))}", highlight=False, markup=False, soft_wrap=True)
    out.print(f"retry them: schedsweep {shlex.join(retry)}", highlight=False, markup=False, soft_wrap=True)


def disk_full(path: Path, error: OSError) -> str:
    """What a launch that ran out of disk says: the folder, what the sweep takes, and that a relaunch resumes."""
    import shutil

    from schedsweep.sweep import store

    used = sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.is_dir() else 0
    runs = store.read_plan(path) if (path / store.PLAN).is_file() else []
    done = sum(1 for r in runs if store.read_status(store.run_dir(path, r["id"])).status in (DONE, DIVERGED))
    free = shutil.disk_usage(path if path.is_dir() else path.parent).free if path.parent.is_dir() else 0
    need = ""
    if done and len(runs) > done:
        need = f"; at about {used / done / 2**20:.2g} MiB per finished run, the {len(runs) - done} others need about " \
               f"{used / done * (len(runs) - done) / 2**20:.2g} MiB more"
    return (f"the disk holding '{path}' is full ({os.strerror(error.errno)}): the launch stopped. The sweep takes "
            f"{used / 2**20:.2g} MiB there ({done} of {len(runs)} runs finished), {free / 2**20:.2g} MiB are free{need}. "
            "Nothing finished is lost: free some space and run "
            "the same command again; it resumes every unfinished run from its checkpoint.")


def _plain_table(section: Any) -> Any:
    from rich.table import Table

    table = Table(*section.headers)
    for row in section.rows:
        table.add_row(*row)
    return table


def print_sharing(out: Console, plan: Any, full: bool) -> None:
    """The shared-prefix line; with `full` (--verbose) why runs could not share, and every tree: trunk, fork
    steps, branches (at most 20 trees)."""
    from schedsweep.sharing import branching

    if not plan.share_prefix:
        out.print("  every run trains from step 0 (share_prefix=false)")
        return
    sharing = branching.plan_trees(plan.runs, True)
    out.print(f"  {sharing.line(why=full)}")
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
