"""Typed settings: executor keys parsed once into dataclasses that keep a valid 0 and refuse an invalid one
by name (through the CLI), the YAML defaults equal to the dataclass defaults, and bad input refused at
plan time, dry runs included."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from schedsweep.errors import ConfigError
from schedsweep.executors.settings import SCHEMAS, LocalSettings, SlurmSettings, parse
from schedsweep.plan.config import builtin_conf_dir

TINY = ["task=quadratic", "full_steps=20", "budget=0.5", "schedule=linear"]


def cli(*args: str, cwd: Path, check: int = 0) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, "-m", "schedsweep", *args], cwd=cwd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == check, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    return proc


@pytest.mark.parametrize("kind", sorted(SCHEMAS))
def test_the_yaml_defaults_are_the_dataclass_defaults(kind: str) -> None:
    data = yaml.safe_load((builtin_conf_dir() / "executor" / f"{kind}.yaml").read_text())
    assert set(data) == {f.name for f in dataclasses.fields(SCHEMAS[kind])}
    assert parse(data) == SCHEMAS[kind]()  # filled from the YAML or from the fields: the same settings


def test_a_zero_is_kept_where_zero_is_valid_and_refused_by_name_where_it_is_not() -> None:
    assert parse({"kind": "slurm", "signal_delay_s": 0, "max_requeues": 0, "gpus_per_node": 0}) == SlurmSettings(
        signal_delay_s=0, max_requeues=0, gpus_per_node=0)
    for key in ("array_parallelism", "nodes", "time_min", "cpus_per_task"):
        with pytest.raises(ConfigError, match=rf"executor\.{key} must be an integer >= 1; got 0"):
            parse({"kind": "slurm", key: 0})
    with pytest.raises(ConfigError, match=r"executor\.max_parallel must be an integer >= 1 \(or null\); got 0"):
        parse({"kind": "local", "max_parallel": 0})
    with pytest.raises(ConfigError, match=r"executor\.time_per_step_s must be a number > 0 \(or null\); got 0"):
        parse({"kind": "slurm", "time_per_step_s": 0})
    with pytest.raises(ConfigError, match=r"executor 'local' has no key\(s\) partition\. Valid keys: max_parallel \(default None\)"):
        parse({"kind": "local", "partition": "gpu"})
    assert parse({"kind": "local", "timeout_min": 30}) == LocalSettings(timeout_min=30.0)


def test_time_limits_from_typed_settings() -> None:
    assert SlurmSettings().time_limit(0.5, 1000) == 60
    assert SlurmSettings(time_per_step_s=0.6, time_safety=1.0).time_limit(0.5, 1000) == 10
    assert SlurmSettings(time_per_step_s=0.01).time_limit(0.5, 10) == 2  # at least 2 minutes
    assert SlurmSettings(time_by_budget={0.5: 7}).time_limit(0.5, 1000) == 7
    assert SlurmSettings(gpus_per_node=4).tasks == 4 and SlurmSettings(gpus_per_node=4, tasks_per_node=1).tasks == 1


@pytest.mark.slow
def test_signal_delay_zero_reaches_the_sbatch_script_and_a_zero_throttle_is_refused(tmp_path: Path) -> None:
    cli("launch", *TINY, "executor=slurm", "executor.signal_delay_s=0", "executor.mem_gb=1.5", "--name", "s",
        "--no-submit", cwd=tmp_path)
    script = cli("export-sbatch", "results/s", "--max-array-size", "4", cwd=tmp_path).stdout
    assert "#SBATCH --signal=USR2@0\n" in script  # `or 60` made it 60
    assert "#SBATCH --mem=1536M\n" in script
    for override, message in (("executor.array_parallelism=0", "executor.array_parallelism must be an integer >= 1; got 0"),
                              ("executor.nodes=0", "executor.nodes must be an integer >= 1; got 0")):
        bad = cli("launch", *TINY, "executor=slurm", override, "--dry-run", cwd=tmp_path, check=2)
        assert message in bad.stderr


@pytest.mark.slow
def test_a_dry_run_checks_overridden_optimizer_values_and_peak_lr_must_be_positive(tmp_path: Path) -> None:
    betas = cli("launch", *TINY, "optimizer=adamw", "optimizer.betas=[2,3]", "--dry-run", cwd=tmp_path, check=2)
    assert "optimizer.betas=[2, 3] is rejected by torch.optim.AdamW" in betas.stderr and "dry run" not in betas.stdout
    momentum = cli("launch", *TINY, "optimizer=sgd", "optimizer.momentum=-1", "--dry-run", cwd=tmp_path, check=2)
    assert "optimizer.momentum" in momentum.stderr
    shown = cli("schedules", "show", "rex", "--steps", "10", "--peak-lr", "-1", cwd=tmp_path, check=2)
    assert "--peak-lr must be a number > 0" in shown.stderr and shown.stdout == ""


def test_a_task_without_target_lists_the_shipped_tasks(tmp_path: Path) -> None:
    from schedsweep.errors import TaskError
    from schedsweep.tasks import resolve

    with pytest.raises(TaskError) as e:
        resolve({"width": 3})
    shipped = sorted(p.stem for p in (builtin_conf_dir() / "task").glob("*.yaml") if p.stem not in ("custom", "script"))
    assert f"task={', '.join(shipped)}" in str(e.value)
