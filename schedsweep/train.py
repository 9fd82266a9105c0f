"""The training loop: one run, read from its folder, metrics to Parquet, a status marker at the end.

`main(run_dir)` is the one execution seam: the local and Slurm executors submit it by reference
with a path string, the debug executor and the tests call it directly. It never raises: a crash
is a `failed` status with the traceback, a non-finite loss is `diverged`.
"""

from __future__ import annotations

import json
import math
import shutil
import time
import traceback
from pathlib import Path
from typing import Any

import torch

from schedsweep import optimizers, schedules, store, tasks
from schedsweep.metrics import MetricsWriter


def main(run_dir: str, threads: int | None = None) -> str:
    """Train the run in `run_dir` (its run.json) and return its final status."""
    path = Path(run_dir)
    record = json.loads((path / store.RUN_RECORD).read_text(encoding="utf-8"))
    if threads:
        torch.set_num_threads(threads)
    store.write_status(path, store.RunStatus("running"))
    # No resume yet: parts left by an interrupted attempt belong to no finished run.
    shutil.rmtree(path / store.METRICS, ignore_errors=True)
    writer = MetricsWriter(path / store.METRICS)
    start = time.perf_counter()
    try:
        status = train(record["spec"], record["log"], writer)
    except Exception:
        status = store.RunStatus("failed", error=traceback.format_exc(), wall_s=time.perf_counter() - start)
    finally:
        writer.flush()
    store.write_status(path, status)
    return status.status


def train(spec: dict[str, Any], log: dict[str, Any], writer: MetricsWriter) -> store.RunStatus:
    steps, seed, clip = spec["steps"], spec["seed"], spec["grad_clip"]
    eval_every = log["eval_every"]
    torch.manual_seed(seed)
    task = tasks.build(spec["task"], seed)
    model = task.build_model()
    optimizer = optimizers.build(spec["optimizer"], model.parameters())
    params = [p for p in model.parameters() if p.requires_grad]
    peak = float(spec["optimizer"]["lr"])
    schedule = schedules.build(spec["schedule"], steps)
    batches = task.batches()

    start = time.perf_counter()
    samples = 0
    loss_value = eval_loss = best_eval = math.nan
    model.train()
    for step in range(steps):
        lr = peak * schedule(step)
        for group in optimizer.param_groups:
            group["lr"] = lr
        batch = next(batches)
        step_start = time.perf_counter()
        loss = task.loss(model, batch)
        loss_value = loss.item()
        n = _batch_size(batch)
        samples += n
        row: dict[str, Any] = {"step": step, "lr": lr, "loss": loss_value, "samples_seen": samples}
        if not math.isfinite(loss_value):
            writer.append(row | {"wall_s": time.perf_counter() - start})
            return _summary("diverged", step, loss_value, eval_loss, best_eval, start)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grads = [p.grad for p in params if p.grad is not None]
        l2 = torch.nn.utils.get_total_norm(grads, 2.0)
        l1 = torch.nn.utils.get_total_norm(grads, 1.0)
        if clip is not None:
            torch.nn.utils.clip_grads_with_norm_(params, clip, l2)
        optimizer.step()
        step_s = time.perf_counter() - step_start
        row |= {"grad_norm": l2.item(), "grad_norm_l1": l1.item(), "samples_per_s": n / step_s if step_s > 0 else None}
        last = step == steps - 1
        if last or (step + 1) % eval_every == 0:
            eval_loss = _evaluate(task, model)
            row["eval_loss"] = eval_loss
            if not math.isfinite(eval_loss):
                writer.append(row | {"wall_s": time.perf_counter() - start})
                return _summary("diverged", step + 1, loss_value, eval_loss, best_eval, start)
            best_eval = min(best_eval, eval_loss) if math.isfinite(best_eval) else eval_loss
        writer.append(row | {"wall_s": time.perf_counter() - start})
    return _summary("done", steps, loss_value, eval_loss, best_eval, start)


def _evaluate(task: tasks.Task, model: torch.nn.Module) -> float:
    model.eval()
    try:
        with torch.no_grad():
            return float(task.evaluate(model))
    finally:
        model.train()


def _batch_size(batch: Any) -> int:
    """Samples in a batch: the leading dimension of its first tensor."""
    if isinstance(batch, torch.Tensor):
        return int(batch.shape[0]) if batch.dim() else 1
    if isinstance(batch, dict):
        batch = list(batch.values())
    if isinstance(batch, (list, tuple)) and batch:
        return _batch_size(batch[0])
    return 1


def _summary(status: str, steps_done: int, loss: float, eval_loss: float, best_eval: float, start: float) -> store.RunStatus:
    def finite(x: float) -> float | None:
        return x if math.isfinite(x) else None

    return store.RunStatus(
        status,
        steps_done=steps_done,
        final_loss=finite(loss),
        final_eval_loss=finite(eval_loss),
        best_eval_loss=finite(best_eval),
        wall_s=time.perf_counter() - start,
    )
