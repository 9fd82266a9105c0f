"""Sweep the training script you already have: two lines in it, and schedsweep runs it once per run.

    import schedsweep.client as sweep

    run = sweep.init(steps=1000, peak_lr=3e-4, schedule="cosine")   # defaults when run alone
    optimizer = torch.optim.AdamW(model.parameters(), lr=run.peak_lr)
    scheduler = run.lr_scheduler(optimizer)        # LambdaLR: update t uses peak_lr * f(t)
    state = run.load_checkpoint()                  # what save_checkpoint stored, or None
    for step in range(run.start_step, run.steps):  # start_step > 0 when resuming
        ...; optimizer.step(); scheduler.step()
        run.log(step, loss=loss.item(), accuracy=acc)
        if run.should_stop():                      # preemption, time limit, Ctrl-C
            run.save_checkpoint({"model": model.state_dict(), "optimizer": optimizer.state_dict()})
            break
    else:
        run.finish(eval_loss=evaluate(model))

Under `schedsweep launch task=script task.command="python train.py"` the run comes from the run
folder named by $SCHEDSWEEP_RUN_DIR (schedsweep.train.script sets it); run alone, `init` returns a run
with the defaults given to it, which logs nowhere unless given a `folder`.

One row per step: every `log` call for the same step fills the same row, a larger step closes it.
The `lr` column is peak_lr * f(step), the LR of that step's update under the scheduler above (pass
`lr=` to record another). Any other numeric metric becomes a float column of its own (see
schedsweep.train.metrics). A non-finite loss or eval_loss records the run as diverged and exits the
script. Steps out of order, beyond the budget or before start_step raise ClientError, whose message
becomes the run's status.
"""

from __future__ import annotations

import atexit
import math
import os
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import Any

from schedsweep import files
from schedsweep import schedules
from schedsweep.train import checkpoint, recorder
from schedsweep.sweep.run_folder import RunFolder
from schedsweep.errors import SchedsweepError
from schedsweep.train.script import ENV_RUN_DIR, SIGNALS
from schedsweep.sweep.status import DIVERGED

# Imported where used, not here: pyarrow (schedsweep.train.metrics) only for a run with a folder, torch only
# for a checkpoint or a LambdaLR: `import schedsweep.client` takes 0.3 s (3.3 s with torch), plus the script's own imports
# (benchmarks/client_startup.py); tests/test_client_startup.py pins the modules `import schedsweep.client` loads.
NOT_LOGGABLE = frozenset({"step", "wall_s", "run_id"})  # set by the client (or by collect), never by a script

__all__ = ["ClientError", "Run", "init"]


class ClientError(SchedsweepError):
    """The script used the client wrongly (a step out of order or beyond the budget, a bad metric)."""


