"""Per-step metrics: one explicit Parquet schema, written as closed part files.

A Parquet file is readable only once its footer is written, so no writer stays open for a whole run:
rows are buffered in memory and flushed as `metrics/part-NNNNN.parquet`, each written under a
temporary name and renamed into place. Readers see whole parts or nothing.

A run of the user's own script (schedsweep.client) may log other numeric metrics by name
(`accuracy`, a custom norm): each becomes one more float64 column after the fixed ones, in name
order (`schema_for`). Readers bring any part to that shape with `conform`, so parts with and
without a given extra column concatenate (the missing values are null).

Parts close every 30 s or 1,000 rows, too seldom to follow a run by; the writer also keeps
`metrics/progress.json` ({"steps": last step logged + 1}) at most PROGRESS_S old, which the status view
and the sweep's ETA read (`reached`).
"""

from __future__ import annotations

# A flush may make pyarrow import pandas, which imports this module; at interpreter exit (a script's
# last rows, flushed by the client's atexit hook) that import fails, so it happens now.
import concurrent.futures.thread  # noqa: F401
import json
import math
import os
import time
from pathlib import Path
from typing import Any, Iterable

import pyarrow as pa
import pyarrow.parquet as pq

from schedsweep import files

SCHEMA = pa.schema(
    [
        pa.field("step", pa.int64(), nullable=False),  # update index t = 0..T-1
        pa.field("lr", pa.float64(), nullable=False),  # lr used for update t (param group 0)
        pa.field("loss", pa.float64(), nullable=False),  # training loss of the batch at step t
        pa.field("grad_norm", pa.float64()),  # global L2 norm of the gradient before clipping
        pa.field("grad_norm_l1", pa.float64()),  # global L1 norm (refinement uses it for Adam-type runs)
        pa.field("eval_loss", pa.float64()),  # held-out loss after update t; null between evaluations
        pa.field("samples_seen", pa.int64(), nullable=False),  # training samples consumed up to and including t
        pa.field("wall_s", pa.float64(), nullable=False),  # seconds since the run started
        pa.field("samples_per_s", pa.float64()),  # throughput of step t (eval time excluded)
        pa.field("inherited", pa.bool_(), nullable=False),  # copied from the run this branch forked from
    ]
)
COLUMNS = tuple(SCHEMA.names)
PART_PREFIX = "part-"
PROGRESS = "progress.json"
PROGRESS_S = 0.5
EXTRA = pa.float64()  # the type of every extra metric column


def schema_for(extra: Iterable[str]) -> pa.Schema:
    """SCHEMA followed by one nullable float64 column per extra metric name, in name order."""
    names = sorted(set(extra) - set(COLUMNS))
    return pa.schema([*SCHEMA, *(pa.field(n, EXTRA) for n in names)])


def conform(table: pa.Table) -> pa.Table:
    """`table` in the metrics schema: the fixed columns cast to SCHEMA, then its extra columns as float64.

    Raises KeyError when a fixed column is missing and ArrowInvalid when a value does not cast:
    then the file is not a metrics part.
    """
    schema = schema_for(table.column_names)
    if table.schema.equals(schema):
        return table
    return table.select(schema.names).cast(schema)


class MetricsWriter:
    """Buffers rows and flushes them as closed part files every `flush_rows` rows or `flush_s` seconds."""

    def __init__(self, folder: Path, flush_rows: int = 1000, flush_s: float = 30.0) -> None:
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.flush_rows = flush_rows
        self.flush_s = flush_s
        self._rows: list[dict[str, Any]] = []
        self._last_flush = time.monotonic()
        self._last_progress = -math.inf
        self._next_part = len(part_files(self.folder))

    def append(self, row: dict[str, Any]) -> None:
        self._rows.append(row)
        now = time.monotonic()
        if len(self._rows) >= self.flush_rows or now - self._last_flush >= self.flush_s:
            self.flush()
        elif now - self._last_progress >= PROGRESS_S:
            self._progress(row["step"] + 1)

    def flush(self) -> None:
        self._last_flush = time.monotonic()
        if not self._rows:
            return
        self._progress(self._rows[-1]["step"] + 1)
        rows = [{"inherited": False} | row for row in self._rows]  # a branch's inherited rows are copied, not written here
        table = pa.Table.from_pylist(rows, schema=schema_for(k for row in rows for k in row))
        final = self.folder / f"{PART_PREFIX}{self._next_part:05d}.parquet"
        with files.replacing(final) as tmp:
            pq.write_table(table, tmp)
        self._next_part += 1
        self._rows = []

    def _progress(self, steps: int) -> None:
        self._last_progress = time.monotonic()
        files.write_text(self.folder / PROGRESS, json.dumps({"steps": steps}))


def part_files(folder: Path) -> list[Path]:
    """Closed parts in order. os.listdir, not Path.glob: collect lists 10,000s of folders and glob costs more."""
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    return [folder / n for n in sorted(names) if n.startswith(PART_PREFIX) and n.endswith(".parquet")]


def reached(folder: Path) -> int | None:
    """Steps a run has logged so far (its last logged step + 1, at most PROGRESS_S old); None before its
    first row, or when the run was written by a version without the marker."""
    try:
        return int(json.loads((folder / PROGRESS).read_text(encoding="utf-8"))["steps"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def truncate_parts(folder: Path, keep: int) -> None:
    """Delete the parts after the first `keep`: rows logged after the checkpoint being resumed."""
    for part in part_files(folder)[keep:]:
        part.unlink()


def read_part(path: Path) -> pa.Table:
    """One part file in the metrics schema (the one reader of parts: runs, forks, collect). ParquetFile.read
    is ~4x faster than read_table on small files. KeyError/ArrowInvalid: not our schema."""
    table = pq.ParquetFile(path).read(use_threads=False)
    if "inherited" not in table.column_names:  # written before shared prefixes: nothing inherited
        table = table.append_column("inherited", pa.array([False] * table.num_rows, pa.bool_()))
    return conform(table)


def read_metrics(folder: Path, columns: list[str] | None = None) -> pa.Table:
    """All closed parts of one run, in step order (an empty table with the schema if none), extra columns included."""
    parts = part_files(folder)
    if not parts:
        return SCHEMA.empty_table() if columns is None else SCHEMA.empty_table().select(columns)
    table = pa.concat_tables((read_part(p) for p in parts), promote_options="default")
    if columns is not None:
        table = table.select(columns)
    return table.sort_by("step") if "step" in table.column_names else table
