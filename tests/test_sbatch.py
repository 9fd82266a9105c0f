"""export-sbatch: the rendered script is pinned by a golden file; hostile values stay quoted."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from test_cli import cli

GOLDEN = Path(__file__).parent / "golden" / "array.sbatch"
PLAN = ["launch", "executor=slurm", "task=classifier", "full_steps=20", "schedule=linear,rex", "budget=0.5,1.0",
        "executor.partition=debug", "++executor.time_by_budget={0.5: 5, 1.0: 9}", "executor.array_parallelism=3",
        "+executor.additional_parameters.mail_type=END", 'executor.setup=["module load cuda"]', "--no-submit"]


def render(tmp_path: Path, name: str, *extra: str) -> str:
    cli(*PLAN, *extra, "--name", name, cwd=tmp_path)
    text = cli("export-sbatch", f"results/{name}", cwd=tmp_path).stdout
    return text.replace(str((tmp_path / "results" / name).resolve()), "<SWEEP>").replace(sys.executable, "<PYTHON>")


def test_rendered_script_matches_the_golden_file(tmp_path: Path) -> None:
    text = render(tmp_path, "golden")
    # To change the template on purpose: regenerate the file from `text`, review the diff, commit both.
    assert text == GOLDEN.read_text()
    assert (tmp_path / "results" / "golden" / "sbatch").is_dir()


def test_values_with_shell_characters_are_quoted(tmp_path: Path) -> None:
    text = render(tmp_path, "quoted", "executor.account='a b;rm -rf ~'")
    assert "#SBATCH --account='a b;rm -rf ~'" in text
    line = next(line for line in text.splitlines() if line.startswith("srun"))
    assert shlex.split(line)[-5:] == ["<SWEEP>", "--index", "${SLURM_ARRAY_TASK_ID}", "--max-requeues", "3"]


def test_export_needs_a_slurm_sweep_and_a_valid_template(tmp_path: Path) -> None:
    cli("launch", "task=classifier", "budget=0.5", "--name", "local", "--no-submit", cwd=tmp_path)
    assert "executor=slurm" in cli("export-sbatch", "results/local", cwd=tmp_path, check=2).stderr
    cli(*PLAN, "--name", "s", cwd=tmp_path)
    (tmp_path / "bad.sbatch").write_text("#!/bin/bash\nsrun ${nope}\n")
    bad = cli("export-sbatch", "results/s", "--template", "bad.sbatch", cwd=tmp_path, check=2)
    assert "placeholder" in bad.stderr and "Traceback" not in bad.stderr
