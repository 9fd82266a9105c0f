"""Collect: every run's metric parts merged into one sweep-level dataset, plus one summary row per run.

    results/<sweep>/collected/
      summary.parquet            one row per planned run (plan order): run_id, every setting key,
                                 status, final and best eval loss, last-k train loss, steps done,
                                 wall time, GPU-hours, samples seen, the last value of every column
                                 (also of the extra metrics a script logged: final_<name>); for a
                                 branch (schedsweep.sharing.branching) the run it forked from, the step, and
                                 the steps and seconds it trained itself
      metrics/chunk-NNNNN.parquet  every run's per-step rows with a run_id column, sorted by
                                 (run_id, step) (schedsweep.results.chunks)

Collecting is incremental: the summary records each run's fingerprint (status.json's mtime and size,
the metrics folder's mtime) and a later collect re-reads only the runs whose fingerprint changed,
rewriting only the chunks that hold them; with nothing changed it only stats two files per run. Everything is written under a
temporary name and renamed into place; a lock keeps two collects of one sweep apart. A run folder that
is missing or unreadable is named in `Collected.problems`, and everything else is still collected.

The report reads the summary (a few columns per run) and, for curves, only the rows of the runs it
plots (column projection and a run_id filter); it never reads every row into pandas.
"""

from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from schedsweep import files
from schedsweep.results import chunks, measure
from schedsweep.results.measure import FINAL, FINAL_OF
from schedsweep.plan import variants
from schedsweep.sweep import store
from schedsweep.errors import ConfigError, ResultsError

COLLECTED = "collected"
SUMMARY = "summary.parquet"
CHUNKS = "metrics"
LAST_K = 20  # steps averaged for train_loss_last_k (fewer when a run has fewer)
VERSION = 4  # 2: branch_of, branch_step, steps_trained, wall_s_trained; 3: trial_steps; 4: script_lr

LABELS = ("task", "optimizer", "schedule", "budget", "steps", "lr", "seed")
REQUIRED_LABELS = ("task", "optimizer", "schedule", "budget", "steps")
MEASURES = (
    "status", "error", "steps_done", "final_eval_loss", "final_loss", "best_eval_loss", "train_loss_last_k",
    "wall_s", "gpus", "gpu_hours", "samples_seen", *(f"final_{c}" for c in FINAL_OF), "n_rows",
    *("branch_of", "branch_step", "steps_trained", "wall_s_trained"),  # shared prefixes: see _branch
    "trial_steps",  # of steps_done, the updates an adaptive schedule's trials took and rewound (AutoLRS)
    "script_lr",  # the peak LR a script reported (its init() default when the sweep set none): fills the lr label
)
BOOKKEEPING = ("problem", "chunk", "fingerprint")  # problem: why a run's files could not be read
RESERVED = frozenset({"id", "run_id", *LABELS, *MEASURES, *BOOKKEEPING})


@dataclass
class Collected:
    """The summary (one row per planned run, plan order) and what happened while collecting."""

    summary: pd.DataFrame
    path: Path
    reread: int = 0
    reused: int = 0
    problems: list[str] = field(default_factory=list)  # "runs/<id>: what is wrong"
    written: bool = True

    def warning(self, shown: int = 10) -> str | None:
        """'2 run folders missing or unreadable (...): runs/a (no folder), ...', or None."""
        if not self.problems:
            return None
        named = "; ".join(self.problems[:shown]) + (f"; and {len(self.problems) - shown} more" if len(self.problems) > shown else "")
        return f"{len(self.problems)} run folder(s) missing or unreadable, reported as far as they go: {named}"


