"""The Hugging Face and Lightning callbacks with tiny models built from configs on generated data (no downloads):
the LR the library used at every step is the schedule's, and the run's Parquet has one row per step.

transformers and lightning come from the `integrations` extra, which `make setup` installs."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import torch

import schedsweep.client as sweep
from schedsweep import files
from schedsweep import schedules
from schedsweep.train import metrics
from schedsweep.sweep import run_folder
from helpers import make_run_dir

pytestmark = pytest.mark.usefixtures("keep_signal_handlers")

STEPS = 10


def expected_lrs(run: sweep.Run) -> list[float]:
    return [run.peak_lr * f for f in schedules.values(run.schedule, run.steps)]


def test_hf_trainer_with_the_callback_follows_the_schedule_and_logs_every_step(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    transformers = pytest.importorskip("transformers")
    import schedsweep.client.hf as sweep_hf

    path = make_run_dir(tmp_path, monkeypatch, schedule="wsd", steps=STEPS)
    config = transformers.GPT2Config(n_layer=2, n_head=2, n_embd=16, vocab_size=50, n_positions=16)
    torch.manual_seed(0)
    model = transformers.GPT2LMHeadModel(config)
    ids = torch.randint(0, 50, (64, 16), generator=torch.Generator().manual_seed(1))
    data = [{"input_ids": x, "labels": x} for x in ids]
    used: list[float] = []

    class Recorder(transformers.TrainerCallback):
        def on_pre_optimizer_step(self, args: Any, state: Any, control: Any, optimizer: Any = None, **kw: Any) -> None:
            used.append(optimizer.param_groups[0]["lr"])

    args = transformers.TrainingArguments(output_dir=str(tmp_path / "out"), per_device_train_batch_size=4,
                                          num_train_epochs=1, learning_rate=1.0, lr_scheduler_type="linear",
                                          warmup_steps=3, report_to=[], use_cpu=True, save_strategy="no",
                                          disable_tqdm=True)
    callback = sweep_hf.Callback()
    trainer = transformers.Trainer(model=model, args=args, train_dataset=data, callbacks=[callback, Recorder()])
    assert (args.max_steps, args.learning_rate, args.logging_steps) == (STEPS, 0.1, 1)
    assert sweep_hf.resume_from(args) is None
    trainer.train()

    run = callback.run
    assert used == pytest.approx(expected_lrs(run), rel=1e-9)
    table = metrics.read_metrics(path / run_folder.METRICS)
    assert table["step"].to_pylist() == list(range(STEPS))
    assert table["lr"].to_pylist() == pytest.approx(expected_lrs(run), rel=1e-6)
    assert all(0 < loss < 10 for loss in table["loss"].to_pylist())
    assert "grad_norm" in table.column_names and None not in table["grad_norm"].to_pylist()
    assert files.read_json(path / "client.json")["state"] == "finished"


def test_lightning_with_the_callback_replaces_the_modules_scheduler_and_logs_every_step(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lightning = pytest.importorskip("lightning")
    import schedsweep.client.lightning as sweep_pl

    path = make_run_dir(tmp_path, monkeypatch, schedule="cosine", steps=STEPS)
    used: list[float] = []

    class Tiny(lightning.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))

        def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
            x, y = batch
            return torch.nn.functional.mse_loss(self.net(x), y)

        def validation_step(self, batch: Any, batch_idx: int) -> None:
            x, y = batch
            self.log("val_loss", torch.nn.functional.mse_loss(self.net(x), y))

        def configure_optimizers(self) -> Any:  # a schedule of its own, which the callback replaces
            optimizer = torch.optim.SGD(self.parameters(), lr=3.0)
            return {"optimizer": optimizer, "lr_scheduler": torch.optim.lr_scheduler.StepLR(optimizer, 1, 0.5)}

    class Recorder(lightning.Callback):
        def on_before_optimizer_step(self, trainer: Any, pl_module: Any, optimizer: Any) -> None:
            used.append(optimizer.param_groups[0]["lr"])

    g = torch.Generator().manual_seed(0)
    x = torch.randn(24, 4, generator=g)
    data = torch.utils.data.TensorDataset(x, x.sum(1, keepdim=True))
    train = torch.utils.data.DataLoader(data, batch_size=4)  # 6 batches an epoch: the budget spans two epochs
    callback = sweep_pl.Callback()
    trainer = lightning.Trainer(max_epochs=1, accelerator="cpu", logger=False, enable_checkpointing=False,
                                enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
                                callbacks=[callback, Recorder()])
    trainer.fit(Tiny(), train, torch.utils.data.DataLoader(data, batch_size=8), ckpt_path=callback.ckpt_path)

    run = callback.run
    assert trainer.global_step == STEPS
    assert used == pytest.approx(expected_lrs(run), rel=1e-9)
    table = metrics.read_metrics(path / run_folder.METRICS)
    assert table["step"].to_pylist() == list(range(STEPS))
    assert table["lr"].to_pylist() == pytest.approx(expected_lrs(run), rel=1e-9)
    evals = table["eval_loss"].to_pylist()
    assert [i for i, v in enumerate(evals) if v is not None] == [5]  # validation at the end of the first epoch
    assert files.read_json(path / "client.json")["state"] == "finished"


def test_lightning_stopped_by_a_signal_checkpoints_and_resumes_at_the_next_step(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lightning = pytest.importorskip("lightning")
    import signal

    import schedsweep.client.lightning as sweep_pl

    path = make_run_dir(tmp_path, monkeypatch, schedule="linear", steps=STEPS)
    used: list[float] = []

    class Tiny(lightning.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = torch.nn.Linear(4, 1)

        def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
            x, y = batch
            return torch.nn.functional.mse_loss(self.net(x), y)

        def configure_optimizers(self) -> Any:
            return torch.optim.SGD(self.parameters(), lr=1.0)

    class Preempt(lightning.Callback):
        def on_before_optimizer_step(self, trainer: Any, pl_module: Any, optimizer: Any) -> None:
            used.append(optimizer.param_groups[0]["lr"])

        def on_train_batch_end(self, trainer: Any, *args: Any) -> None:
            if trainer.global_step == 4 and len(used) == 4:  # the first attempt only
                os.kill(os.getpid(), signal.SIGUSR2)  # what Slurm sends before the time limit

    x = torch.randn(32, 4, generator=torch.Generator().manual_seed(0))
    train = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, x.sum(1, keepdim=True)), batch_size=4)

    def attempt() -> sweep_pl.Callback:
        callback = sweep_pl.Callback()
        trainer = lightning.Trainer(accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
                                    enable_model_summary=False, callbacks=[Preempt(), callback])
        trainer.fit(Tiny(), train, ckpt_path=callback.ckpt_path)
        return callback

    first = attempt()
    assert first.run.should_stop() and files.read_json(path / "client.json")["state"] == "checkpointed"
    monkeypatch.setattr(sweep, "_current", None)  # the requeued job is a new process
    second = attempt()
    assert second.run.start_step == 4
    assert used == pytest.approx(expected_lrs(second.run), rel=1e-9)  # no step missing, none repeated
    assert metrics.read_metrics(path / run_folder.METRICS)["step"].to_pylist() == list(range(STEPS))
    assert files.read_json(path / "client.json")["state"] == "finished"


def test_hf_trainer_stopped_by_a_signal_saves_and_resumes_at_the_next_step(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    transformers = pytest.importorskip("transformers")
    import signal

    import schedsweep.client.hf as sweep_hf

    path = make_run_dir(tmp_path, monkeypatch, schedule="linear", steps=STEPS)
    config = transformers.GPT2Config(n_layer=2, n_head=2, n_embd=16, vocab_size=50, n_positions=16)
    ids = torch.randint(0, 50, (64, 16), generator=torch.Generator().manual_seed(1))
    data = [{"input_ids": x, "labels": x} for x in ids]
    used: list[float] = []

    class Preempt(transformers.TrainerCallback):
        def on_pre_optimizer_step(self, args: Any, state: Any, control: Any, optimizer: Any = None, **kw: Any) -> None:
            used.append(optimizer.param_groups[0]["lr"])

        def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            if state.global_step == 4 and len(used) == 4:  # the first attempt only
                os.kill(os.getpid(), signal.SIGTERM)  # what `scontrol requeue` sends

    def attempt() -> sweep_hf.Callback:
        torch.manual_seed(0)
        args = transformers.TrainingArguments(output_dir=str(tmp_path / "out"), per_device_train_batch_size=4,
                                              report_to=[], use_cpu=True, save_strategy="no", disable_tqdm=True)
        callback = sweep_hf.Callback()
        trainer = transformers.Trainer(model=transformers.GPT2LMHeadModel(config), args=args, train_dataset=data,
                                       callbacks=[Preempt(), callback])
        trainer.train(resume_from_checkpoint=sweep_hf.resume_from(args))
        return callback

    first = attempt()
    assert files.read_json(path / "client.json")["state"] == "checkpointed"
    assert (path / "hf" / "checkpoint-4").is_dir() and first.run.should_stop()
    monkeypatch.setattr(sweep, "_current", None)  # the requeued job is a new process
    second = attempt()
    assert second.run.start_step == 4
    assert used == pytest.approx(expected_lrs(second.run), rel=1e-9)  # no step missing, none repeated
    assert metrics.read_metrics(path / run_folder.METRICS)["step"].to_pylist() == list(range(STEPS))
    assert files.read_json(path / "client.json")["state"] == "finished"
