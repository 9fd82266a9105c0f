"""The training loop: one run, read from its folder, metrics to Parquet, a status marker at the end.

`main(run_dir)` is the one execution seam: the local executor submits it by reference with a path
string, the sbatch template and the debug executor call it directly; a Slurm job runs `segment`, which
is main() that may stop at a fork step (shared prefixes: schedsweep.sharing.segments) and fails its job when it
does not get there. It never raises:
a crash is a `failed` status with the traceback, a non-finite loss is `diverged`.

One writer per run: main() first takes the run's claim (schedsweep.sweep.claims); when another live
process holds it, main() leaves the run alone and returns BUSY.

Interruptions: a signal (SIGUSR2 before the Slurm time limit or at preemption, SIGTERM at requeue
or cancel, SIGINT from Ctrl-C) only sets a flag; the loop checks it at the next step boundary (all
ranks agree), writes a checkpoint, flushes the metrics and stops; on SIGUSR2 under Slurm it requeues
its own job; outside Slurm the run is `interrupted` and the next launch resumes it. Periodic
checkpoints bound what a hard kill loses. A run that finds a checkpoint resumes from it.

Adaptive schedules (AutoLRS): before a kept update the loop lets a controller run trials that rewind
(schedsweep.train.trials); they are paid from the budget (`trial_steps`), and a stop during them checkpoints
the controller's finished trials and returns requeued.
"""

from __future__ import annotations

import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import traceback
from contextlib import contextmanager, nullcontext
from dataclasses import replace
from pathlib import Path
from typing import Any, Iterator

import torch

from schedsweep import files
from schedsweep import schedules, tasks
from schedsweep.train import averaging, checkpoint, init_from, recorder, distributed, groups, loop, optimizers, pinned, script, trials
from schedsweep.sweep import claims, store
from schedsweep.sweep.run_folder import RunFolder
from schedsweep.sharing import forks, holds
from schedsweep.train.distributed import Dist
from schedsweep.train.metrics import MetricsWriter, part_files, truncate_parts
from schedsweep.train.metrics import reached as metrics_reached
from schedsweep.sweep.status import DIVERGED, DONE, FAILED, INTERRUPTED, PENDING, REQUEUED, RUNNING, SETTLED, stopped_by


BUSY = claims.BUSY
SIGNALS = (signal.SIGUSR2, signal.SIGTERM, signal.SIGINT)  # SIGINT: Ctrl-C, and submitit's local cancel


class StopFlag:
    """Set by a signal handler, read by the loop at step boundaries: the handler does nothing else."""

    def __init__(self) -> None:
        self.signal: int | None = None

    def __call__(self, signum: int, frame: Any) -> None:
        # Ctrl-C reaches every process of the terminal's group, and the launcher then stops its workers with
        # SIGTERM: the SIGINT is what happened, so a later signal does not overwrite it.
        if self.signal != signal.SIGINT:
            self.signal = signum


@contextmanager
def stop_on_signals() -> Iterator[StopFlag]:
    flag = StopFlag()
    previous = {}
    for sig in SIGNALS:
        try:
            previous[sig] = signal.signal(sig, flag)
        except ValueError:  # not the main thread: nobody can signal this run
            pass
    try:
        yield flag
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def main(run_dir: str, threads: int | None = None, max_requeues: int = 0, until: int | None = None) -> str:
    """Claim, train (or resume) the run in `run_dir` and return its status; BUSY, touching nothing,
    when another live process holds the run's claim (see schedsweep.sweep.claims).

    `until` (a fork step): train only up to it, keep the fork and stop as `pending` with a checkpoint
    there, for the run's next segment (schedsweep.sharing.segments) to resume. A hold (prune_lr's, on a
    trunk whose larger budgets are not decided yet: schedsweep.sharing.holds) stops it the same way.
    """
    path = Path(run_dir)
    until = holds.until(path, until)
    if threads:
        torch.set_num_threads(threads)
    with stop_on_signals() as stop:  # from the start: a signal before the first step still checkpoints cleanly
        return _claimed(path, max_requeues, stop, until)


class SegmentFailed(Exception):
    """A Slurm segment job that did not reach its fork step: the job fails, so Slurm cancels its dependents."""


