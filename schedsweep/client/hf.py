"""Hugging Face Trainer: the run's budget, schedule and metrics through one callback.

    import schedsweep.client.hf as sweep_hf
    trainer = Trainer(model=model, args=args, train_dataset=data, callbacks=[sweep_hf.Callback()])
    trainer.train(resume_from_checkpoint=sweep_hf.resume_from(args))

`apply(args)` (also called by the callback when the Trainer is built) sets max_steps to the run's
budget, learning_rate to its peak LR, its seed, and logging_steps=1 (one row per step). At the start
of training the callback puts the run's schedule into the Trainer's LambdaLR, so update t uses
peak_lr * f(t). Each log becomes a row of the run's metrics (learning_rate -> lr). On preemption,
time limit or Ctrl-C it asks the Trainer to save and stop; the saved checkpoint is what
`resume_from` returns when the run is started again. transformers is imported by the caller, never by
schedsweep itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from transformers import TrainerCallback

import schedsweep.client as sweep
from schedsweep.sweep.run_folder import RunFolder

SKIPPED = frozenset({"epoch", "total_flos"})  # bookkeeping, not metrics of the step
RENAMED = {"learning_rate": "lr"}


def apply(args: Any, run: sweep.Run | None = None) -> Any:
    """Set the run's budget, peak LR and seed on TrainingArguments `args` (in place); return them."""
    run = run or sweep.init()
    args.max_steps = run.steps
    args.learning_rate = run.peak_lr
    args.seed = run.seed
    args.logging_strategy = "steps"
    args.logging_steps = 1
    args.logging_nan_inf_filter = False  # the Trainer would log a NaN loss as the mean so far: divergence unseen
    if run.folder is not None:
        args.output_dir = str(RunFolder(run.folder).hf)  # the Trainer's checkpoints live with the run
    return args


def resume_from(args: Any, run: sweep.Run | None = None) -> str | None:
    """The Trainer checkpoint this run stopped at (for trainer.train(resume_from_checkpoint=...)), or None."""
    run = run or sweep.init()
    state = run.load_checkpoint()
    return state["hf_checkpoint"] if isinstance(state, dict) and Path(state.get("hf_checkpoint", "")).is_dir() else None


class Callback(TrainerCallback):
    """Budget, schedule, metrics and stop-on-signal for a transformers Trainer (see the module docstring)."""

    def __init__(self, run: sweep.Run | None = None) -> None:
        self.run = run or sweep.init()
        self._stopping = False

    def on_init_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        apply(args, self.run)

    def on_train_begin(self, args: Any, state: Any, control: Any, optimizer: Any = None, lr_scheduler: Any = None,
                       **kwargs: Any) -> None:
        import torch

        if not isinstance(lr_scheduler, torch.optim.lr_scheduler.LambdaLR):
            raise sweep.ClientError(
                f"the Trainer's LR scheduler is a {type(lr_scheduler).__name__}, not a LambdaLR: leave "
                "lr_scheduler_type at a LambdaLR type (linear, cosine, constant...) and pass no scheduler, "
                "so that the callback can install the run's schedule.")
        groups = optimizer.param_groups
        start = state.global_step  # > 0 when the Trainer resumed from a checkpoint
        for group in groups:
            group["initial_lr"] = self.run.peak_lr
            group["lr"] = self.run.lr_at(start)
        lr_scheduler.base_lrs = [self.run.peak_lr] * len(groups)
        lr_scheduler.lr_lambdas = [self.run.multiplier] * len(groups)
        lr_scheduler.last_epoch = start
        lr_scheduler._last_lr = [group["lr"] for group in groups]

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        if not logs or state.global_step < 1 or "train_runtime" in logs:  # the end-of-training summary
            return
        values = {RENAMED.get(k, k): float(v) for k, v in logs.items()
                  if k not in SKIPPED and isinstance(v, (int, float)) and not isinstance(v, bool)}
        if values:
            self.run.log(state.global_step - 1, **values)  # update global_step - 1 was just made

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.run.should_stop() and state.global_step < self.run.steps:
            self._stopping = True
            control.should_save = True
            control.should_training_stop = True

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self._stopping:
            path = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            self.run.save_checkpoint({"hf_checkpoint": str(path)}, step=state.global_step)

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if not self._stopping and state.global_step == self.run.steps:
            self.run.finish()

