"""Tokens per second: schedsweep's training loop against a bare nanoGPT-style loop, same process.

Same task, model, parameter groups, optimizer, batches and thread count:
  bare        set the LR, forward, backward, optimizer step; the loss is never read (nanoGPT between logs)
  schedsweep  schedsweep.train.run.train(): LR per group from the schedule, L2 and L1 gradient norms, the
              loss and norms read (every step on CPU, every log_every steps on CUDA), Parquet rows
Both are timed over the same steps (the first two, warm-up, excluded) and repeated, interleaved, taking
the fastest of each (a shared machine's noise only slows runs down). Then `schedsweep launch` of the
same run in a subprocess, process start to exit, which is what the user waits for.
On CUDA only (skipped without a GPU): task=gpt at its 124M preset, bf16, with and without compile:
tokens/s and MFU against --peak-tflops (H100/H200 SXM dense bf16: 989).
Run: .venv/bin/python benchmarks/throughput.py [--steps N] [--repeats R]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from schedsweep import schedules, tasks
from schedsweep.train import groups, optimizers, run as train
from schedsweep.sweep import run_folder
from schedsweep.train.distributed import Dist
from schedsweep.train.metrics import MetricsWriter, read_metrics
from schedsweep.plan.grid import make_plan

CPU_TASKS = ("charlm", "gpt_tiny")  # the targets: <= 2% overhead on CPU


def bare(spec: dict[str, Any], steps: int, device: torch.device) -> float:
    """Seconds per step of the bare loop, steps 2..steps-1 (as the schedsweep figure)."""
    torch.manual_seed(spec["seed"])
    task = tasks.build(spec["task"], spec["seed"])
    model = task.build_model().to(device)
    opt = optimizers.build(spec["optimizer"], model, groups.task_groups(task, model))
    schedule = schedules.build(spec["schedule"], spec["steps"])
    net = torch.compile(model) if spec.get("compile") else model
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(spec.get("precision", "fp32"))
    batches = task.batches()
    for step in range(steps):
        if step == 2:
            _sync(device)
            start = time.perf_counter()
        for group in opt.param_groups:
            group["lr"] = group["peak_lr"] * schedule(step)
        x, y = (t.to(device, non_blocking=True) for t in next(batches))
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            loss = task.loss(net, (x, y))
        loss.backward()
        for part in opt.parts:
            part.step()
        opt.zero_grad()
    _sync(device)
    return (time.perf_counter() - start) / (steps - 2)


def looped(record: dict[str, Any], steps: int) -> float:
    """Seconds per step from the run's own wall_s column, steps 2..steps-1: task construction excluded."""
    with tempfile.TemporaryDirectory() as tmp:
        writer = MetricsWriter(Path(tmp) / run_folder.METRICS)
        train.train(record, Path(tmp), Dist(), writer, None, train.StopFlag())
        writer.flush()
        wall = read_metrics(Path(tmp) / run_folder.METRICS, ["wall_s"])["wall_s"].to_pylist()
        return (wall[-2] - wall[1]) / (steps - 3)  # the last row also holds the final evaluation


def command(overrides: list[str]) -> float:
    """Process start to exit of `schedsweep launch ... executor=debug` (imports, planning, training, status)."""
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "schedsweep", "launch", *overrides, "executor=debug",
                        "executor.threads_per_run=1", "--name", "bench"], cwd=tmp, check=True, capture_output=True)
        return time.perf_counter() - start


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def compare(name: str, overrides: list[str], steps: int, repeats: int, device: torch.device) -> tuple[float, float]:
    (run,) = make_plan(overrides).runs
    record = run.record()
    task = tasks.build(run.spec["task"], 0)
    tokens = task.batch_size * task.context * run.spec.get("accumulate", 1)
    bare(run.spec, 5, device)  # warm-up: allocator, first-call costs, compilation
    b = min(bare(run.spec, steps, device) for _ in range(repeats))
    s = min(looped(record, steps) for _ in range(repeats))
    print(f"{name:22s} bare {tokens / b:10.0f} tok/s ({1e3 * b:7.2f} ms/step) | schedsweep {tokens / s:10.0f} tok/s "
          f"({1e3 * s:7.2f} ms/step) | overhead {100 * (s / b - 1):+5.1f}%  [{steps} steps, best of {repeats}]")
    return tokens / s, task.flops_per_token() if hasattr(task, "flops_per_token") else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--peak-tflops", type=float, default=989.0, help="the GPU's dense bf16 peak, for MFU")
    args = parser.parse_args()
    torch.set_num_threads(1)
    cpu = torch.device("cpu")
    base = [f"budget={args.steps}", f"full_steps={args.steps}", f"eval_every={10 * args.steps}"]
    for task in CPU_TASKS:
        overrides = [f"task={task}", *base]
        if torch.cuda.is_available():
            print(f"{task}: CUDA is present, so the loop runs there; the CPU figures need a CPU-only machine")
            continue
        compare(f"{task} (CPU, 1 thread)", overrides, args.steps, args.repeats, cpu)
        in_process = looped(make_plan(overrides).runs[0].record(), args.steps) * args.steps
        print(f"{'':22s} `schedsweep launch` of it: {command(overrides):.2f} s process start to exit "
              f"(training in-process {in_process:.2f} s)")
    if not torch.cuda.is_available():
        print("CUDA: no GPU on this machine; the task=gpt 124M MFU measurement (bf16, with and without compile) is skipped")
        return
    gpu = torch.device("cuda")
    for compiled in ("false", "true"):
        overrides = ["task=gpt", "precision=bf16", f"compile={compiled}", "log_every=50", *base]
        tok_s, flops = compare(f"gpt 124M bf16 compile={compiled}", overrides, args.steps, args.repeats, gpu)
        print(f"{'':22s} MFU {100 * tok_s * flops / (args.peak_tflops * 1e12):.1f}% of {args.peak_tflops:.0f} TFLOP/s")


if __name__ == "__main__":
    main()
