"""How long does a script wait for schedsweep.client before its first step?

Process start to exit, as the user waits (medians of --repeat runs, each a fresh interpreter):
  import   `python -c "import schedsweep.client"`, beside `python -c pass`
  alone    a tiny script without torch, run alone: import, init(), its first run.log (process start to
           the first step)
  swept    the same script as a sweep run ($SCHEDSWEEP_RUN_DIR, as schedsweep.train.script runs it):
           run.json read, Parquet writer and client.json
  torch    the swept script with `import torch` first: the floor of any torch training script
and which heavy modules `import schedsweep.client` loads.
Run: .venv/bin/python benchmarks/client_startup.py [--repeat N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HEAVY = ("torch", "numpy", "pyarrow", "pandas", "hydra", "omegaconf", "yaml", "typer", "rich", "scipy", "matplotlib", "submitit")
SCRIPT = '''
import os, sys, time
{torch}
import schedsweep.client as sweep
run = sweep.init(steps=50, peak_lr=0.01, schedule="cosine")
run.log(0, loss=1.0)
print(time.time() - float(os.environ["T0"]))
'''


def first_step(script: Path, env: dict[str, str]) -> float:
    """Seconds from starting the interpreter to the script's first logged step."""
    env = env | {"T0": repr(time.time())}
    out = subprocess.run([sys.executable, str(script)], env=env, check=True, capture_output=True, text=True).stdout
    return float(out.split()[-1])


def wall(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def run_folder(root: Path) -> Path:
    """A run folder as the planner writes it (task=script, its own optimizer and LR)."""
    from schedsweep.plan import grid
    from schedsweep.sweep.run_folder import RunFolder

    (run,) = grid.make_plan(["task=script", "task.command='python train.py'", "budget=50"]).runs
    folder = RunFolder(root / "run")
    folder.write_record(run.record())
    return folder.path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    env = dict(os.environ)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        plain, with_torch = root / "plain.py", root / "with_torch.py"
        plain.write_text(SCRIPT.format(torch=""))
        with_torch.write_text(SCRIPT.format(torch="import torch"))
        swept = env | {"SCHEDSWEEP_RUN_DIR": str(run_folder(root))}
        figures = {
            "python -c pass": [wall([sys.executable, "-c", "pass"], env) for _ in range(args.repeat)],
            "python -c 'import schedsweep.client'": [wall([sys.executable, "-c", "import schedsweep.client"], env)
                                                     for _ in range(args.repeat)],
            "script alone, to its first step": [first_step(plain, env) for _ in range(args.repeat)],
            "script swept, to its first step": [first_step(plain, swept) for _ in range(args.repeat)],
            "script swept with import torch, to its first step": [first_step(with_torch, swept) for _ in range(args.repeat)],
        }
        for name, times in figures.items():
            print(f"{name:52s} {statistics.median(times):6.2f} s (median of {len(times)}; min {min(times):.2f})")
        code = f"import sys, schedsweep.client; print(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
        loaded = subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True, text=True).stdout
        print(f"heavy modules after 'import schedsweep.client': {loaded.strip() or 'none'}")


if __name__ == "__main__":
    main()