def segment(run_dir: str, threads: int | None = None, max_requeues: int = 0, until: int | None = None) -> str:
    """What a Slurm job runs: main(), raising SegmentFailed when a segment (`until` set) ends anywhere
    but at its fork step (failed, or left alone), so that the job fails and what waits on it never
    starts. A requeued segment has not ended: its job runs again. A run already done or diverged
    leaves nothing to wait for (a branch without its fork trains from step 0: the same run)."""
    from schedsweep.executors import snapshot

    snapshot.enter_launch_dir()  # started in the launch's code snapshot; data paths resolve from the launch folder
    status = main(run_dir, threads, max_requeues, until)
    # The run's state is on disk: a time-limit warning (SIGUSR2) that lands while this process exits must
    # neither kill it (the job would fail, cancelling what waits on it) nor make submitit requeue it.
    signal.signal(signal.SIGUSR2, signal.SIG_IGN)
    if until is None or status in (PENDING, REQUEUED, *SETTLED):
        return status
    raise SegmentFailed(f"run {Path(run_dir).name} did not reach its fork step {until}: {status}")


def _claimed(path: Path, max_requeues: int, stop: StopFlag, until: int | None = None) -> str:
    dist = distributed.setup()
    claim, holder = claims.acquire(path) if dist.main else (None, None)
    if dist.any(dist.main and claim is None):  # every rank leaves together
        if holder is not None:
            where = f"Slurm job {holder.job}" if holder.job else f"{holder.host} pid {holder.pid}"
            print(f"run {path.name} is being trained by {where} (since {holder.start}); left alone", file=sys.stderr)
        distributed.teardown(dist)
        return RunFolder(path).status().status if dist.main and holder is None else BUSY  # done by an earlier writer
    status = None
    try:
        with claims.heartbeat(path, claim) if claim is not None else nullcontext():
            status = _attempt(path, dist, max_requeues, stop, until)
    finally:
        # A requeued Slurm job keeps its claim: the same job id takes it back when it restarts.
        if claim is not None and not (status is not None and status.status == REQUEUED):
            claims.release(path, claim)
    distributed.teardown(dist)
    return status.status


def _attempt(path: Path, dist: Dist, max_requeues: int, stop: StopFlag, until: int | None = None) -> store.RunStatus:
    """One attempt at the claimed run: resume from its checkpoint if any, write its status at the end.
    Only `done` and `diverged` remove the checkpoint: a failed run resumes with --retry-failed."""
    folder = RunFolder(path)
    record = folder.record()
    if dist.main:
        forks.start_from_fork(path, record)  # a branch's first start: its parent's state at the fork step
    dist.any(False)  # all ranks meet here, so none loads the checkpoint before rank 0 has written it
    state = checkpoint.load(path)
    writer = None
    token = None
    if dist.main:
        folder.write_status(store.RunStatus(RUNNING, host=socket.gethostname(), pid=os.getpid()))
        token = pinned.begin(path, record["spec"]["task"], fresh=state is None)  # the code and devices it trains with
        if state is None:  # parts of an attempt that left no checkpoint belong to no run
            shutil.rmtree(folder.metrics, ignore_errors=True)
        else:
            truncate_parts(folder.metrics, state["parts"])
        writer = MetricsWriter(folder.metrics)
    start = time.perf_counter()
    try:
        if script.is_script(record["spec"]["task"]):  # the user's own command (task=script): schedsweep.train.script runs it
            status = script.run(path, record, dist, stop)
        else:
            status = train(record, path, dist, writer, state, stop, until)
    except Exception as e:
        if store.disk_full(e):  # not the run's failure: the launch stops and a relaunch resumes it from its checkpoint
            raise
        status = store.RunStatus(FAILED, error=traceback.format_exc(), wall_s=time.perf_counter() - start)
        if not dist.main:  # rank 0 writes the status: leave it this rank's reason
            files.write_text(folder.rank_error(dist.rank), status.error or "")
    finally:
        if writer is not None:
            writer.flush()
    if dist.main:
        if status.status == REQUEUED:
            if stop.signal == signal.SIGUSR2:
                status = _requeue(status, max_requeues)
            elif not claims.slurm_job():  # Slurm requeues after SIGTERM itself; elsewhere the next launch resumes
                status = replace(status, status=INTERRUPTED, error=f"{stopped_by(stop.signal)} "
                                 f"at step {status.steps_done}; the next launch resumes it from its checkpoint")
        if status.status == FAILED and not status.steps_done:  # the step it failed at, as far as it logged
            status = replace(status, steps_done=metrics_reached(folder.metrics) or 0)
        if status.status == FAILED and dist.world > 1:
            status = replace(status, error=(status.error or "") + _rank_errors(path))
        folder.write_status(status)
        if token is not None:
            pinned.end(path, token, status.status)
        if status.status in SETTLED:
            checkpoint.remove(path)
            if record.get("branch") and store.is_sweep(path.parent.parent):
                forks.remove_forks(path.parent.parent)  # a fork goes once all its branches are done (Slurm: no launcher waits)
    return status


