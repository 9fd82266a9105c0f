"""schedsweep.client starts quickly: it loads no module a script does not need (benchmarks/client_startup.py times it)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from schedsweep import files
from schedsweep.plan import grid
from schedsweep.sweep import run_folder
from helpers import TESTS, pythonpath

NEVER = ("torch", "pyarrow", "pandas", "hydra", "omegaconf", "yaml", "typer", "rich", "scipy", "matplotlib", "submitit",
         "schedsweep.cli", "schedsweep.results", "schedsweep.plan.grid")
CHECK = "import sys, json\n{code}\nprint(json.dumps(sorted(m for m in {never!r} if m in sys.modules)))"


def loaded(code: str, env: dict[str, str] | None = None) -> list[str]:
    proc = subprocess.run([sys.executable, "-c", CHECK.format(code=code, never=NEVER)], capture_output=True, text=True,
                          check=True, env={"PYTHONPATH": pythonpath(TESTS)} | (env or {}))
    return json.loads(proc.stdout.splitlines()[-1])


@pytest.mark.slow
def test_importing_the_client_loads_no_heavy_module() -> None:
    assert loaded("import schedsweep.client") == []


@pytest.mark.slow
def test_a_swept_script_without_torch_reaches_its_first_step_without_torch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (run,) = grid.make_plan(["task=script", "task.command='python train.py'", "budget=20"]).runs
    folder = tmp_path / "run"
    files.write_json(folder / run_folder.RECORD, run.record())
    code = ("import schedsweep.client as sweep\nr = sweep.init(steps=5, peak_lr=0.01)\nr.log(0, loss=1.0)\n"
            "assert not r.should_stop() and r.peak_lr == 0.01 and r.steps == 20")
    assert loaded(code, {"SCHEDSWEEP_RUN_DIR": str(folder)}) == ["pyarrow"]  # the run's Parquet writer, nothing else
    assert (folder / "client.json").is_file()
