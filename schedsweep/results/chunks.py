"""The collected metrics dataset: every run's rows in a few Parquet files, kept up to date run by run.

    collected/metrics/chunk-NNNNN.parquet   the metrics schema plus run_id, sorted by (run_id, step)

A chunk holds up to CHUNK_RUNS runs. `update` rewrites only the chunks that lose or gain a run (a
run changed, was added, or left the plan); each file is written under a temporary name and renamed
into place. Which chunk holds a run is recorded by the caller (schedsweep.results.collect's summary).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from schedsweep import files

CHUNK_RUNS = 200  # 200 runs x 1,000 steps = 0.2M rows (~5 MB) per file: few files, cheap rewrites
ROW_GROUP = 65_536  # ~65 runs of 1,000 steps per row group: a run_id filter skips the others
Measure = Callable[[str], "tuple[dict[str, Any], pa.Table | None]"]


class UnreadableChunk(Exception):
    """A chunk cannot be read back (a disk error, a hand edit): collect everything again."""


def update(folder: Path, changed: list[str], dropped: set[str], chunk_of: dict[str, str | None],
           measure: Measure) -> dict[str, dict[str, Any]]:
    """Measure the changed runs and rewrite every chunk that loses or gains rows; updates chunk_of.

    `measure(run_id)` returns the run's summary row and its rows (run_id first, step order) or None.
    One chunk at a time, so memory holds about one chunk's rows: first the chunks that hold changed
    runs or runs no longer planned, then new runs fill the last chunk and then fresh ones.
    Returns the summary rows of the changed runs.
    """
    sizes: dict[str, int] = {}
    for name in chunk_of.values():
        if name:
            sizes[name] = sizes.get(name, 0) + 1
    leaving: dict[str, set[str]] = {}  # chunk -> runs whose old rows leave it
    staying: dict[str, list[str]] = {}  # chunk -> changed runs whose new rows replace them there
    new: list[str] = []
    for run_id in dropped:
        name = chunk_of.pop(run_id, None)
        if name:
            leaving.setdefault(name, set()).add(run_id)
            sizes[name] -= 1
    for run_id in changed:
        name = chunk_of.get(run_id)
        if name:
            leaving.setdefault(name, set()).add(run_id)
            staying.setdefault(name, []).append(run_id)
        else:
            new.append(run_id)
    measured: dict[str, dict[str, Any]] = {}
    for name in sorted(leaving):
        tables = []
        for run_id in staying.get(name, []):
            measured[run_id], table = measure(run_id)
            if table is None:
                chunk_of[run_id] = None
                sizes[name] -= 1
            else:
                tables.append(table)
        rewrite(folder / name, tables, leaving[name])

    number = max((int(n[6:11]) for n in sizes), default=-1)
    current, tables = (_name(number) if number >= 0 else None), []
    for run_id in new:
        measured[run_id], table = measure(run_id)
        chunk_of[run_id] = None
        if table is None:
            continue
        if current is None or sizes.get(current, 0) >= CHUNK_RUNS:
            if tables:
                rewrite(folder / current, tables, set())
            number, tables = number + 1, []
            current = _name(number)
        sizes[current] = sizes.get(current, 0) + 1
        chunk_of[run_id] = current
        tables.append(table)
    if tables and current:
        rewrite(folder / current, tables, set())
    return measured


def rewrite(path: Path, new: list[pa.Table], drop: set[str]) -> None:
    """Replace `path` by its runs minus those in `drop`, plus `new` (one table per run), in run_id order.

    Every table holds one run's rows in step order, so ordering whole runs by id sorts the file by
    (run_id, step) without sorting rows: the pieces are zero-copy slices.
    """
    blocks: dict[str, pa.Table] = {}
    if path.exists():
        try:
            old = pq.read_table(path)
        except (OSError, pa.ArrowException) as e:
            raise UnreadableChunk(path) from e
        ids = old["run_id"].to_numpy(zero_copy_only=False)
        starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
        for start, end in zip(starts, [*starts[1:], len(ids)]):
            if ids[start] not in drop:
                blocks[ids[start]] = old.slice(start, end - start)
    for table in new:
        blocks[table["run_id"][0].as_py()] = table
    if not blocks:
        path.unlink(missing_ok=True)
        return
    # promote: runs that logged different extra metrics share a chunk, with nulls where a run has none
    write_table(pa.concat_tables([blocks[k] for k in sorted(blocks)], promote_options="default"), path)


def remove_unused(folder: Path, used: set[str]) -> None:
    """Delete every file in `folder` but `used`: chunks of runs no longer planned, temp files of a killed collect."""
    for entry in os.scandir(folder):
        if entry.name not in used:
            Path(entry.path).unlink(missing_ok=True)


def read(folder: Path, chunks: Iterable[str], run_ids: Iterable[str], columns: list[str]) -> pd.DataFrame:
    """run_id and `columns` of the given runs, reading only `chunks` and, in them, row groups that can hold the runs."""
    files = sorted({str(folder / c) for c in chunks})
    names = ["run_id", *[c for c in columns if c != "run_id"]]
    if not files:
        return pd.DataFrame({c: pd.Series(dtype=object if c == "run_id" else float) for c in names})
    ids = pa.array(sorted(set(run_ids)), type=pa.string())
    return ds.dataset(files, format="parquet").to_table(columns=names, filter=pc.field("run_id").isin(ids)).to_pandas()


def write_table(table: pa.Table, path: Path, meta: dict[str, Any] | None = None) -> None:
    """Write `table` to `path` under a temporary name, then rename; `meta` goes in the schema metadata."""
    if meta is not None:
        table = table.replace_schema_metadata({**(table.schema.metadata or {}), b"schedsweep": json.dumps(meta).encode()})
    with files.replacing(path) as tmp:
        # Dictionary encoding only where values repeat (ids, names): on float columns it costs 7x the write time.
        pq.write_table(table, tmp, row_group_size=ROW_GROUP, compression="zstd",
                       use_dictionary=[c for c in ("run_id", "status", "task", "optimizer", "schedule") if c in table.column_names])


def _name(number: int) -> str:
    return f"chunk-{number:05d}.parquet"
