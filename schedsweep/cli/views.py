"""Terminal views for the CLI: the plan, the progress bar, the counts line and the status table."""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

from rich.console import Console, Group
from rich.text import Text

from schedsweep.sweep.status import DIVERGED, DONE, FAILED, INTERRUPTED, PENDING, PRUNED, REQUEUED, RESULTS, RUNNING, STATES

COLORS = {DONE: "green", RUNNING: "cyan", REQUEUED: "magenta", INTERRUPTED: "bright_magenta", PENDING: "white",
          FAILED: "red", DIVERGED: "yellow", PRUNED: "dim"}



def _lr(lr: float | None) -> str:
    """A run's LR for a table: a script that sets its own and has not reported it yet has none."""
    return "-" if lr is None else f"{lr:g}"

def counts_line(state: Any) -> str:
    """The states that have runs, e.g. 'done 3 · running 2 · pending 7' ('pending 0' when there are none)."""
    shown = [(s, c) for s, c in COLORS.items() if state.get(s, 0)] or [(PENDING, COLORS[PENDING])]
    return " · ".join(f"[{c}]{s} {state.get(s, 0)}[/]" for s, c in shown)


def print_plan(out: Console, plan: Any, full: bool) -> None:
    from rich.table import Table

    axes = " × ".join(f"{k} {n}" for k, n in plan.counts.items()) or "no swept keys"
    dup = f" ({plan.duplicates} duplicate grid points planned once)" if plan.duplicates else ""
    out.print(f"plan [bold]{plan.name}[/]: {axes} = [bold]{len(plan.runs)} runs[/]{dup}")
    for what, n in plan.merged.items():  # name what was merged: "linear_twin = linear"
        out.print(f"  {what}: planned once ({n} grid point{'s' if n != 1 else ''})", highlight=False)
    from schedsweep.plan import units

    budgets = units.plan_line(plan.runs)  # budget_unit=tokens|samples: each budget's steps
    if budgets:
        out.print(f"  {budgets}", highlight=False)
    if not full:
        return
    extras = sorted({k for r in plan.runs for k in r.labels["axes"]} - {"schedule", "budget", "optimizer", "task", "optimizer.lr", "seed"})
    table = Table("#", "run id", "task", "optimizer", "schedule", "budget", "steps", "lr", "seed", *extras)
    shown = plan.runs if len(plan.runs) <= 60 else plan.runs[:50]
    for i, run in enumerate(shown):
        lab = run.labels
        table.add_row(
            str(i), run.id, lab["task"], lab["optimizer"], lab["schedule"], str(lab["budget"]), str(lab["steps"]),
            _lr(lab["lr"]), str(lab["seed"]), *(str(lab["axes"].get(k, "")) for k in extras),
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


ATTENTION = (FAILED, INTERRUPTED, RUNNING, REQUEUED)  # the runs `status` lists by default, in this order
SHOWN = 20  # attention rows shown without --all


def status_view(path: Path, sweep_status: Any, width: int = 10_000, show_all: bool = False) -> Group:
    """The counts line; the counts per setting (task, optimizer) when there are several; the runs that need
    attention (failed, interrupted, running, requeued: at most SHOWN), or with `show_all` every run, in a
    table no wider than `width` whose numbers are never cut (results.widths); then each error on its own lines."""
    from collections import Counter

    from schedsweep.results import widths
    from schedsweep.results.render import Section
    from schedsweep.sweep.run_folder import RunFolder
    from schedsweep.train import metrics

    runs = sweep_status.runs
    counts = sweep_status.counts
    if sweep_status.finished and counts.get(INTERRUPTED):
        tail = " (not finished: launch the same command again to resume the interrupted runs)"
    elif sweep_status.finished:
        tail = " (all finished)"
    else:
        tail = ""
    parts: list[Any] = [Text.from_markup(f"{path}: {len(runs)} runs · " + counts_line(counts) + tail)]
    by_setting: dict[tuple[str, str], Counter[str]] = {}
    for view in runs:
        lab = view.record["labels"]
        by_setting.setdefault((lab["task"], lab["optimizer"]), Counter())[view.status.status] += 1
    if len(by_setting) > 1:
        states = [s for s in STATES if any(c[s] for c in by_setting.values())]
        per_setting = Section("runs per setting", "", ["task", "optimizer", *states], left=2)
        per_setting.rows = [[task, optimizer, *(str(c[s]) for s in states)] for (task, optimizer), c in sorted(by_setting.items())]
        parts.extend(widths.fit(per_setting, width, _plain_table))
    shown = list(runs) if show_all else sorted((v for v in runs if v.status.status in ATTENTION),
                                                key=lambda v: ATTENTION.index(v.status.status))
    more = 0 if show_all else max(0, len(shown) - SHOWN)
    shown = shown if show_all else shown[:SHOWN]
    section = Section("", "", ["run id", "schedule", "budget", "optimizer", "lr", "seed", "status", "step", "job"], left=2)
    errors = []
    for view in shown:
        st = view.status
        lab = view.record["labels"]
        run = RunFolder.of(path, view.record["id"])
        # A failed run's status may predate its last metric part (it failed between writes): the furthest step.
        reached = metrics.reached(run.metrics) or 0 if st.status != PENDING else 0
        step = st.steps_done if st.status in RESULTS else max(st.steps_done or 0, reached)
        section.rows.append([view.record["id"], lab["schedule"], str(lab["budget"]), lab["optimizer"],
                             _lr(lab["lr"] if lab["lr"] is not None else st.peak_lr), str(lab["seed"]), st.status, str(step), f"{view.job} {view.job_state}".strip()])
        error = (st.error or "").strip().splitlines()[-1:]
        if error:
            where = st.status if st.status == PRUNED else f"{st.status} at step {step}"
            errors.append(Text(f"{view.record['id']} ({where}): {error[0]}", style=COLORS[st.status]))
    if not any(row[-1] for row in section.rows):  # no Slurm job: no column
        section.headers.pop()
        section.rows = [row[:-1] for row in section.rows]
    if section.rows:
        parts.extend([*widths.fit(section, width, _plain_table), *errors])
    if more:
        parts.append(Text(f"... {more} more that need attention; --all lists every run"))
    return Group(*parts)


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
    from schedsweep.sweep.run_folder import RunFolder

    used = sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.is_dir() else 0
    runs = store.read_plan(path) if (path / store.PLAN).is_file() else []
    done = sum(1 for r in runs if RunFolder.of(path, r["id"]).status().status in RESULTS)
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

    table = Table(*section.headers, title=section.title or None, title_justify="left")
    for row in section.rows:
        table.add_row(*row)
    return table


def print_estimate(out: Console, plan: Any, settings: Any, results: Path) -> None:
    """A dry run's time estimate, from finished runs of the same tasks in the results folder."""
    from schedsweep.executors import cpus, devices
    from schedsweep.sweep import eta

    workers = settings.array_parallelism if settings.kind == "slurm" else (
        settings.parallel(cpus(), len(devices.resolve(settings.gpus))) if settings.kind == "local" else 1)
    if settings.kind == "slurm" and settings.runs_per_job > 1:
        from schedsweep.executors import packed

        packs = packed.plan([r.record() for r in plan.runs], settings)
        limits = sorted({minutes for _, minutes in packs})
        span = f"{limits[0]}" if len(limits) == 1 else f"{limits[0]}-{limits[-1]}"
        at_once = f"{packed.parallel(settings)} at a time, one per GPU" if settings.gpus_per_node > 1 else "one at a time"
        out.print(f"  slurm: {len(plan.runs)} runs in {len(packs)} jobs of up to {settings.runs_per_job} ({at_once}); "
                  f"time limit per job {span} min from its runs' budgets", highlight=False)
    seconds, basis = eta.plan_estimate(list(plan.runs), results, workers)
    if seconds is None:
        out.print(f"  time: no estimate ({basis})", highlight=False)
    else:
        queue = " plus queue waits" if settings.kind == "slurm" else ""
        out.print(f"  time: about {eta.clock(seconds)}{queue} ({basis})", highlight=False)


def print_sharing(out: Console, plan: Any, full: bool) -> None:
    """The shared-prefix line; with `full` (--verbose) why runs could not share, and every tree: trunk, fork
    steps, branches (at most 20 trees)."""
    from schedsweep.sharing import branching

    if not plan.share_prefix:
        out.print("  every run trains from step 0 (share_prefix=false)")
        return
    sharing = branching.plan_trees(plan.runs, True)
    out.print(f"  {sharing.line(why=full)}")
    from schedsweep.sharing import kept

    disk = kept.disk_line(kept.KeepTrunk.parse(plan.keep_trunk), sharing, plan.runs)
    if disk:
        out.print(f"  {disk}", highlight=False)
    if plan.prune_lr:
        from schedsweep.sweep import prune

        out.print(f"  {prune.plan_line(plan.runs, plan.prune_lr, plan.prune_rule)}", highlight=False)
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