def collect(sweep_dir: Path, last_k: int = LAST_K, rebuild: bool = False) -> Collected:
    """Bring `collected/` up to date with the run folders and return the summary.

    Only runs whose fingerprint changed since the last collect are re-read (all of them when
    `rebuild`, when `last_k` differs from the last collect's, or when the files are unreadable). When
    nothing changed (plan, sweep.yaml and every run folder as last time) nothing is written and the
    stored summary is returned. When the sweep folder is read-only the summary is computed in memory
    and `written` is False.
    """
    if last_k < 1:
        raise ResultsError(f"--last-k must be at least 1 (got {last_k}).")
    sweep_dir = store.require_sweep(Path(sweep_dir))
    out = sweep_dir / COLLECTED
    inputs = _inputs(sweep_dir)
    if not (out / SUMMARY).exists():  # check the plan before creating anything in the folder
        label_frame(store.read_plan(sweep_dir), sweep_dir / store.PLAN)
    try:
        (out / CHUNKS).mkdir(parents=True, exist_ok=True)
    except OSError:
        return _in_memory(sweep_dir, last_k, out)
    with _lock(out):
        stored = None if rebuild else _read_old(out / SUMMARY, last_k)
        if stored is not None and _meta(stored).get("inputs") == inputs:
            ids = stored["run_id"].to_pylist()
            fingerprints, missing = measure.scan(sweep_dir, ids)
            if [fingerprints[i] for i in ids] == stored["fingerprint"].to_pylist():
                summary = _decode(stored, _meta(stored).get("json_columns", []))
                return Collected(summary, out / SUMMARY, 0, len(ids), _named(missing, summary))
        records = store.read_plan(sweep_dir)
        labels = label_frame(records, sweep_dir / store.PLAN)
        ids = list(labels["run_id"])
        fingerprints, missing = measure.scan(sweep_dir, ids)
        old = stored.to_pandas().set_index("run_id") if stored is not None else None
        same, chunk_of = _reuse(old, ids, fingerprints)
        measure_one = functools.partial(measure.measure, sweep_dir, last_k=last_k)
        changed = [i for i in ids if i not in same]
        dropped = set(old.index) - set(ids) if old is not None else set()
        try:
            fresh = chunks.update(out / CHUNKS, changed, dropped, chunk_of, measure_one)
        except chunks.UnreadableChunk:  # a damaged collected file: collect everything again
            chunks.remove_unused(out / CHUNKS, set())
            old, same, chunk_of, changed = None, set(), {}, ids
            fresh = chunks.update(out / CHUNKS, changed, set(), chunk_of, measure_one)
        summary = _assemble(labels, old, same, fresh, chunk_of, fingerprints, _gpus(records, sweep_dir))
        meta = {"version": VERSION, "last_k": last_k, "json_columns": _json_columns(summary), "inputs": inputs}
        chunks.write_table(pa.Table.from_pandas(_encode(summary), preserve_index=False), out / SUMMARY, meta)
        chunks.remove_unused(out / CHUNKS, set(summary["chunk"].dropna()))
    return Collected(summary, out / SUMMARY, len(changed), len(ids) - len(changed), _named(missing, summary))


def read_summary(sweep_dir: Path) -> pd.DataFrame:
    """The summary last written by `collect` (decoded: axis values as the plan gave them)."""
    path = Path(sweep_dir) / COLLECTED / SUMMARY
    if not path.is_file():
        raise ResultsError(f"'{sweep_dir}' has not been collected yet: run 'schedsweep collect {sweep_dir}'.")
    table = pq.read_table(path)
    return _decode(table, _meta(table).get("json_columns", []))


def runs_frame(summary: pd.DataFrame) -> pd.DataFrame:
    """The summary as schedsweep.results.report.rank reads it: `id` for run_id, one row per planned run."""
    return summary.drop(columns=list(BOOKKEEPING)).rename(columns={"run_id": "id"})