class Run:
    """One run as the script sees it: its settings, its metrics and its checkpoint.

    config: the run's spec (task, optimizer, schedule, steps, seed, grad_clip); steps: the budget;
    peak_lr: optimizer.lr of the run when the sweep set or swept it, else `default_lr` (init's peak_lr),
    reported back in client.json; start_step: the first step to train (the checkpoint's next step).
    init_checkpoint: with `init_from=PATH`, that path (load it when load_checkpoint() is None; format in
    schedsweep.train.init_from), else None; init_step: its step, where start_step begins.
    """

    def __init__(self, spec: dict[str, Any], folder: Path | None, eval_every: int | None = None,
                 default_lr: float | None = None) -> None:
        self.config = spec
        self.steps = int(spec["steps"])
        lr = spec["optimizer"].get("lr", default_lr)
        if lr is None:
            raise SchedsweepError("the run's spec sets no optimizer.lr and init() was given no peak_lr.")
        self.peak_lr = float(lr)
        self.seed = int(spec["seed"])
        self.schedule = spec["schedule"]
        self.folder = folder
        self.eval_every = eval_every
        self.rank = int(os.environ.get("RANK", 0))
        self._f = schedules.build(self.schedule, self.steps)
        if not callable(getattr(self._f, "observe", None)) and schedules.stateful(self._f):
            raise SchedsweepError("schedule autolrs tries LRs and rewinds the model during training, which only the "
                                  "built-in loop can do; a script cannot run it.")
        self._stop: int | None = None
        self._row: dict[str, Any] | None = None
        self._numbers = recorder.fresh()
        self._state: dict[str, Any] | None = None
        self._ended = False  # finished, diverged or failed: nothing more to report at exit
        init = spec.get("init") or {}  # init_from: the user's checkpoint, which the script loads itself
        self.init_checkpoint: str | None = init.get("path")
        self.init_step = int(init.get("step", 0))
        self.start_step = self.init_step
        self._last = self.init_step - 1  # the last step logged (or closed by a checkpoint)
        self._writer: Any = None  # schedsweep.train.metrics.MetricsWriter of a run with a folder (rank 0)
        self._start = time.perf_counter()
        if folder is not None:
            self._resume(folder)

    # ---- settings

    def lr_at(self, step: int) -> float:
        """peak_lr * f(step): the LR of update `step` (the sweep's convention, as in the built-in loop)."""
        return self.peak_lr * self.multiplier(step)

    def lr_scheduler(self, optimizer: Any, start_step: int | None = None) -> Any:
        """A torch LambdaLR over this run's schedule, positioned at start_step (the run's, unless given).

        Step it once after each optimizer.step(): update t then uses peak_lr * f(t). Every param
        group's base LR becomes peak_lr (scale a group by wrapping, not by its own lr).
        """
        import torch

        start = self.start_step if start_step is None else start_step
        for group in optimizer.param_groups:
            group["initial_lr"] = self.peak_lr
            group["lr"] = self.lr_at(start)
        # last_epoch=start-1 and initial_lr set: torch's first step() lands on start.
        return torch.optim.lr_scheduler.LambdaLR(optimizer, self.multiplier, last_epoch=start - 1)

    def multiplier(self, step: int) -> float:
        """f(step): the schedule's multiplier of peak_lr (an lr_lambda for torch's LambdaLR)."""
        return float(self._f(step))

    # ---- metrics

    def log(self, step: int, **metrics: Any) -> None:
        """Record metrics of `step` (0 <= start_step <= step < steps, never decreasing)."""
        if isinstance(step, bool) or not isinstance(step, int):
            self._fail(f"run.log(step, ...) takes the step as an int; got {step!r}.")
        if not self.start_step <= step < self.steps:
            where = "beyond the budget" if step >= self.steps else "before the run's start_step"
            self._fail(f"run.log(step={step}): step {step} is {where}; this run trains steps "
                       f"{self.start_step}..{self.steps - 1} (range(run.start_step, run.steps)).")
        if step < self._last:
            self._fail(f"run.log(step={step}) after step {self._last}: steps must be logged in order.")
        if step == self._last and self._row is None:
            self._fail(f"run.log(step={step}) after save_checkpoint closed step {step}: log the next step.")
        values = {name: self._number(name, value) for name, value in metrics.items()}
        if self._row is not None and self._row["step"] != step:
            self._close()
        if self._row is None:
            self._row = {"step": step, "lr": self.lr_at(step)}
        self._row.update(values)
        self._last = step
        for key in ("loss", "eval_loss"):
            if key in values and not math.isfinite(values[key]):
                self._close()
                if self._writer is not None:
                    self._writer.flush()
                self._ended = True
                self._report(DIVERGED, error=f"non-finite {key} {values[key]} at step {step}")
                raise SystemExit(f"schedsweep: non-finite {key} at step {step}: the run diverged and stops.")

    def finish(self, **metrics: Any) -> None:
        """Log `metrics` at the last step (steps - 1), write the metrics and mark the run finished."""
        if self._last != self.steps - 1:
            done = "no step" if self._last < 0 else f"step {self._last}"
            self._fail(f"run.finish() after {done}: the run's budget is {self.steps} steps (0..{self.steps - 1}); "
                       "train every step (range(run.start_step, run.steps)) before finishing.")
        if metrics:
            self.log(self.steps - 1, **metrics)
        self._close()
        if self._writer is not None:
            self._writer.flush()
        self._ended = True
        self._report("finished")

    # ---- interruptions

    def should_stop(self) -> bool:
        """True once SIGUSR2 (Slurm's time-limit warning or preemption), SIGTERM (requeue) or Ctrl-C arrived.

        Under torch.distributed every rank gets the same answer (one all-reduce), so all save and stop together.
        """
        if "torch" not in sys.modules:  # a script without torch has no process group to ask
            return self._stop is not None
        from schedsweep.train import distributed

        return distributed.any_rank(self._stop is not None)

    def save_checkpoint(self, state: Any, step: int | None = None) -> None:
        """Store `state` (anything torch.save takes) and the metrics so far; the run resumes at `step`.

        `step` defaults to the step after the last one logged. Metrics logged after this checkpoint are
        dropped on resume, so the metrics never miss or repeat a step. Rank 0 writes; other ranks return.
        """
        next_step = self._last + 1 if step is None else int(step)
        if not self.start_step <= next_step <= self.steps or next_step <= self._last:
            self._fail(f"run.save_checkpoint(step={next_step}): the next step must be after the last logged step "
                       f"{self._last} and at most {self.steps}.")
        self._close()
        self._last = next_step - 1
        if self.folder is None or self.rank != 0 or self._writer is None:
            return
        self._writer.flush()
        self._numbers["wall_s"] = time.perf_counter() - self._start
        from schedsweep.train.metrics import part_files

        parts = len(part_files(self._writer.folder))
        checkpoint.save(self.folder, {"step": next_step, "parts": parts, "client": dict(self._numbers), "user": state})
        self._report("checkpointed", steps_done=next_step)

    def load_checkpoint(self) -> Any | None:
        """What the last save_checkpoint stored, or None on a fresh start."""
        return None if self._state is None else self._state["user"]

    # ---- internals

    def _resume(self, folder: Path) -> None:
        from schedsweep.train.metrics import MetricsWriter, truncate_parts

        self._state = checkpoint.load(folder)
        metrics_dir = RunFolder(folder).metrics
        if self._state is not None:
            self.start_step = int(self._state["step"])
            self._last = self.start_step - 1
            self._numbers |= self._state["client"]
            self._start -= self._numbers["wall_s"]  # wall_s counts every attempt
        if self.rank == 0:
            if self._state is None:  # parts of an attempt that left no checkpoint belong to no run
                shutil.rmtree(metrics_dir, ignore_errors=True)
            else:
                truncate_parts(metrics_dir, self._state["parts"])
        for sig in SIGNALS:  # before reporting "started": a signal from then on is a checkpoint, not a kill
            try:
                signal.signal(sig, self._on_signal)
            except ValueError:  # not the main thread: nobody can signal this run
                pass
        if self.rank == 0:
            self._writer = MetricsWriter(metrics_dir)
            self._report("started", steps_done=self.start_step)
            atexit.register(self._at_exit)

    def _at_exit(self) -> None:
        """The interpreter exits (normally or on an exception) without finish(): keep the rows, say where it ended."""
        if self._ended or self._writer is None or self._stop is not None:  # stopped: "checkpointed" stays
            return
        try:
            if self._row is not None and "loss" in self._row:
                self._close()
            self._writer.flush()
        finally:  # the status must say where the script ended even if its last rows could not be written
            self._report("exited")

    def _on_signal(self, signum: int, frame: Any) -> None:
        self._stop = signum

    def _number(self, name: str, value: Any) -> float:
        if name in NOT_LOGGABLE or not name.isidentifier():
            self._fail(f"run.log(): cannot log a metric named {name!r} (reserved or not an identifier).")
        try:
            number = float(value)  # ints, floats, numpy and one-element torch scalars
        except (TypeError, ValueError):
            self._fail(f"run.log(): metric {name!r} must be a number; got {value!r}.")
        return number

    def _close(self) -> None:
        """Write the open row: lr and loss must be there, samples_seen carries over, wall_s is now."""
        row, self._row = self._row, None
        if row is None:
            return
        if "loss" not in row:
            self._fail(f"step {row['step']} was logged without loss: every step's row needs run.log(step, loss=...).")
        n = self._numbers
        n["loss"] = row["loss"]
        n["samples"] = int(row.get("samples_seen", n["samples"]))
        if "eval_loss" in row and math.isfinite(row["eval_loss"]):
            recorder.evaluated(n, row["eval_loss"])
        if self._writer is not None:
            self._writer.append(row | {"samples_seen": n["samples"], "wall_s": time.perf_counter() - self._start})

    def _report(self, state: str, steps_done: int | None = None, error: str | None = None) -> None:
        """client.json for schedsweep.train.script, which turns it into the run's status (rank 0 only)."""
        if self.folder is None or self.rank != 0:
            return
        files.write_json(RunFolder(self.folder).client_file, {
            "state": state, "steps_done": self._last + 1 if steps_done is None else steps_done, "error": error,
            "peak_lr": self.peak_lr,
            **recorder.losses(self._numbers), "wall_s": time.perf_counter() - self._start, "pid": os.getpid(),
        })

    def _fail(self, message: str) -> None:
        if self._writer is not None:
            self._writer.flush()
        self._ended = True
        self._report("error", error=message)
        raise ClientError(message)


