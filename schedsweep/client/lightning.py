"""PyTorch Lightning: the run's budget, schedule and metrics through one callback.

    import schedsweep.client.lightning as sweep_pl
    callback = sweep_pl.Callback()
    trainer = lightning.Trainer(callbacks=[callback], ...)
    trainer.fit(model, data, ckpt_path=callback.ckpt_path)   # None on a fresh start

At setup the callback sets the Trainer's max_steps to the run's budget (and lifts max_epochs, so the
budget decides). At the start of training it sets every optimizer's LR to the run's peak LR and
replaces whatever configure_optimizers returned as LR schedulers by the run's schedule, stepped
every optimizer step: update t uses peak_lr * f(t). After each step it logs the step's training
loss (the `loss` of training_step's output) and the LR the optimizer used; after each validation,
every number logged under a name starting with `val` (val_loss -> eval_loss) joins the row of the last
update. On preemption, time
limit or Ctrl-C it saves a Lightning checkpoint in the run's folder and stops the Trainer; the next
attempt resumes from `ckpt_path`. lightning is imported by the caller, never by schedsweep itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lightning.pytorch.callbacks import Callback as _Callback
from lightning.pytorch.utilities.types import LRSchedulerConfig

import schedsweep.client as sweep
from schedsweep.sweep.run_folder import RunFolder

RENAMED = {"val_loss": "eval_loss"}


class Callback(_Callback):
    """Budget, schedule, metrics and stop-on-signal for a Lightning Trainer (see the module docstring)."""

    def __init__(self, run: sweep.Run | None = None) -> None:
        self.run = run or sweep.init()
        self._lr = 0.0
        self._stopped = False

    @property
    def ckpt_path(self) -> str | None:
        """The Lightning checkpoint this run stopped at (for trainer.fit(..., ckpt_path=...)), or None."""
        state = self.run.load_checkpoint()
        path = state.get("lightning_ckpt") if isinstance(state, dict) else None
        return path if path and Path(path).is_file() else None

    def setup(self, trainer: Any, pl_module: Any, stage: str) -> None:
        trainer.fit_loop.epoch_loop.max_steps = self.run.steps
        trainer.fit_loop.max_epochs = -1  # the step budget ends training, not an epoch count

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        start = trainer.global_step  # > 0 when resumed from a checkpoint
        trainer.strategy.lr_scheduler_configs = [
            LRSchedulerConfig(self.run.lr_scheduler(optimizer, start_step=start), interval="step")
            for optimizer in trainer.optimizers
        ]

    def on_before_optimizer_step(self, trainer: Any, pl_module: Any, optimizer: Any) -> None:
        self._lr = float(optimizer.param_groups[0]["lr"])  # the LR of this update (the scheduler steps after it)

    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        self.run.log(trainer.global_step - 1, loss=float(loss), lr=self._lr)  # the update just made
        if self.run.should_stop() and trainer.global_step < self.run.steps and self.run.folder is not None:
            path = RunFolder(self.run.folder).lightning_checkpoint
            trainer.save_checkpoint(path)
            self.run.save_checkpoint({"lightning_ckpt": str(path)}, step=trainer.global_step)
            trainer.should_stop = True
            self._stopped = True  # the checkpoint closed this step: a validation after it logs nothing

    def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
        if trainer.sanity_checking or trainer.global_step < 1 or self._stopped:
            return
        values = {RENAMED.get(k, k): float(v) for k, v in trainer.callback_metrics.items()
                  if k.startswith("val") and RENAMED.get(k, k).isidentifier() and getattr(v, "numel", lambda: 1)() == 1}
        if values:
            self.run.log(trainer.global_step - 1, **values)  # into the row of the last update

    def on_train_end(self, trainer: Any, pl_module: Any) -> None:
        if trainer.global_step == self.run.steps:
            self.run.finish()