def read_rows(sweep_dir: Path, summary: pd.DataFrame, run_ids: list[str], columns: list[str]) -> pd.DataFrame:
    """The per-step `columns` of the given runs (plus run_id), from the chunks that hold them only."""
    wanted = summary[summary["run_id"].isin(run_ids) & summary["chunk"].notna()]
    folder = Path(sweep_dir) / COLLECTED / CHUNKS
    try:
        return chunks.read(folder, wanted["chunk"], wanted["run_id"], columns)
    except (OSError, pa.ArrowException) as e:
        raise ResultsError(f"cannot read '{folder}' ({str(e).splitlines()[0][:200]}); "
                           f"collect it again: schedsweep collect --rebuild {sweep_dir}") from None


# ---- labels: the plan's view of every run


def label_frame(records: list[dict[str, Any]], plan_path: Path) -> pd.DataFrame:
    """One row per plan record: run_id, the label columns, one column per setting key (object dtype).

    A schedule label whose runs differ in a schedule key names them: "cosine (final=0.1)".
    """
    meanings = [variants.meaning_of(r) for r in records]
    # A key that would shadow a report column keeps its own name under an "axes." prefix.
    keys = variants.differing(records, meanings)
    extras = {k: f"axes.{k}" if k in RESERVED or k.startswith("_") else k for k in keys}
    named = variants.schedule_variants(records, meanings, keys)
    rows: list[dict[str, Any]] = []
    for lineno, record in enumerate(records, 1):
        labels = record.get("labels") or {}
        lacking = [k for k in ("id",) if k not in record] + [k for k in REQUIRED_LABELS if k not in labels]
        if lacking:
            raise ResultsError(
                f"'{plan_path}' line {lineno} lacks {', '.join(lacking)}: it was not written by "
                "'schedsweep launch'. Re-plan the sweep to report on it."
            )
        meaning = meanings[lineno - 1]
        rows.append({"run_id": record["id"], **{k: labels.get(k) for k in LABELS},
                     "schedule": variants.schedule_name(record, meaning, named.get(labels.get("schedule"), [])),
                     **{column: hashable(variants.shown(record, meaning, key)) for key, column in extras.items()}})
    columns = ["run_id", *LABELS, *extras.values()]
    frame = pd.DataFrame(rows, columns=columns)
    # Axis values stay as given (object dtype): pandas would read [0.25, 500] as floats, turning
    # 500 steps into 500.0, and [None, 64] as [NaN, 64.0].
    for column in ("budget", *extras.values()):
        frame[column] = pd.Series([r[column] for r in rows], dtype=object)
    return frame.astype({"lr": float, "steps": int})


def hashable(value: Any) -> Any:
    """Setting values group rows, so lists and dicts (e.g. betas) become their canonical JSON text."""
    if isinstance(value, (list, dict)):
        return json.dumps(value, sort_keys=True)
    return value


def sharing_notes(summary: pd.DataFrame, kept: frozenset[str] | set[str] = frozenset()) -> list[str]:
    """What training shared prefixes once saved: one note, or none when no run branched; `kept`: the runs
    that branched from checkpoints an earlier launch kept (keep_trunk), whose saving is named apart."""
    branched = summary["branch_step"] > 0
    if not branched.any():
        return []
    trained, total = int(summary["steps_trained"].sum()), int(summary["steps_done"].sum())
    hours = f"; {summary['gpu_hours'].sum():.2f} GPU-hours" if summary["gpus"].sum() > 0 else ""
    later = branched & summary["run_id"].isin(list(kept))
    reused = (f"; {int(later.sum())} of them from checkpoints kept by an earlier launch, "
              f"{int(summary.loc[later, 'branch_step'].sum()):,} steps not trained again") if later.any() else ""
    return [f"shared prefixes: {int(branched.sum())} runs branched from another run's checkpoint{reused}; "
            f"{trained:,} of {total:,} steps trained (-{1 - trained / total:.0%}){hours}, shared steps counted once"]


# ---- incremental chunk maintenance


def _read_old(path: Path, last_k: int) -> pa.Table | None:
    """The previous summary, or None when absent, unreadable, of another version or another last_k."""
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException):
        return None
    meta = _meta(table)
    if meta.get("version") != VERSION or meta.get("last_k") != last_k:
        return None
    return table


