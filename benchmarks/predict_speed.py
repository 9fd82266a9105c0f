"""Fitting the laws on the published curves (the authors' protocol), and predicting a 72,000-step run:
the compressed double sum beside the exact one. CPU and wall seconds (on a shared machine they differ).

    .venv/bin/python benchmarks/predict_speed.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import mpl_data as M  # noqa: E402

from schedsweep.predict import fit  # noqa: E402
import torch  # noqa: E402

from schedsweep.predict.laws import Events, evaluate  # noqa: E402


def timed(fn):
    wall, cpu = time.perf_counter(), time.process_time()
    value = fn()
    return value, time.perf_counter() - wall, time.process_time() - cpu


for model in ("25", "100"):
    for law in ("mpl", "tissue"):
        fitted, wall, cpu = timed(lambda: fit([M.curve(model, n) for n in M.TRAIN], law=law))
        errors = M.relative_errors(fitted, model, M.TEST)
        print(f"{model}M {law:6s} fit {cpu:5.1f} s CPU ({wall:5.1f} s wall)  PredE {np.mean([e.mean() for e in errors.values()]):.5f}"
              f"  WorstE {np.mean([e.max() for e in errors.values()]):.5f}")

law = fitted
lr = M.lrs("cosine_72000")
at = np.arange(0, len(lr), 128)
_, wall, cpu = timed(lambda: law.predict(lr))
print(f"predict all 72,000 steps, <= 2,048 changes: {cpu:.2f} s CPU ({wall:.2f} s wall)")
_, wall, cpu = timed(lambda: law.predict(lr, at))
print(f"predict {len(at)} logged steps, <= 2,048 changes: {cpu:.2f} s CPU ({wall:.2f} s wall)")
theta = {k: torch.tensor(v, dtype=torch.float64) for k, v in law.raw.items()}
every = Events.of(law.kind, lr / law.scale, 10**9)
with torch.no_grad():
    _, wall, cpu = timed(lambda: evaluate(law.kind, theta, every, at))
print(f"predict {len(at)} logged steps, all {len(every.step)} changes (exact): {cpu:.2f} s CPU ({wall:.2f} s wall)")
