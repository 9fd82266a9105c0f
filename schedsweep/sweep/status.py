"""The one vocabulary of a run's status (status.json), and the groups every stage asks about.

    pending      no status.json yet: never started
    running      a process holds its claim and trains it
    requeued     stopped at a checkpoint, its Slurm job requeued: it goes on by itself
    interrupted  its writer is gone (killed, or stopped by a signal): the next launch resumes it
    done         trained to its last step
    failed       raised, or its process ended without a status: `--retry-failed` runs it again
    diverged     a non-finite loss stopped it: a result (ranked after every finite run), never retried
    pruned       `prune_lr`: its LR lost at a smaller budget, so it is never trained (schedsweep.sweep.prune);
                 not a result (the report lists it apart, never as failed or missing), never retried
"""

from __future__ import annotations

import signal

PENDING = "pending"
RUNNING = "running"
REQUEUED = "requeued"
INTERRUPTED = "interrupted"
DONE = "done"
FAILED = "failed"
DIVERGED = "diverged"
PRUNED = "pruned"

STATES = (PENDING, RUNNING, REQUEUED, INTERRUPTED, DONE, FAILED, DIVERGED, PRUNED)
FINAL = frozenset({DONE, FAILED, DIVERGED, PRUNED})  # its writer has finished with it (a pruned run's before it began)
# For good: no launch trains it again (a failed run may be retried). A pruned run is settled without a result:
# RESULTS are what a ranking reads.
SETTLED = frozenset({DONE, DIVERGED, PRUNED})
RESULTS = frozenset({DONE, DIVERGED})
OPEN = frozenset({PENDING, RUNNING, REQUEUED})  # still some executor's business
HELD = frozenset({RUNNING, REQUEUED})  # a claim should hold it: is its owner still alive?
STOPPED = FINAL | {INTERRUPTED}  # nothing more happens to it in this launch


def is_final(status: str) -> bool:
    return status in FINAL


def is_open(status: str) -> bool:
    return status in OPEN


def stopped_by(signum: int) -> str:
    """How an interrupted run's error begins when a signal stopped it: schedsweep.train.run writes it, the local
    executor reads it (a run stopped by SIGINT means Ctrl-C: the launch stops too)."""
    return f"stopped by {signal.Signals(signum).name}"
