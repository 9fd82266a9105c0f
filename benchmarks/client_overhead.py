"""What does schedsweep.client add to a user's own loop?

In process: the cost of one `run.log(step, loss=..., grad_norm=..., accuracy=...)` (one row per step,
an extra metric column, Parquet parts) beside the built-in loop's own `MetricsWriter.append`, and
beside a bare loop step of the example's model. Process start to exit, as the user waits: the example
script run alone (`python examples/train.py`) beside the same script as a sweep run
(`schedsweep.train.script.run`: the client reading run.json, writing Parquet, the status).
Run: .venv/bin/python benchmarks/client_overhead.py [--steps N]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import schedsweep.client as sweep
from schedsweep import files
from schedsweep import schedules
from schedsweep.train import script
from schedsweep.sweep import run_folder
from schedsweep.train.metrics import MetricsWriter

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "train.py"


def per_call(steps: int, folder: Path) -> tuple[float, float]:
    writer = MetricsWriter(folder / "writer")
    start = time.perf_counter()
    for t in range(steps):
        writer.append({"step": t, "lr": 0.1, "loss": 1.0, "grad_norm": 1.0, "samples_seen": t, "wall_s": 0.0})
    writer.flush()
    direct = (time.perf_counter() - start) / steps
    spec = {"task": {"command": "x"}, "optimizer": {"lr": 0.1}, "schedule": schedules.load("cosine"), "steps": steps, "seed": 0}
    files.write_json(folder / "run" / run_folder.RECORD, {"id": "b", "spec": spec, "log": {}})
    os.environ[script.ENV_RUN_DIR] = str(folder / "run")
    run = sweep.init()
    start = time.perf_counter()
    for t in range(steps):
        run.log(t, loss=1.0, grad_norm=1.0, accuracy=0.5)
    run.finish()
    client = (time.perf_counter() - start) / steps
    del os.environ[script.ENV_RUN_DIR]
    return direct, client


def wall(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=20_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        direct, client = per_call(args.steps, folder)
        print(f"per logged step ({args.steps} steps):  MetricsWriter.append {direct * 1e6:7.1f} us   "
              f"run.log {client * 1e6:7.1f} us")
        alone = wall([sys.executable, str(EXAMPLE)], dict(os.environ))
        spec = {"task": {"command": f"{sys.executable} {EXAMPLE}"}, "optimizer": {"lr": 0.01},
                "schedule": schedules.load("cosine"), "steps": 200, "seed": 0}
        run_dir = folder / "swept"
        record = {"id": "s", "spec": spec, "labels": {}, "log": {}}
        files.write_json(run_dir / run_folder.RECORD, record)
        start = time.perf_counter()
        status = script.run(run_dir, record, threads=None)
        swept = time.perf_counter() - start
        print(f"example, 200 steps, process start to exit:  alone {alone:6.2f} s   as a sweep run {swept:6.2f} s ({status})")


if __name__ == "__main__":
    main()