def _reuse(old: pd.DataFrame | None, run_ids: list[str], fingerprints: dict[str, str]) -> tuple[set[str], dict[str, str | None]]:
    """The planned runs unchanged since the last collect (their rows are kept), and every known run's chunk."""
    if old is None:
        return set(), {}
    chunk_of = {i: (c if isinstance(c, str) else None) for i, c in old["chunk"].items()}
    now = pd.Series(fingerprints).reindex(old.index)
    same = old.index[(old["fingerprint"] == now).to_numpy()]
    return set(same) & set(run_ids), chunk_of


def _lock(out: Path) -> Any:
    return files.locked(out / ".lock")  # a second collect waits: collects are short


def _in_memory(sweep_dir: Path, last_k: int, out: Path) -> Collected:
    records = store.read_plan(sweep_dir)
    labels = label_frame(records, sweep_dir / store.PLAN)
    ids = list(labels["run_id"])
    fingerprints, missing = measure.scan(sweep_dir, ids)
    fresh = {i: measure.measure(sweep_dir, i, last_k)[0] for i in ids}
    summary = _assemble(labels, None, set(), fresh, {}, fingerprints, _gpus(records, sweep_dir))
    named = [*_named(missing, summary), f"cannot write '{out}': the summary was computed in memory"]
    return Collected(summary, out / SUMMARY, len(ids), 0, named, written=False)


# ---- assembling and storing the summary


def _assemble(labels: pd.DataFrame, old: pd.DataFrame | None, same: set[str], fresh: dict[str, dict[str, Any]],
              chunk_of: dict[str, str | None], fingerprints: dict[str, str], gpus: dict[str, float]) -> pd.DataFrame:
    """Labels from the plan, measures kept from the old summary (unchanged runs) or just measured."""
    ids = labels["run_id"]
    extras = _extra_columns(old, same, fresh)
    columns = [*[c for c in MEASURES if c not in ("gpus", "gpu_hours")], *extras, "problem"]
    parts = []
    if old is not None and same:
        parts.append(old.loc[[i for i in ids if i in same]].reindex(columns=columns))
    if fresh:
        parts.append(pd.DataFrame.from_dict(fresh, orient="index").reindex(columns=columns))
    measured = pd.concat(parts) if parts else pd.DataFrame(columns=columns)
    measured = measured.reindex(list(ids)).reset_index(drop=True)
    summary = pd.concat([labels.reset_index(drop=True), measured], axis=1)
    summary["lr"] = summary["lr"].fillna(summary["script_lr"].astype(float))  # a script's own LR (train.script)
    summary["gpus"] = [float(gpus.get(i, 0.0)) for i in ids]
    summary["gpu_hours"] = summary["wall_s_trained"].astype(float) * summary["gpus"] / 3600  # shared work once
    for column in ("error", "problem"):
        summary[column] = pd.Series([_plain(v) for v in summary[column]], dtype=object)
    summary["chunk"] = pd.Series([chunk_of.get(i) for i in ids], dtype=object)
    summary["fingerprint"] = [fingerprints.get(i, "") for i in ids]
    counts = ("steps_done", "samples_seen", "n_rows", "branch_step", "steps_trained", "trial_steps")
    numeric = [c for c in MEASURES if c not in ("status", "error", "branch_of", *counts)]
    summary["branch_of"] = pd.Series([_plain(v) for v in summary["branch_of"]], dtype=object)
    summary = summary.astype({**dict.fromkeys([*numeric, *extras], float), **dict.fromkeys(counts, int)})
    return summary[["run_id", *[c for c in labels.columns if c != "run_id"], *MEASURES, *extras, *BOOKKEEPING]]


