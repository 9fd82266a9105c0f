"""export-sbatch: the rendered script is pinned by a golden file; hostile values stay quoted."""

from __future__ import annotations

import pytest

import os
import shlex
import subprocess
import sys
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from schedsweep.executors import sbatch
from schedsweep.executors.settings import SlurmSettings
from helpers import cli

GOLDEN = Path(__file__).parent / "golden" / "array.sbatch"
PLAN = ["launch", "executor=slurm", "task=classifier", "full_steps=20", "schedule=linear,rex", "budget=0.5,1.0",
        "executor.partition=debug", "++executor.time_by_budget={0.5: 5, 1.0: 9}", "executor.array_parallelism=3",
        "+executor.additional_parameters.mail_type=END", 'executor.setup=["module load cuda"]', "--no-submit"]


def render(tmp_path: Path, name: str, *extra: str) -> str:
    cli(*PLAN, *extra, "--name", name, cwd=tmp_path)
    text = cli("export-sbatch", f"results/{name}", "--max-array-size", "1001", cwd=tmp_path).stdout
    return text.replace(str((tmp_path / "results" / name).resolve()), "<SWEEP>").replace(sys.executable, "<PYTHON>")


@pytest.mark.slow
def test_rendered_script_matches_the_golden_file(tmp_path: Path) -> None:
    text = render(tmp_path, "golden")
    # To change the template on purpose: regenerate the file from `text`, review the diff, commit both.
    assert text == GOLDEN.read_text()
    assert (tmp_path / "results" / "golden" / "sbatch").is_dir()


@pytest.mark.slow
def test_values_with_shell_characters_are_quoted(tmp_path: Path) -> None:
    text = render(tmp_path, "quoted", "executor.account='a b;rm -rf ~'")
    assert "#SBATCH --account='a b;rm -rf ~'" in text
    line = next(line for line in text.splitlines() if line.startswith("srun"))
    assert shlex.split(line)[-5:] == ["<SWEEP>", "--index", "$(( ${SCHEDSWEEP_INDEX_OFFSET:-0} + SLURM_ARRAY_TASK_ID ))",
                                      "--max-requeues", "3"]


@pytest.mark.slow
def test_a_sweep_larger_than_max_array_size_is_one_script_submitted_once_per_chunk(tmp_path: Path) -> None:
    cli(*PLAN, "--name", "big", cwd=tmp_path)  # 4 runs, array_parallelism=3
    printed = cli("export-sbatch", "results/big", "--max-array-size", "3", "--out", "big.sbatch", cwd=tmp_path).stdout
    assert printed.splitlines()[1:] == ["sbatch --array=0-2%2 --export=ALL,SCHEDSWEEP_INDEX_OFFSET=0 big.sbatch",
                                        "sbatch --array=0-0%1 --export=ALL,SCHEDSWEEP_INDEX_OFFSET=3 big.sbatch"]
    assert "#SBATCH --array=0-2%2\n" in (tmp_path / "big.sbatch").read_text()  # plain `sbatch big.sbatch`: the first
    # The script's index arithmetic, run by bash with srun and module as echo/no-op shims: offset + task id.
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    for name, body in (("srun", 'echo "$@"'), ("module", "true")):
        (bin_ / name).write_text(f"#!/bin/sh\n{body}\n")
        (bin_ / name).chmod(0o755)
    for offset, task, index in ((None, "2", "2"), ("3", "0", "3"), ("16", "1", "17")):
        env = os.environ | {"PATH": f"{bin_}:{os.environ['PATH']}", "SLURM_ARRAY_TASK_ID": task}
        env.pop("SCHEDSWEEP_INDEX_OFFSET", None)
        env |= {"SCHEDSWEEP_INDEX_OFFSET": offset} if offset else {}
        ran = subprocess.run(["bash", "big.sbatch"], cwd=tmp_path, env=env, capture_output=True, text=True, check=True)
        assert ran.stdout.split()[-4:-2] == ["--index", index]


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 5000), st.integers(1, 1001), st.integers(1, 300))
def test_chunks_cover_the_plan_once_within_max_array_size_and_the_throttle(n: int, max_size: int, parallelism: int) -> None:
    parts = sbatch.chunks(n, max_size, SlurmSettings(array_parallelism=parallelism))
    indices = [c.offset + i for c in parts for i in range(c.size)]
    assert indices == list(range(n))
    assert all(1 <= c.size <= max_size and 1 <= c.throttle <= c.size for c in parts)
    assert sum(c.throttle for c in parts) <= max(parallelism, len(parts))


@pytest.mark.slow
def test_export_needs_a_slurm_sweep_and_a_valid_template(tmp_path: Path) -> None:
    cli("launch", "task=classifier", "budget=0.5", "--name", "local", "--no-submit", cwd=tmp_path)
    assert "executor=slurm" in cli("export-sbatch", "results/local", cwd=tmp_path, check=2).stderr
    cli(*PLAN, "--name", "s", cwd=tmp_path)
    (tmp_path / "bad.sbatch").write_text("#!/bin/bash\nsrun ${nope}\n")
    bad = cli("export-sbatch", "results/s", "--template", "bad.sbatch", cwd=tmp_path, check=2)
    assert "placeholder" in bad.stderr and "Traceback" not in bad.stderr
