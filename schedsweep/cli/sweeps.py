"""The sweep verbs: launch, status, cancel, run (one run of an sbatch array), export-sbatch, data."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Optional

import typer

from schedsweep import files
from schedsweep.cli import views
from schedsweep.cli.app import ConfigDir, app, err, friendly, out
from schedsweep.errors import SchedsweepError
from schedsweep.sweep.status import FAILED, SETTLED


@app.command(context_settings={"allow_extra_args": False})
@friendly
def launch(
    overrides: Optional[list[str]] = typer.Argument(None, help="Hydra overrides: key=value, key=a,b (sweep), range(), +key=v."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show the plan (counts per axis, the runs); run nothing."),
    name: Optional[str] = typer.Option(None, "--name", help="Sweep name (default: task, run count and a digest of the plan)."),
    results: Path = typer.Option(Path("results"), "--results", help="Folder that holds the sweeps."),
    config_dir: Optional[Path] = ConfigDir,
    config_name: str = typer.Option("config", "--config-name", help="Primary config file (without .yaml)."),
    wait: Optional[bool] = typer.Option(
        None, "--wait/--no-wait", help="Follow the runs with a progress bar, or return at once (default: wait locally, return on Slurm)."
    ),
    retry_failed: bool = typer.Option(False, "--retry-failed", help="Run failed runs again, from their checkpoints (done and diverged runs are kept)."),
    no_submit: bool = typer.Option(False, "--no-submit", help="Write the sweep folder but run nothing (e.g. for export-sbatch)."),
    verbose: bool = typer.Option(False, "-v", "--verbose", help="Shared prefixes in full: why runs cannot share, every branch tree."),
    reuse_runs: bool = typer.Option(True, "--reuse/--no-reuse", help="Link in runs other sweeps of --results finished (same run ids) instead of training them again."),
    extend_lr: bool = typer.Option(False, "--extend-lr", help="After the runs, give every (setting, budget, schedule) whose best LR is at an edge of its LRs the next grid point beyond it (diverged = too high), and train those; round after round."),
    extend_rounds: int = typer.Option(3, "--extend-rounds", min=1, help="At most this many --extend-lr rounds per launch."),
    rerun_stale: bool = typer.Option(False, "--rerun-stale", help="Runs trained with other task code than now (a changed task module or package version): train them again."),
    keep_stale: bool = typer.Option(False, "--keep-stale", help="Runs trained with other task code than now: keep their results (the report notes them)."),
) -> None:
    """Plan the grid from conf/ and the overrides, then train every run not already done."""
    from schedsweep.executors.settings import parse
    from schedsweep.sweep.api import Sweep

    if name is not None and (not name or "/" in name or name.startswith(".")):
        raise SchedsweepError(f"--name {name!r} must be a plain folder name (no '/', not starting with '.').")
    # A dry run skips importing tasks and optimizers (torch, ~3 s) unless the optimizer was overridden:
    # then its values are checked as a launch would (betas=[2,3] is refused now, not after the plan is shown).
    touches_optimizer = any(o.lstrip("+~").startswith("optimizer") for o in overrides or [])
    plan = Sweep.plan(overrides or [], config_dir=config_dir, config_name=config_name, name=name,
                      check_imports=not dry_run or touches_optimizer)
    settings = parse(plan.executor)
    views.print_plan(out, plan, dry_run)
    views.print_sharing(out, plan, verbose)
    if extend_lr:
        out.print(f"--extend-lr: then up to {extend_rounds} round(s) of one more LR beyond the edge for each "
                  "(setting, budget, schedule) whose best LR is at an edge of its LRs")
    if dry_run:
        views.print_estimate(out, plan, settings, results)
        return
    _settle_stale(results / plan.name, rerun_stale, keep_stale)
    try:
        sweep, prepared = _create(plan, results, retry_failed, reuse_runs)
        if no_submit:
            out.print(f"nothing submitted (--no-submit). Plain sbatch script: schedsweep export-sbatch {sweep.path}")
            return
        if not plan.prune_lr:
            from schedsweep.sharing import holds

            holds.clear_all(sweep.path)  # an earlier launch's prune_lr holds: this launch trains every run to its end
        final = (_execute_pruned(sweep, settings, wait, plan.prune_lr, plan.prune_rule) if plan.prune_lr
                 else _execute(sweep, settings, wait))
        if plan.refinement is not None:
            final = _refinement_stage(plan, sweep, overrides or [], config_dir, config_name, settings, wait, retry_failed) or final
        if extend_lr:
            final = _extend_lr(plan, sweep, settings, wait, retry_failed, final, extend_rounds)
    except KeyboardInterrupt:
        err.print("interrupted: running runs were checkpointed and stopped; relaunch the same command to resume them.")
        raise typer.Exit(130) from None
    except OSError as e:  # a full disk: one message, not a traceback from whichever writer hit it first
        from schedsweep.sweep import store

        if not store.disk_full(e):
            raise
        raise SchedsweepError(views.disk_full(results / plan.name, e)) from None
    if final is None:
        return
    out.print(views.counts_line(final))
    out.print(f"next: schedsweep report {sweep.path}")
    if final.get(FAILED, 0) > prepared.skipped.get(FAILED, 0):  # runs that failed in this launch
        views.print_failures(out, sweep.path, sweep.status(), final[FAILED] - prepared.skipped.get(FAILED, 0), sys.argv[1:])
        raise typer.Exit(1)


def _settle_stale(sweep_dir: Path, rerun: bool, keep: bool) -> None:
    """Before anything trains: runs of an existing sweep trained with other code stop the launch, unless
    --rerun-stale or --keep-stale says what to do with them (schedsweep.sweep.stale)."""
    from schedsweep.sweep import stale, store

    if rerun and keep:
        raise SchedsweepError("--rerun-stale and --keep-stale exclude each other: choose one.")
    if not store.is_sweep(sweep_dir):
        return
    found = stale.settle(sweep_dir, store.read_plan(sweep_dir), stale.RERUN if rerun else stale.KEEP if keep else stale.STOP)
    if found:
        what = "reset: they train again with the current code" if rerun else "kept (the report notes them)"
        out.print(f"{len(found)} run(s) trained with other code: {', '.join(s.run for s in found[:8])}"
                  f"{' ...' if len(found) > 8 else ''} {what}")


def _create(plan: Any, results: Path, retry_failed: bool, reuse_runs: bool = True) -> Any:
    from schedsweep.plan.variants import added_settings
    from schedsweep.sweep.api import Sweep

    if differ := added_settings(results / plan.name, plan.runs):
        out.print(f"this launch adds runs that differ in: {', '.join(differ)} (the report ranks each value apart)")
    sweep, prepared = Sweep.create(plan, results, retry_failed=retry_failed, reuse_runs=reuse_runs, argv=sys.argv[1:])
    skipped = ", ".join(f"{n} {s}" for s, n in sorted(prepared.skipped.items()))
    out.print(
        f"sweep [bold]{sweep.path}[/]: {prepared.planned} runs planned"
        + (f"; skipping {skipped}" if skipped else "")
        + (" (--retry-failed re-runs failed ones)" if prepared.skipped.get(FAILED) else "")
        + f"; {prepared.to_run} to run."
    )
    if prepared.kept.line():
        out.print(f"  {prepared.kept.line()}")
    if prepared.reused:
        out.print(f"  {prepared.reused}", highlight=False)
    return sweep, prepared


def _execute(sweep: Any, settings: Any, wait: Optional[bool], hold: Any = ()) -> Any:
    """Run or submit every unfinished run (but those in `hold`); the final counts, or None when not waiting for them."""
    if settings.kind == "slurm":
        sweep.launch(settings, wait=False, hold=hold)
        out.print(sweep.queued().line())
        if not wait:
            out.print(f"follow with: schedsweep status {sweep.path} --watch; cancel with: schedsweep cancel {sweep.path}")
            return None
        with views.progress_bar(err, sweep.path) as update:
            return sweep.follow(update)
    if wait is False:
        pid = sweep.spawn()
        out.print(f"running in the background (pid {pid}); follow with: schedsweep status {sweep.path}")
        return None
    with views.progress_bar(err, sweep.path) as update:
        return sweep.launch(settings, progress=update, hold=hold)


def _execute_pruned(sweep: Any, settings: Any, wait: Optional[bool], eta: int, rule: str) -> Any:
    """prune_lr (schedsweep.sweep.prune): decide what the settled rungs allow, train what is not held, again."""
    from schedsweep.sweep import prune

    if settings.kind != "slurm" and wait is False:
        raise SchedsweepError("prune_lr decides between budgets in the launching process: launch it locally without --no-wait.")
    final: Any = None
    while True:
        runs, metric = sweep.ranked_runs()
        # Shared prefixes: a held trunk trains up to the fork its smaller budgets need (prune.limit).
        held, trains, stopping = prune.limit(sweep.path, runs, prune.decide(sweep.path, runs, metric, eta, rule))
        if held and not trains:  # the rungs below them cannot settle (failed runs)
            out.print(f"prune_lr: {len(held)} run(s) wait on smaller budgets with failed runs; retry those with --retry-failed.")
            return final
        final = _execute(sweep, settings, wait, held)
        if not (held or stopping) or final is None:
            if held or stopping:
                out.print("prune_lr: the larger budgets are decided once these runs have finished; run this same command again then.")
            return final


def _refinement_stage(plan: Any, sweep: Any, overrides: list[str], config_dir: Optional[Path], config_name: str,
                      settings: Any, wait: Optional[bool], retry_failed: bool) -> Any:
    """Stage 2 of the refinement study, once stage 1 has finished (now, or at a later relaunch)."""
    stage_two = sweep.refinement_stage(overrides, plan.refinement, config_dir=config_dir, config_name=config_name,
                                       retry_failed=retry_failed)
    if stage_two is None:
        out.print("refinement: stage 2 is planned once stage 1 has finished; run this same command again then.")
        return None
    for added in stage_two:
        out.print(f"refinement stage 2: [bold]{added.runs[0].labels['schedule']}[/] "
                  f"({added.runs[0].spec['schedule']['shape']}, see {sweep.path / 'refined'})")
    return _execute(sweep, settings, wait)


def _extend_lr(plan: Any, sweep: Any, settings: Any, wait: Optional[bool], retry_failed: bool, final: Any,
               rounds: int) -> Any:
    """`--extend-lr` (schedsweep.sweep.extend): plan and train a round of edge LRs until none is at an edge."""
    import dataclasses

    from schedsweep.sweep import extend

    for number in range(1, rounds + 1):
        if final is None:
            out.print("--extend-lr: the grid is extended once these runs have finished; run this same command again then.")
            return None
        found = extend.edges(*sweep.ranked_runs())
        if not found:
            out.print(f"--extend-lr: no best LR at an edge of its grid{f' after {number - 1} round(s)' if number > 1 else ''}.")
            return final
        added = extend.plan_runs(sweep.path, found)
        if not added:  # the next LRs are planned already: pruned by prune_lr (or failed)
            out.print(f"--extend-lr: the next LR of each of the {len(found)} cell(s) at an edge is in the sweep already "
                      "(pruned by prune_lr, or not finished): nothing to add.")
            return final
        n = extend.log_round(sweep.path, found, added)
        ours = f" (the sweep's round {n})" if n != number else ""
        out.print(f"--extend-lr round {number}{ours}: {len(added)} run(s) for {len(found)} cell(s) at an edge:")
        for edge in found:
            out.print(f"  {edge.line()}", highlight=False)
        sweep, _ = _create(dataclasses.replace(plan, runs=tuple(added)), sweep.path.parent, retry_failed)
        final = _execute(sweep, settings, wait)
    left = extend.edges(*sweep.ranked_runs()) if final is not None else []
    if left:
        out.print(f"--extend-lr: stopped at the round limit ({rounds}); {len(left)} cell(s) still at an edge: "
                  + "; ".join(e.line() for e in left) + ". Relaunch to go on.", highlight=False)
    return final


@app.command()
@friendly
def status(
    sweep: Path = typer.Argument(..., help="A sweep folder, e.g. results/<name>."),
    watch: bool = typer.Option(False, "--watch", help="Refresh every few seconds until every run has finished."),
    interval: float = typer.Option(5.0, "--interval", min=1.0, help="Seconds between refreshes with --watch."),
    show_all: bool = typer.Option(False, "--all", help="One row per run (by default only those that need attention)."),
) -> None:
    """Counts of runs per state and per setting, then the runs that need attention (failed, interrupted, running)."""
    import time

    from rich.live import Live

    from schedsweep.sweep import store
    from schedsweep.sweep.api import Sweep

    folder = Sweep(store.require_sweep(sweep))
    if not watch:
        out.print(views.status_view(folder.path, folder.status(), out.width, show_all))
        return
    with Live(console=out, auto_refresh=False) as live:
        while True:
            state = folder.status()
            live.update(views.status_view(folder.path, state, out.width, show_all), refresh=True)
            if state.finished:
                return
            time.sleep(interval)


@app.command("export-sbatch")
@friendly
def export_sbatch(
    sweep: Path = typer.Argument(..., help="A sweep folder planned with executor=slurm (launch ... --no-submit)."),
    template: Optional[Path] = typer.Option(None, "--template", help="Your own copy of sbatch_templates/array.sbatch."),
    out_file: Optional[Path] = typer.Option(None, "--out", help="Write the script here instead of stdout."),
    max_array_size: Optional[int] = typer.Option(None, "--max-array-size", min=1, help="Default: the cluster's (scontrol)."),
) -> None:
    """A plain sbatch array script: task i runs `schedsweep run SWEEP --index OFFSET+i`, one array per MaxArraySize runs."""
    from schedsweep.executors import sbatch, squeue
    from schedsweep.sweep import store

    from schedsweep.sweep.api import Sweep

    executor = Sweep(store.require_sweep(sweep)).executor_settings()
    if executor.kind != "slurm":
        raise SchedsweepError(
            f"sweep '{sweep}' was planned with executor={executor.kind}; export-sbatch needs the Slurm settings: "
            "plan it with `schedsweep launch executor=slurm ... --no-submit`."
        )
    text, chunks = sbatch.render(sweep, executor, max_array_size or squeue.max_array_size(), template)
    sbatch.prepare_all(sweep)
    commands = "\n".join(sbatch.submit_commands(chunks, str(out_file or "SCRIPT")))
    if out_file is None:
        sys.stdout.write(text)
        if len(chunks) > 1:  # stdout carries the script, so the lines go to stderr
            err.print(f"submit the script once per array (MaxArraySize):\n{commands}", soft_wrap=True, markup=False)
    else:
        files.write_text(out_file, text)
        out.print(f"wrote {out_file}; submit it with:\n{commands}", soft_wrap=True, markup=False, highlight=False)


@app.command("run")
@friendly
def run_index(
    sweep: Path = typer.Argument(..., help="A sweep folder."),
    index: int = typer.Option(..., "--index", min=0, help="Which run of plan.jsonl (0-based), e.g. $SLURM_ARRAY_TASK_ID."),
    max_requeues: int = typer.Option(0, "--max-requeues", min=0, help="Requeue this Slurm job after a time-limit signal at most this often."),
) -> None:
    """Train one run of a sweep in this process (what each task of an exported sbatch array does).
    A run that another live process holds is left alone (exit 0)."""
    from schedsweep import executors
    from schedsweep.sweep import store
    from schedsweep.sweep.run_folder import RunFolder
    from schedsweep.train import run as train

    records = store.read_plan(store.require_sweep(sweep))
    if index >= len(records):
        raise SchedsweepError(f"--index {index} is out of range: the sweep '{sweep}' has {len(records)} runs (0..{len(records) - 1}).")
    record = records[index]
    folder = RunFolder.of(sweep, record["id"])
    if folder.status().status in SETTLED:
        out.print(f"run {record['id']} is already {folder.status().status}.")
        return
    if not folder.has_record():
        folder.write_record(record)
    status = train.main(str(folder.path), executors.cpus(), max_requeues)
    out.print(f"run {record['id']}: {'left alone: another process trains it' if status == train.BUSY else status}")
    if status == FAILED:
        raise typer.Exit(1)


@app.command("prune-checkpoints")
@friendly
def prune_checkpoints(sweep: Path = typer.Argument(..., help="A sweep folder, e.g. results/<name>.")) -> None:
    """Remove the checkpoints kept for later launches (keep_trunk): every fork no unfinished branch waits for."""
    from schedsweep.sharing.kept import human_bytes
    from schedsweep.sweep import store
    from schedsweep.sweep.api import Sweep

    removed, freed = Sweep(store.require_sweep(sweep)).prune_checkpoints()
    out.print(f"removed {removed} kept checkpoint(s), {human_bytes(freed)} freed." if removed else "no kept checkpoint to remove.")


@app.command()
@friendly
def cancel(sweep: Path = typer.Argument(..., help="A sweep folder, e.g. results/<name>.")) -> None:
    """Cancel the sweep's pending and running Slurm jobs: one scancel per job array."""
    from schedsweep.sweep.api import Sweep

    cancelled = Sweep(sweep).cancel()
    shown = ", ".join(cancelled) if len(cancelled) <= 4 else f"{cancelled[0]} .. {cancelled[-1]}"
    out.print(f"cancelled {len(cancelled)} job array(s): {shown}" if cancelled else "nothing to cancel.")


@app.command()
@friendly
def data(
    text: Path = typer.Argument(..., help="A UTF-8 text file."),
    out_file: Path = typer.Argument(..., help="The token file to write, e.g. corpus.bin."),
) -> None:
    """Byte-tokenize a text file into a uint16 token file for task=gpt (nanoGPT's train.bin format, vocab 256)."""
    from schedsweep.tasks import gpt

    n = gpt.write_token_file(text, out_file)
    out.print(f"wrote {n} tokens (uint16, vocab {gpt.BYTES}) to {out_file}; train on it with "
              f"task=gpt task.data={out_file} task.vocab_size={gpt.BYTES}", soft_wrap=True, highlight=False)