def _extra_columns(old: pd.DataFrame | None, same: set[str], fresh: dict[str, dict[str, Any]]) -> list[str]:
    """final_<name> of every extra metric that a kept or freshly measured run logged, in name order."""
    names = {k for row in fresh.values() for k in row if k.startswith(FINAL) and k not in MEASURES}
    if old is not None and same:
        kept = old.loc[[i for i in old.index if i in same]]
        names |= {c for c in kept.columns if c.startswith(FINAL) and c not in MEASURES and kept[c].notna().any()}
    return sorted(names)


def _json_columns(summary: pd.DataFrame) -> list[str]:
    """Object columns whose values are not all one scalar type: stored as JSON text, decoded on read."""
    out = []
    for column in summary.columns:
        if summary[column].dtype == object and column not in ("run_id", "status", "error", "chunk", "fingerprint"):
            kinds = {type(v) for v in summary[column] if v is not None}
            if len(kinds) > 1 or not kinds <= {str, int, float, bool}:
                out.append(column)
    return out


def _encode(summary: pd.DataFrame) -> pd.DataFrame:
    frame = summary.copy()
    for column in _json_columns(summary):
        frame[column] = [json.dumps(v) for v in summary[column]]
    return frame


def _decode(table: pa.Table, json_columns: list[str]) -> pd.DataFrame:
    """The stored summary as a frame; axis values back as the plan gave them (64 stays 64, None stays None)."""
    frame = table.to_pandas()
    for column in table.column_names:
        if column in json_columns:
            values = [json.loads(v) for v in table[column].to_pylist()]
        elif column in ("budget", "error", "problem", "chunk") or (column not in RESERVED and not column.startswith(FINAL)):
            values = table[column].to_pylist()  # Python values: no NaN for null, no 64.0 for 64
        else:
            continue
        frame[column] = pd.Series(values, dtype=object, index=frame.index)
    return frame


def _plain(value: Any) -> Any:
    """numpy scalars to Python ones, NaN and NA to None."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    return value.item() if isinstance(value, np.generic) else value


def _meta(table: pa.Table) -> dict[str, Any]:
    raw = (table.schema.metadata or {}).get(b"schedsweep")
    return json.loads(raw) if raw else {}


def _named(missing: dict[str, str], summary: pd.DataFrame) -> list[str]:
    """'runs/<id>: why' for every run folder missing (from the scan) or unreadable (kept in the summary), plan order."""
    return [f"runs/{i}: {missing.get(i) or why}" for i, why in zip(summary["run_id"], summary["problem"])
            if i in missing or isinstance(why, str)]


def _inputs(sweep_dir: Path) -> str:
    """mtime and size of plan.jsonl and sweep.yaml: the labels and GPU counts come from them."""
    stamps = []
    for name in (store.PLAN, store.SWEEP_CONFIG):
        try:
            st = os.stat(sweep_dir / name)
            stamps.append(f"{st.st_mtime_ns}:{st.st_size}")
        except OSError:
            stamps.append("-")
    return "|".join(stamps)


# ---- GPUs per run


def _gpus(records: list[dict[str, Any]], sweep_dir: Path) -> dict[str, float]:
    """GPUs per run: a `gpus` key in the run's labels or spec (or spec.resources), else the Slurm
    executor's nodes x gpus_per_node from sweep.yaml, else 0 (local and debug runs are on CPU)."""
    from schedsweep.executors.settings import SlurmSettings, parse

    try:
        executor = parse(store.read_executor(sweep_dir))
    except ConfigError:  # sweep.yaml unreadable or from an older version: count no GPUs rather than fail
        executor = None
    default = float(executor.gpus_per_node * executor.nodes) if isinstance(executor, SlurmSettings) else 0.0
    out = {}
    for record in records:
        labels, spec = record.get("labels") or {}, record.get("spec") or {}
        value = labels.get("gpus", spec.get("gpus", (spec.get("resources") or {}).get("gpus")))
        out[record["id"]] = float(value) if isinstance(value, (int, float)) else default
    return out