_current: Run | None = None  # under a sweep, init() always returns the same run


def init(*, steps: int = 100, peak_lr: float = 1e-3, schedule: str | dict[str, Any] = "cosine", seed: int = 0,
         folder: str | Path | None = None, **config: Any) -> Run:
    """This run: from $SCHEDSWEEP_RUN_DIR under schedsweep, else from the defaults given here.

    Under a sweep, `peak_lr` is the run's LR unless the sweep set or swept optimizer or optimizer.lr
    (the run is then labelled optimizer=script with this LR: schedsweep.train.script.sweep_optimizer).

    Under a sweep every call returns the same Run (a script and its HF or Lightning callback share it).
    Run alone, `schedule` is a name in conf/schedule/ (or a spec) and `config` extra keys of the run's
    config; with `folder` the run writes its metrics and checkpoint there as under schedsweep.
    """
    global _current
    run_dir = os.environ.get(ENV_RUN_DIR)
    if run_dir:
        path = Path(run_dir)
        if _current is not None and _current.folder == path:  # the script and a callback share one run
            return _current
        try:
            record = RunFolder(path).record()
        except (OSError, ValueError) as e:
            raise ClientError(f"${ENV_RUN_DIR}={run_dir!r} is not a schedsweep run folder ({e}).") from None
        _current = Run(record["spec"], path, record.get("log", {}).get("eval_every"), default_lr=peak_lr)
        return _current
    spec = schedules.load(schedule, peak_lr=peak_lr) if isinstance(schedule, str) else dict(schedule)
    shape = {k: v for k, v in spec.items() if k not in schedules.LABEL_KEYS}
    schedules.check(shape, steps, str(schedule if isinstance(schedule, str) else shape.get("shape")))
    run_spec = {"task": config, "optimizer": {"lr": peak_lr}, "schedule": shape, "steps": steps, "seed": seed}
    if folder is not None:
        Path(folder).mkdir(parents=True, exist_ok=True)
    return Run(run_spec, None if folder is None else Path(folder))