def _rank_errors(path: Path) -> str:
    """The other ranks' errors (a rank that raises ends its process, so every other rank's next
    collective fails at once instead of waiting: the whole run stops as failed)."""
    time.sleep(0.5)  # the failing rank writes its reason before its process ends
    errors = RunFolder(path).rank_errors()
    texts = [f"\n{p.stem.split('.')[-1]}: {p.read_text(encoding='utf-8')}" for p in errors]
    for p in errors:
        p.unlink()
    return "".join(texts)


def train(
    record: dict[str, Any], path: Path, dist: Dist, writer: MetricsWriter | None, state: dict[str, Any] | None, stop: StopFlag,
    until: int | None = None,
) -> store.RunStatus:
    spec, log = record["spec"], record["log"]
    steps, seed, clip = spec["steps"], spec["seed"], spec["grad_clip"]
    accumulate = spec.get("accumulate", 1)
    device = torch.device("cuda", dist.local_rank) if torch.cuda.is_available() else torch.device("cpu")
    torch.manual_seed(seed)
    task = tasks.build(spec["task"], seed)
    model = task.build_model().to(device)
    optimizer = optimizers.build(spec["optimizer"], model, groups.task_groups(task, model))
    params = [p for p in model.parameters() if p.requires_grad]
    peak = float(spec["optimizer"]["lr"])
    schedule = schedules.build(spec["schedule"], steps)
    precision = loop.Precision(spec.get("precision", "fp32"), device)
    read_every = loop.read_every(device, log.get("log_every", 1))
    average = averaging.Average(spec["average"], params) if spec.get("average") else None  # EMA/LAWA: schedsweep.train.averaging

    first = 0
    run: dict[str, Any] = recorder.fresh() | {"requeues": 0}
    if state is not None:
        first = state["step"]
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if state.get("scaler"):
            precision.scaler.load_state_dict(state["scaler"])
        if state.get("schedule") is not None:
            schedule.load_state_dict(state["schedule"])  # stateful schedules (plateau) only
        run |= state["run"]
        if average is not None:
            average.load_state_dict(state["average"])
        checkpoint.restore_rng(state)
    elif spec.get("init"):  # init_from: the user's checkpoint at init_step (schedsweep.train.init_from)
        first = init_from.load(spec["init"], model, optimizer)
    batches = loop.batch_stream(task, first * accumulate)
    net: torch.nn.Module = torch.nn.parallel.DistributedDataParallel(model) if dist.world > 1 else model
    if spec.get("compile"):
        net = torch.compile(net)  # type: ignore[assignment]  # training forward only; evaluation stays eager
    updater = loop.Updater(task, net, optimizer, precision, params, clip, dist, device, accumulate)
    # An adaptive schedule (AutoLRS) spends part of the budget on trials: the loop keeps `kept_steps` updates.
    searching = isinstance(schedule, trials.Controller)
    kept = schedule.kept_steps if searching else steps

    start = time.perf_counter() - run["wall_s"]
    last_save = time.monotonic()
    every_steps = log.get("checkpoint_every")
    every_s = 60.0 * (log.get("checkpoint_minutes") or math.inf)
    fork_steps = set(record.get("forks", ())) | ({until} if until is not None else set())  # branches start here
    pending = loop.Pending()

    def save(next_step: int) -> None:
        if dist.main and writer is not None:
            writer.flush()
            run["wall_s"] = time.perf_counter() - start
            # Schedule-free: the training point and the optimizer state (whose z gives the averaged
            # weights), not eval() weights: rank 0 alone saves, at times of its clock, and an
            # eval()/train() round trip is not bit-exact, so it would drift the ranks and the run.
            checkpoint.save(path, {"step": next_step, "parts": len(part_files(writer.folder)), "run": dict(run),
                                   "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                                   "scaler": precision.scaler.state_dict(),
                                   "schedule": schedule.state_dict() if hasattr(schedule, "state_dict") else None,
                                   "average": average.state_dict() if average is not None else None})

    def drain() -> int | None:
        """Write the waiting rows; the step of a non-finite loss, if one is among them."""
        rows, bad = pending.read()
        for row in rows:
            run["loss"] = row["loss"]
            if writer is not None:
                writer.append(row)
        return None if bad is None else rows[bad]["step"]

    def diverged(step: int) -> store.RunStatus:
        run["eval_loss"] = math.nan
        return _summary(DIVERGED, step, run, start)

    if until is not None and first >= until:  # stopped between its checkpoint at `until` and its status
        if dist.main:
            forks.keep_fork(path, until)
        return _summary(PENDING, first, run, start)
    optimizer.train()
    net.train()
    for step in range(first, kept):
        if step > first and ((step - first) % read_every == 0 or step in fork_steps):
            bad = drain()
            if bad is not None:
                return diverged(bad)
            stopping = dist.any(stop.signal is not None)
            fork = step in fork_steps
            if stopping or fork or (every_steps and step % every_steps == 0) or time.monotonic() - last_save >= every_s:
                if stopping and stop.signal == signal.SIGUSR2:
                    run["requeues"] += 1  # counted in the checkpoint, so the limit survives the requeue
                save(step)
                if fork and dist.main:
                    forks.keep_fork(path, step)
                last_save = time.monotonic()
            if stopping:
                return _summary(REQUEUED, step, run, start)
            if step == until:  # this segment's end: the next segment and the fork's branches go on from here
                return _summary(PENDING, step, run, start)
        if searching and schedule.wants_search(step):  # an adaptive schedule's trials (schedsweep.train.trials)
            try:
                schedule.search(step, trials.Trials(updater, task, step * accumulate, seed, run, stop, dist,
                                                    lambda: _evaluate(task, model, optimizer, precision)[0],
                                                    lambda at=step: (drain(), save(at))))
            except trials.Preempted:
                return _summary(REQUEUED, step, run, start)
        factor = schedule(step)
        mean_loss, l2, l1, n = updater.update(batches, factor)
        run["samples"] += n
        if average is not None:
            average.update(step)
        pending.add({"step": step, "lr": peak * factor, "samples_seen": run["samples"], "samples": n,
                     "wall_s": time.perf_counter() - start}, mean_loss, l2, l1)
        if step == kept - 1 or (step + 1) % log["eval_every"] == 0:
            rows, bad = pending.read()
            for row in rows[:-1]:
                run["loss"] = row["loss"]
                if writer is not None:
                    writer.append(row)
            last = rows[-1]
            run["loss"] = last["loss"]
            if bad is not None:
                if writer is not None:
                    writer.append(last)
                return diverged(last["step"])
            eval_loss, extra = _evaluate(task, model, optimizer, precision)
            recorder.evaluated(run, eval_loss)
            if average is not None:
                extra |= averaging.evaluate(average, lambda: _evaluate(task, model, optimizer, precision, averaged=True))
            last |= {"eval_loss": eval_loss, **extra, "wall_s": time.perf_counter() - start}
            if writer is not None:
                writer.append(last)
            if not math.isfinite(eval_loss):
                return _summary(DIVERGED, step + 1, run, start)
            if hasattr(schedule, "observe"):  # reduce-on-plateau: the only schedule driven by the loss
                schedule.observe(eval_loss)
    bad = drain()
    if bad is not None:
        return diverged(bad)
    return _summary(DONE, kept, run, start)


