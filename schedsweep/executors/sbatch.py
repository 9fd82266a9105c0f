"""A sweep as a plain sbatch array script, rendered from a template users copy and edit.

The template holds no logic: `string.Template` placeholders, each filled with a shell-quoted
value. Array task i runs `schedsweep run SWEEP --index OFFSET+i`, the same entry point
(schedsweep.train.run.main) that submitit submits. Slurm refuses array indices from MaxArraySize up, so a
larger sweep is cut into chunks: the one script is submitted once per chunk, each submission naming
its array and its offset (`sbatch --array=0-15 --export=ALL,SCHEDSWEEP_INDEX_OFFSET=16 SCRIPT`).
"""

from __future__ import annotations

import shlex
import string
import sys
from dataclasses import dataclass
from pathlib import Path

from schedsweep.executors import slurm
from schedsweep.executors.settings import SlurmSettings
from schedsweep.sweep import store
from schedsweep.sweep.run_folder import RunFolder
from schedsweep.plan.config import PACKAGE_DIR
from schedsweep.errors import ConfigError

TEMPLATE = "array.sbatch"
OFFSET = "SCHEDSWEEP_INDEX_OFFSET"  # the template reads it; unset means 0


@dataclass(frozen=True)
class Chunk:
    """One submission of the script: array tasks 0..size-1 train runs offset..offset+size-1."""

    offset: int
    size: int
    throttle: int

    @property
    def array(self) -> str:
        return f"0-{self.size - 1}%{self.throttle}"

    def command(self, script: str) -> str:
        return shlex.join(["sbatch", f"--array={self.array}", f"--export=ALL,{OFFSET}={self.offset}", script])


def chunks(n_runs: int, max_size: int, executor: SlurmSettings) -> list[Chunk]:
    """Plan order cut into arrays of at most max_size tasks, sharing the sweep's throttle."""
    offsets = range(0, n_runs, max_size)
    shares = slurm.throttles(executor, len(offsets))
    return [Chunk(o, min(max_size, n_runs - o), min(share, max_size, n_runs - o)) for o, share in zip(offsets, shares)]


def default_template() -> Path:
    for folder in (PACKAGE_DIR / "sbatch_templates", PACKAGE_DIR.parent / "sbatch_templates"):
        if (folder / TEMPLATE).is_file():
            return folder / TEMPLATE
    raise ConfigError(f"the built-in sbatch template {TEMPLATE} is missing next to {PACKAGE_DIR}.")


def submit_commands(parts: list[Chunk], script: str) -> list[str]:
    """The sbatch lines that run the whole sweep: plain `sbatch SCRIPT` when one array holds it."""
    return [shlex.join(["sbatch", script])] if len(parts) == 1 else [c.command(script) for c in parts]


def render(sweep_dir: Path, executor: SlurmSettings, max_size: int, template: Path | None = None) -> tuple[str, list[Chunk]]:
    """The sbatch script for every run of the sweep (the longest run's time limit) and its chunks.
    The script's own --array is the first chunk's: with one chunk, plain `sbatch SCRIPT` runs it all."""
    records = store.read_plan(sweep_dir)
    parts = chunks(len(records), max_size, executor)
    path = template or default_template()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"cannot read sbatch template '{path}': {e.strerror}.") from None
    options = slurm.job_options(executor)
    nodes, tasks, cpus = (options.pop(k) for k in ("nodes", "ntasks-per-node", "cpus-per-task"))  # the template's own lines
    lines = [f"#SBATCH --{k}" if v is True else f"#SBATCH --{k}={shlex.quote(str(v))}" for k, v in options.items() if v not in (None, False)]
    minutes = max(executor.time_limit(r["labels"]["budget"], r["labels"]["steps"]) for r in records)
    values = {
        "job_name": f"schedsweep-{sweep_dir.name}",
        "array": parts[0].array,
        "time": str(minutes),
        "nodes": str(nodes),
        "tasks_per_node": str(tasks),
        "cpus_per_task": str(cpus),
        "log": str(sweep_dir.resolve() / "sbatch" / "%A_%a.log"),
        "signal_delay_s": str(executor.signal_delay_s),
        "python": sys.executable,
        "sweep": str(sweep_dir.resolve()),
        "max_requeues": str(executor.max_requeues),
    }
    quoted = {k: shlex.quote(v) for k, v in values.items()}
    quoted["sbatch_options"] = "\n".join(lines)
    quoted["setup"] = "\n".join(executor.setup)  # shell lines the user wrote: kept verbatim
    try:
        return string.Template(text).substitute(quoted), parts
    except (KeyError, ValueError) as e:
        valid = ", ".join(sorted(quoted))
        raise ConfigError(f"sbatch template '{path}' has an unknown or malformed placeholder ({e}); valid: {valid}.") from None


def prepare_all(sweep_dir: Path) -> None:
    """Every run of the plan gets its run.json and the log folder exists, as the script needs."""
    for record in store.read_plan(sweep_dir):
        folder = RunFolder.of(sweep_dir, record["id"])
        if not folder.has_record():
            folder.write_record(record)
    (sweep_dir / "sbatch").mkdir(exist_ok=True)
