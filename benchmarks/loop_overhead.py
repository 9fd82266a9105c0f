"""What does schedsweep's training loop cost over a bare torch loop, and what do the gradient norms cost?

Same task, model, optimizer, batches and thread count, in the same process:
  bare      forward, backward, optimizer step (nanoGPT's loop, nothing logged)
  + norms   the same plus the global L2 and L1 gradient norms refinement needs
  schedsweep  schedsweep.train.train(): LR from the schedule, norms, Parquet metrics, evaluation
Run: .venv/bin/python benchmarks/loop_overhead.py [--steps N]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from schedsweep import optimizers, store, tasks, train
from schedsweep.distributed import Dist
from schedsweep.metrics import MetricsWriter, read_metrics
from schedsweep.plan import make_plan


def bare(spec: dict, steps: int, norms: bool) -> float:
    torch.manual_seed(spec["seed"])
    task = tasks.build(spec["task"], spec["seed"])
    model = task.build_model()
    opt = optimizers.build(spec["optimizer"], model.parameters())
    batches = task.batches()
    start = time.perf_counter()
    for _ in range(steps):
        loss = task.loss(model, next(batches))
        loss.item()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if norms:
            grads = [p.grad for p in model.parameters() if p.grad is not None]
            torch.nn.utils.get_total_norm(grads, 2.0).item()
            torch.nn.utils.get_total_norm(grads, 1.0).item()
        opt.step()
    return (time.perf_counter() - start) / steps


def looped(record: dict, steps: int) -> float:
    """Seconds per step from the run's own wall_s column: task construction excluded, logging included."""
    with tempfile.TemporaryDirectory() as tmp:
        writer = MetricsWriter(Path(tmp) / store.METRICS)
        train.train(record, Path(tmp), Dist(), writer, None, train.StopFlag())
        writer.flush()
        wall = read_metrics(Path(tmp) / store.METRICS, ["wall_s"])["wall_s"].to_pylist()
        return (wall[-2] - wall[0]) / (steps - 2)  # the last row also holds the final evaluation


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=300)
    args = parser.parse_args()
    torch.set_num_threads(1)
    for task in ("classifier", "charlm"):
        (run,) = make_plan([f"task={task}", f"budget={args.steps}", "eval_every=1000000"]).runs
        record = run.record()
        bare(run.spec, 20, False)  # warm-up
        base = bare(run.spec, args.steps, False)
        with_norms = bare(run.spec, args.steps, True)
        loop = looped(record, args.steps)
        print(f"{task:10s} bare {1e3 * base:7.3f} ms/step | + L2 and L1 norms {1e3 * with_norms:7.3f} ms/step "
              f"({100 * (with_norms / base - 1):+.1f}%) | schedsweep loop {1e3 * loop:7.3f} ms/step "
              f"({100 * (loop / base - 1):+.1f}%) [{args.steps} steps, 1 thread]")


if __name__ == "__main__":
    main()