def _requeue(status: store.RunStatus, max_requeues: int) -> store.RunStatus:
    """Requeue this Slurm job (array task) after a checkpoint, within the allowed number of times."""
    job = os.environ.get("SLURM_JOB_ID")
    if os.environ.get("SLURM_ARRAY_TASK_ID"):
        job = f"{os.environ['SLURM_ARRAY_JOB_ID']}_{os.environ['SLURM_ARRAY_TASK_ID']}"
    if not job:
        return status  # not under Slurm: relaunching the sweep resumes it
    if status.requeues > max_requeues:
        return replace(status, status=FAILED, error=f"stopped by the time limit or preemption {status.requeues} times "
                       f"(executor.max_requeues={max_requeues}); relaunch with --retry-failed to resume from its checkpoint")
    proc = subprocess.run(["scontrol", "requeue", job], capture_output=True, text=True)
    if proc.returncode != 0:
        return replace(status, status=FAILED, error=f"scontrol requeue {job}: {proc.stderr.strip()}; "
                       "relaunch with --retry-failed to resume from its checkpoint")
    return status


def _evaluate(task: tasks.Task, model: torch.nn.Module, optimizer: optimizers.Optimizers,
              precision: loop.Precision, averaged: bool = False) -> tuple[float, dict[str, float]]:
    """The held-out loss, and the task's optional held-out metrics (eval_error), at the weights a user would
    keep (schedule-free: its averaged weights, as its authors require; `averaged`: the weights in the model
    as they are, an EMA/LAWA average swapped in)."""
    if not averaged:
        optimizer.eval()
    try:
        with tasks.evaluating(model), precision.autocast():
            metrics_of = getattr(task, "eval_metrics", None)
            extra = metrics_of(model) if callable(metrics_of) else {}
            return float(task.evaluate(model)), {str(k): float(v) for k, v in extra.items()}
    finally:
        if not averaged:
            optimizer.train()


def _summary(status: str, step: int, run: dict[str, Any], start: float) -> store.RunStatus:
    """The status at kept step `step`; steps_done counts every update, an adaptive schedule's trials too."""
    return store.RunStatus(
        status,
        steps_done=step + run["trial_steps"],
        **recorder.losses(run),
        wall_s=time.perf_counter() - start,
        requeues=run["requeues"],
        trial_steps=run["trial_steps"],
    )
