"""Runs trained with other code than a launch would train with now, and what the user chose for them.

Each run records the code it started from (schedsweep.train.pinned: its task's source digest and the package
version, schedsweep.plan.code). A launch compares that with the code of the launch folder now; when they
differ, the sweep would mix two codes under one run id, so the launch stops first and names the runs:

- `--rerun-stale`: their results, checkpoints and code record go; they train again with the current code;
- `--keep-stale`: they stay, and are listed in sweep/stale.json, which the report turns into a note.

A run a live process is training now (a claim) cannot be reset: the launch says so and leaves it alone.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from schedsweep import files
from schedsweep.errors import SchedsweepError
from schedsweep.plan import code
from schedsweep.sweep import claims
from schedsweep.sweep.run_folder import RunFolder

FILE = "stale.json"  # runs kept with other code (--keep-stale): id -> what trained it
STOP, RERUN, KEEP = "stop", "rerun", "keep"


class StaleCode(SchedsweepError):
    """Runs of the sweep were trained with other code; the user chooses --rerun-stale or --keep-stale."""


@dataclass(frozen=True)
class Stale:
    run: str
    recorded: dict[str, Any]  # what the run was trained with
    now: dict[str, Any]  # what this launch would train it with


def find(sweep_dir: Path, records: list[Mapping[str, Any]]) -> list[Stale]:
    """The runs whose recorded code differs from the code of this process's launch folder now."""
    from schedsweep.train import pinned

    current: dict[str, dict[str, Any]] = {}
    stale = []
    for record in records:
        recorded = pinned.read(RunFolder.of(sweep_dir, record["id"]).path)
        if recorded is None:
            continue
        task = record["spec"]["task"]
        key = json.dumps(task, sort_keys=True, default=str)
        if key not in current:
            current[key] = code.task_code(task)
        if code.fingerprint(recorded) != code.fingerprint(current[key]):
            stale.append(Stale(record["id"], recorded, current[key]))
    return stale


def message(sweep_dir: Path, stale: list[Stale]) -> str:
    shown = ", ".join(s.run for s in stale[:8]) + (f" and {len(stale) - 8} more" if len(stale) > 8 else "")
    first = stale[0]
    return (f"{len(stale)} run(s) of sweep '{sweep_dir}' were trained with other code than this launch would train "
            f"with: {shown} (trained with {code.describe(first.recorded)}; now {code.describe(first.now)}). "
            "Nothing was trained. Relaunch with --rerun-stale to train them again with the current code, or "
            "--keep-stale to keep their results (the report then notes them).")


def settle(sweep_dir: Path, records: list[Mapping[str, Any]], choice: str) -> list[Stale]:
    """Apply the user's choice to the stale runs: STOP raises StaleCode naming them; RERUN resets them;
    KEEP records them in stale.json. The stale runs found."""
    kept = _kept(sweep_dir)
    stale = [s for s in find(sweep_dir, records) if choice != STOP or kept.get(s.run) != s.recorded]  # kept earlier: accepted
    if not stale:
        return []
    if choice == STOP:
        raise StaleCode(message(sweep_dir, stale))
    if choice == KEEP:
        files.write_json(sweep_dir / FILE, kept | {s.run: s.recorded for s in stale})
        return stale
    busy = [s.run for s in stale if (c := claims.read(RunFolder.of(sweep_dir, s.run).path)) is not None and not claims.gone(c)]
    if busy:
        raise StaleCode(f"--rerun-stale: run(s) {', '.join(busy)} of '{sweep_dir}' are being trained right now; "
                        f"cancel them first (schedsweep cancel {sweep_dir}), then relaunch.")
    for s in stale:
        reset(RunFolder.of(sweep_dir, s.run).path)
    files.write_json(sweep_dir / FILE, {k: v for k, v in kept.items() if k not in {s.run for s in stale}})
    return stale


def reset(path: Path) -> None:
    """Everything a run trained goes (status, metrics, checkpoint, forks, code record): it starts again from
    step 0. Its run.json, claims and attempts history stay."""
    from schedsweep.sharing import forks

    run = RunFolder(path)
    for file in (run.status_file, run.checkpoint, path / forks.FORK_ROWS, run.code_file, run.previous_status_file):
        file.unlink(missing_ok=True)
    for folder in (run.metrics, run.forks):
        shutil.rmtree(folder, ignore_errors=True)


def _kept(sweep_dir: Path) -> dict[str, Any]:
    try:
        return dict(files.read_json(sweep_dir / FILE))
    except (OSError, ValueError):
        return {}


def notes(sweep_dir: Path) -> list[str]:
    """The report's note on runs kept with other code (--keep-stale); none when there are none."""
    kept = _kept(sweep_dir)
    if not kept:
        return []
    first = next(iter(kept.values()))
    return [f"{len(kept)} run(s) were kept with code other than the sweep's latest launch (--keep-stale), e.g. "
            f"{next(iter(kept))} trained with {code.describe(first)}; --rerun-stale trains them again."]
