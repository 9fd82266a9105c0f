"""Shared prefixes on Slurm: runs cut into segments at their fork steps, grouped into dependent arrays.

A run that writes forks for branches of this submission is cut at those steps: segment [a, k) is a job
that trains up to fork step k, keeps the fork and exits successfully; the run's next segment, and every
branch that starts from the fork at k, wait for it. Dependencies form a forest of segments (a segment
waits for at most one other: the previous segment of its run, or the segment that writes its fork).

Arrays still group jobs with the same resources. Trees of the same shape (segment lengths' time limits
and the same pattern of dependents: a WSD sweep over seeds and learning rates gives one shape) are laid
side by side: tree i is task i of every array, one array per position in the shape, and each array
waits for its parent position's array with ``--dependency=aftercorr:PARENT`` (task i after task i of
PARENT has succeeded; ``afterok`` when the chunk is one tree, as submitit submits one job as a plain job).
A dependency on a job of an earlier launch (a branch retried while its parent still runs) is
``afterok:JOB``. With ``--kill-on-invalid-dep=yes`` Slurm cancels whatever waits on a segment that failed,
transitively; `schedsweep.executors.slurm.reconcile` then names the failed segment in each descendant's status.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Callable, Sequence


@dataclass(frozen=True)
class Segment:
    """Run `run` trained from about step `start` up to `stop` (a fork step; None: to its end)."""

    run: str
    start: int
    stop: int | None
    after: int | str | None = None  # the segment it waits for: an index in the same list, or an earlier launch's job id


@dataclass(frozen=True)
class Array:
    """One submission: segments side by side; task i waits for task i of array `after` (an index)."""

    time_min: int
    segments: tuple[int, ...]  # indices into the segment list
    after: int | None  # index of the parent array (in the returned list), None for none
    external: str | None = None  # or an earlier launch's job id every task waits for (a one-task array)
    throttle: int = 1


def cut(records: Sequence[dict[str, Any]], written: set[tuple[str, int]],
        running: dict[tuple[str, int], str] | None = None, resume: dict[str, int] | None = None) -> list[Segment]:
    """The segments of `records` (run.json contents: id, optional branch {of, step}, forks).

    A run starts at its checkpoint's step (`resume`), else at its fork, else at 0, and is cut at each of
    its fork steps after that which a branch among `records` still needs (the fork is not in `written`,
    the (run, step) pairs whose fork is on disk). A branch without a checkpoint waits for the segment that
    writes its fork: one of these runs', or `running`'s job (run, step) -> job id of an earlier launch
    that is still queued; with neither, it waits for nothing (its fork exists, or it trains from step 0).
    Order: every segment after the one it waits for.
    """
    running, resume = running or {}, resume or {}
    ids = {r["id"] for r in records}
    needed: dict[str, set[int]] = defaultdict(set)
    for r in records:
        b = r.get("branch")
        if b and r["id"] not in resume and (b["of"], int(b["step"])) not in written:
            needed[b["of"]].add(int(b["step"]))
    segments: list[Segment] = []
    writes: dict[tuple[str, int], int] = {}  # (run, fork step) -> the segment that writes it
    pending = list(records)
    while pending:  # parents first: a branch waits until its parent's segments are placed
        later = []
        for r in pending:
            b = r.get("branch")
            fork = (b["of"], int(b["step"])) if b else None
            if fork and r["id"] not in resume and fork[0] in ids and fork not in written and fork not in writes:
                later.append(r)
                continue
            after: int | str | None = None
            start = resume.get(r["id"], 0)
            if fork and r["id"] not in resume and fork in written:
                start = fork[1]
            elif fork and r["id"] not in resume:
                after = writes.get(fork, running.get(fork))
                start = fork[1] if after is not None else 0
            for stop in [*sorted(k for k in needed[r["id"]] if k > start), None]:
                segments.append(Segment(r["id"], start, stop, after))
                after = len(segments) - 1
                if stop is not None:
                    writes[(r["id"], stop)] = after
                    start = stop
        if len(later) == len(pending):  # a parent that is in no tree of these records: cannot happen
            raise ValueError(f"branches without a planned parent: {[r['id'] for r in later]}")
        pending = later
    return segments


def arrays(segments: Sequence[Segment], time_min: Callable[[Segment], int], max_size: int) -> list[Array]:
    """Segments grouped into arrays: trees of one shape side by side (see the module docstring), each
    chunk of at most `max_size` trees one array per position; parents before the arrays that wait on them."""
    children: dict[int, list[int]] = defaultdict(list)
    for i, s in enumerate(segments):
        if isinstance(s.after, int):
            children[s.after].append(i)
    shape: dict[int, Any] = {}
    for i in reversed(range(len(segments))):  # children come after their parent
        s = segments[i]
        external = s.after if isinstance(s.after, str) else None
        children[i].sort(key=lambda c: repr(shape[c]))
        shape[i] = (time_min(s), external, tuple(shape[c] for c in children[i]))
    roots: dict[str, list[int]] = defaultdict(list)
    for i, s in enumerate(segments):
        if not isinstance(s.after, int):
            roots[repr(shape[i])].append(i)
    out: list[Array] = []

    def place(column: list[int], parent: int | None) -> None:
        s = segments[column[0]]
        external = s.after if isinstance(s.after, str) else None
        out.append(Array(time_min(s), tuple(column), parent, external))
        me = len(out) - 1
        for position in range(len(children[column[0]])):
            place([children[i][position] for i in column], me)

    for key in sorted(roots):
        group = roots[key]
        for first in range(0, len(group), max_size):
            place(group[first:first + max_size], None)
    return out


def throttled(arrays_: list[Array], shares: list[int]) -> list[Array]:
    return [Array(a.time_min, a.segments, a.after, a.external, share) for a, share in zip(arrays_, shares)]


def dependency(array: Array, parent_job: str | None) -> str | None:
    """The sbatch --dependency of `array`, given its parent array's job id (a plain job's when one task)."""
    if array.external is not None:
        return f"afterok:{array.external}"
    if parent_job is None:
        return None
    return f"afterok:{parent_job}" if len(array.segments) == 1 else f"aftercorr:{parent_job}"


def describe(record: dict[str, Any]) -> str:
    """'segment steps 81-201 of run abc (Slurm job 12_3)' from a job record of jobs.jsonl."""
    stop = record.get("stop")
    span = f"steps {record.get('start', 0)}-{stop}" if stop is not None else f"steps {record.get('start', 0)}-end"
    return f"segment {span} of run {record['run']} (Slurm job {record['job']})"
