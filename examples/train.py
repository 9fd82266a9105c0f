"""A plain PyTorch training loop that schedsweep can sweep: two lines make it a sweep run.

Alone:        python examples/train.py --width 32
Swept:        schedsweep launch task=script task.command="python examples/train.py --width 32" \\
                  schedule=linear,cosine,rex budget=0.5,1.0 full_steps=200

The data are generated (a noisy sine of a random projection), so nothing is downloaded. Batch t is
drawn from a generator seeded by (seed, t): a resumed run sees exactly the batches it would have seen.
"""

from __future__ import annotations

import argparse
import time

import torch

import schedsweep.client as sweep


def batch(seed: int, step: int, size: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed * 1_000_003 + step)
    x = torch.randn(size, 8, generator=g)
    return x, torch.sin(x.sum(1, keepdim=True)) + 0.05 * torch.randn(size, 1, generator=g)


def evaluate(model: torch.nn.Module) -> float:
    x, y = batch(seed=-1, step=0, size=1024)  # the same held-out set for every run
    with torch.no_grad():
        return torch.nn.functional.mse_loss(model(x), y).item()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--sleep", type=float, default=0.0, help="seconds per step (tests use it to interrupt a run)")
    args = parser.parse_args()

    run = sweep.init(steps=200, peak_lr=0.01, schedule="cosine")  # the defaults when run alone
    torch.manual_seed(run.seed)
    model = torch.nn.Sequential(torch.nn.Linear(8, args.width), torch.nn.Tanh(), torch.nn.Linear(args.width, 1))
    optimizer = torch.optim.AdamW(model.parameters(), lr=run.peak_lr)
    state = run.load_checkpoint()
    if state is not None:
        print(f"resumed at step {run.start_step}", flush=True)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
    scheduler = run.lr_scheduler(optimizer)

    for step in range(run.start_step, run.steps):
        x, y = batch(run.seed, step)
        loss = torch.nn.functional.mse_loss(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), float("inf"))
        optimizer.step()
        scheduler.step()
        # param_norm is a metric of this script's own: it becomes a column that `report --metric` ranks by
        param_norm = torch.cat([p.detach().flatten() for p in model.parameters()]).norm().item()
        run.log(step, loss=loss.item(), grad_norm=grad_norm.item(), param_norm=param_norm, samples_seen=(step + 1) * len(x))
        if (step + 1) % 50 == 0:
            run.log(step, eval_loss=evaluate(model))
        time.sleep(args.sleep)
        stop = run.should_stop()  # preemption, time limit or Ctrl-C: save and exit; the requeued run resumes here
        periodic = (step + 1) % 50 == 0 and step + 1 < run.steps  # bounds what a hard kill (SIGKILL) loses
        if stop or periodic:
            run.save_checkpoint({"model": model.state_dict(), "optimizer": optimizer.state_dict()})
        if stop:
            return
    run.finish(eval_loss=evaluate(model))
    print(f"done: {run.steps} steps, eval loss {evaluate(model):.4f}")


if __name__ == "__main__":
    main()
