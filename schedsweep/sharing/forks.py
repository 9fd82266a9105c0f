"""Forks on disk: a parent keeps its state at each fork step; a branch starts from a copy of it.

    runs/<parent>/forks/<k>/checkpoint.pt      the parent's checkpoint before update k
    runs/<parent>/forks/<k>/inherited.parquet  its metric rows 0..k-1, marked inherited

The trees (which run forks from which, at which step) are planned by :mod:`schedsweep.sharing.branching` and
written into each run.json (`branch: {of, step}`, `forks: [k, ...]`). The loop calls :func:`keep_fork`
after its checkpoint at a fork step and :func:`start_from_fork` before loading its own checkpoint; the
local queue starts a branch once :func:`ready` says so; forks are removed once all their branches are
done or diverged (:func:`remove_forks`).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from schedsweep import files
from schedsweep.sweep import store
from schedsweep.sweep.run_folder import CHECKPOINT, FORKS, RunFolder  # a fork's checkpoint has a run's own name
from schedsweep.sweep.status import FINAL, SETTLED

FORK_ROWS = "inherited.parquet"
KEEP = "keep_forks"  # run.json: the run's forks stay once their branches finish (keep_trunk, schedsweep.sharing.kept)


def fork_dir(parent: Path, step: int) -> Path:
    return RunFolder(parent).fork(step)


def keep_fork(run_path: Path, step: int) -> None:
    """Right after the parent's checkpoint before update `step`: keep a copy, with metric rows 0..step-1.

    Written to a temporary folder and renamed into place, so a branch sees a whole fork or none. The rows
    are copied into the fork (not read later from the parent's metrics), so a parent that is resumed or
    restarted meanwhile never changes what its branches inherit.
    """
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from schedsweep.train import metrics

    final = fork_dir(run_path, step)
    if (final / CHECKPOINT).exists():  # written by an earlier attempt of the same (deterministic) run
        return
    shutil.rmtree(final, ignore_errors=True)  # an earlier attempt's partial fork: this one replaces it
    with files.replacing(final) as tmp:
        tmp.mkdir()
        shutil.copyfile(RunFolder(run_path).checkpoint, tmp / CHECKPOINT)
        rows = metrics.read_metrics(RunFolder(run_path).metrics)
        rows = rows.filter(pc.less(rows["step"], step))
        rows = rows.set_column(rows.schema.get_field_index("inherited"), metrics.SCHEMA.field("inherited"),
                               pa.array([True] * rows.num_rows, pa.bool_()))
        pq.write_table(rows, tmp / FORK_ROWS)


def start_from_fork(run_path: Path, record: dict[str, Any]) -> bool:
    """A branch's first start: its fork's checkpoint and inherited rows become its own. Whether it did.

    Only when the run is a branch, has no checkpoint of its own (else it resumes that) and its fork exists
    (else it trains from step 0: the same run, only slower). The branch then resumes at the fork step like
    any resumed run: model, optimizer, RNG states and running numbers as the parent had them.
    """
    import torch

    from schedsweep.train import metrics

    branch = record.get("branch")
    if not branch or RunFolder(run_path).checkpoint.exists():
        return False
    fork = fork_dir(run_path.parent / branch["of"], int(branch["step"]))
    if not (fork / CHECKPOINT).is_file():
        return False
    folder = RunFolder(run_path).metrics
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    part = folder / f"{metrics.PART_PREFIX}00000.parquet"
    with files.replacing(part) as tmp:
        shutil.copyfile(fork / FORK_ROWS, tmp)
    state = torch.load(fork / CHECKPOINT, map_location="cpu", weights_only=False)
    state["parts"] = 1  # the inherited rows; the parent's own part count is meaningless here
    state["run"] = state["run"] | {"requeues": 0}  # the parent's requeues are not this run's
    with files.replacing(RunFolder(run_path).checkpoint) as tmp:
        torch.save(state, tmp)  # not checkpoint.save: that would replace the fork's RNG states with ours
    return True


def ready(run_path: Path) -> bool:
    """Whether the run can start now: not a branch, resuming its own checkpoint, its fork written, or its
    parent finished without writing the fork (the run then trains from step 0)."""
    folder = RunFolder(run_path)
    branch = folder.branch()
    if not branch or folder.checkpoint.exists():
        return True
    parent = RunFolder(run_path.parent / branch["of"])
    return (parent.fork(int(branch["step"])) / CHECKPOINT).is_file() or parent.status().status in FINAL


def remove_forks(sweep_dir: Path, keep_kept: bool = True) -> int:
    """Delete every fork whose branches are all done or diverged; how many were removed.

    A failed branch keeps its fork, so --retry-failed starts it from there again. The forks of a run whose
    run.json says `keep_forks` (keep_trunk) stay too, unless `keep_kept` is False (prune-checkpoints).
    """
    waiting: set[tuple[str, int]] = set()
    for record in store.read_plan(sweep_dir):
        run = RunFolder.of(sweep_dir, record["id"])
        try:
            branch = run.branch()
        except OSError:
            continue
        if branch and run.status().status not in SETTLED:
            waiting.add((branch["of"], int(branch["step"])))
    removed = 0
    for forks in RunFolder.glob(sweep_dir, FORKS):
        if keep_kept and _keeps(forks.parent):
            continue
        for fork in forks.iterdir():
            if fork.name.isdigit() and (forks.parent.name, int(fork.name)) not in waiting:
                shutil.rmtree(fork, ignore_errors=True)  # another run's job may be removing it too
                removed += 1
    return removed


def _keeps(run_path: Path) -> bool:
    try:
        return bool(RunFolder(run_path).record().get(KEEP))
    except (OSError, ValueError):
        return False


def from_kept(sweep_dir: Path) -> set[str]:
    """The runs planned to branch from a fork an earlier launch kept (run.json `branch.kept`)."""
    out = set()
    for record in store.read_plan(sweep_dir):
        try:
            branch = RunFolder.of(sweep_dir, record["id"]).branch() or {}
        except (OSError, ValueError):
            continue
        if branch.get("kept"):
            out.add(record["id"])
    return out


def prune(sweep_dir: Path) -> tuple[int, int]:
    """Remove every fork no unfinished branch waits for, kept ones too: (forks removed, bytes freed)."""
    size = sum(f.stat().st_size for f in RunFolder.glob(sweep_dir, f"{FORKS}/*/*") if f.is_file())
    removed = remove_forks(sweep_dir, keep_kept=False)
    left = sum(f.stat().st_size for f in RunFolder.glob(sweep_dir, f"{FORKS}/*/*") if f.is_file())
    return removed, size - left


def kept(sweep_dir: Path, records: list[dict[str, Any]]) -> list[tuple[Any, tuple[int, ...]]]:
    """Every run of `records` (plan records) as a plan.Run, with the steps of its forks on disk."""
    from schedsweep.plan.point import Run

    out = []
    for record in records:
        folder = RunFolder.of(sweep_dir, record["id"]).forks
        steps = sorted(int(f.name) for f in folder.iterdir() if f.name.isdigit() and (f / CHECKPOINT).is_file()) \
            if folder.is_dir() else []
        out.append((Run.from_record(record), tuple(steps)))
    return out


def parents_first(queue: list[Path]) -> list[Path]:
    """The queue with each branch's parent (and its parent's) moved up to just before the branch, the
    order otherwise kept. A branch waits for the fork its parent writes mid-run: with the parent behind it
    (a planned order puts the longest budget last), every such branch would wait to the end of the sweep
    and its tree would train alone there while the other workers idle."""
    parent_of = {}
    for path in queue:
        branch = RunFolder(path).branch()
        if branch:
            parent_of[path] = path.parent / branch["of"]
    queued, placed, ordered = set(queue), set(), []

    def place(path: Path) -> None:
        if path in placed:
            return
        placed.add(path)
        if parent_of.get(path) in queued:
            place(parent_of[path])
        ordered.append(path)

    for path in queue:
        place(path)
    return ordered


def next_ready(queue: list[Path], idle: bool) -> Path | None:
    """Take the first queued run that can start now (a branch once its fork exists: :func:`ready`).

    When nothing is running (`idle`) and none is ready, the first: it trains from step 0 rather than
    wait forever. None when runs are running and none is ready.
    """
    for i, path in enumerate(queue):
        if ready(path):
            return queue.pop(i)
    return queue.pop(0) if idle and queue else None
