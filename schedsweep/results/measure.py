"""Measure one run folder: its fingerprint (has it changed since the last collect?), its summary numbers
(status, losses, steps, wall time, the last value of every column) and its per-step rows."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from schedsweep.sweep.run_folder import METRICS, RUNS, STATUS, RunFolder
from schedsweep.train import metrics
from schedsweep.sweep.status import FAILED

FINAL_OF = ("lr", "grad_norm", "grad_norm_l1", "samples_per_s")  # last logged value -> final_<column>
FINAL = "final_"  # also the prefix of an extra metric's last value (a script's `accuracy` -> final_accuracy)


def scan(sweep_dir: Path, run_ids: list[str]) -> tuple[dict[str, str], dict[str, str]]:
    """Each run's fingerprint, from two stat calls; and the run folders that are missing.

    Fingerprint: status.json's mtime and size, and the metrics folder's mtime, which changes whenever a
    part is renamed into it or removed (parts are never rewritten in place). Plain string paths:
    pathlib objects cost more than the stat calls over 10,000 runs.
    """
    runs = os.path.join(sweep_dir, RUNS)  # plain strings of the run folder's names (schedsweep.sweep.run_folder)
    fingerprints: dict[str, str] = {}
    missing: dict[str, str] = {}
    for run_id in run_ids:
        folder = f"{runs}/{run_id}"
        try:
            st = os.stat(f"{folder}/{STATUS}")
            status = f"{st.st_mtime_ns}:{st.st_size}"
        except OSError:
            status = "-"
        try:
            parts = str(os.stat(f"{folder}/{METRICS}").st_mtime_ns)
        except OSError:
            parts = "-"
        if status == parts == "-" and not os.path.isdir(folder):
            missing[run_id] = "no run folder"
        fingerprints[run_id] = f"{status}|{parts}"
    return fingerprints, missing


def measure(sweep_dir: Path, run_id: str, last_k: int) -> tuple[dict[str, Any], pa.Table | None]:
    """A run's summary numbers and its rows (with run_id); None rows when it logged none or they are unreadable."""
    folder = RunFolder.of(sweep_dir, run_id)
    st = folder.status()
    problem = None
    if st.status == FAILED and st.updated == "" and st.error:  # read_status's marks of an unreadable status.json
        problem = st.error.splitlines()[0]
    row: dict[str, Any] = {
        "status": st.status, "error": st.error, "steps_done": int(st.steps_done), "final_eval_loss": _num(st.final_eval_loss),
        "final_loss": _num(st.final_loss), "best_eval_loss": _num(st.best_eval_loss), "train_loss_last_k": math.nan,
        "wall_s": float(st.wall_s or 0.0), "samples_seen": 0, **{f"final_{c}": math.nan for c in FINAL_OF}, "n_rows": 0,
        "problem": problem, "branch_of": None, "branch_step": 0, "steps_trained": int(st.steps_done),
        "wall_s_trained": float(st.wall_s or 0.0), "trial_steps": int(st.trial_steps),
        "script_lr": math.nan if st.peak_lr is None else float(st.peak_lr),
    }
    table = None
    parts = metrics.part_files(folder.metrics)
    try:
        if parts:
            table = pa.concat_tables((metrics.read_part(p) for p in parts), promote_options="default")
    except (OSError, ValueError, pa.ArrowException) as e:
        row["problem"] = f"unreadable metrics ({type(e).__name__}: {str(e).splitlines()[0][:120]})"
        table = None
    if table is None or table.num_rows == 0:
        return row, None
    step = table["step"].to_numpy()
    if len(step) > 1 and not (np.diff(step) > 0).all():  # parts always come in step order; be sure anyway
        table = table.sort_by("step")
        step = table["step"].to_numpy()
    window = step >= step[-1] - last_k + 1
    row.update(
        steps_done=max(row["steps_done"], int(step[-1]) + 1),
        train_loss_last_k=float(np.mean(table["loss"].to_numpy()[window])),
        wall_s=row["wall_s"] or float(table["wall_s"][-1].as_py()),
        samples_seen=int(table["samples_seen"][-1].as_py()),
        n_rows=table.num_rows,
        **{f"{FINAL}{c}": _last_valid(table[c]) for c in (*FINAL_OF, *table.column_names[len(metrics.COLUMNS):])},
    )
    # A run from init_from logs from its checkpoint's step: it trained only the steps it logged.
    row.update(steps_trained=row["steps_done"] - int(step[0]), wall_s_trained=row["wall_s"])
    row.update(_branch(folder, table, row["steps_done"], row["wall_s"]))
    return row, table.add_column(0, "run_id", pa.array([run_id] * table.num_rows, pa.string()))


def _branch(folder: RunFolder, table: pa.Table, steps_done: int, wall_s: float) -> dict[str, Any]:
    """branch_of, branch_step (inherited rows), and the steps and seconds the run trained itself.

    From the rows actually inherited, not from the plan: a branch whose fork was gone trained alone.
    The inherited seconds are the parent's (its wall clock at the fork), so GPU-hours count them once.
    """
    inherited = table["inherited"].fill_null(False).to_numpy(zero_copy_only=False)
    k = int(inherited.sum())
    if not k:
        return {}
    try:
        of = (folder.branch() or {}).get("of")
    except (OSError, ValueError):
        of = None
    shared_s = float(table["wall_s"][k - 1].as_py())
    return {"branch_of": of, "branch_step": k, "steps_trained": steps_done - k, "wall_s_trained": max(0.0, wall_s - shared_s)}


def _last_valid(column: pa.ChunkedArray) -> float:
    values = column.drop_null().to_numpy()
    return float(values[-1]) if len(values) else math.nan


def _num(value: Any) -> float:
    return math.nan if value is None else float(value)
