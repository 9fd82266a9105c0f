"""A run's folder, `results/<sweep>/runs/<id>/`: every file of it named here, once.

    run.json             RECORD      the run record (spec, labels; `branch`, `forks`, `keep_forks` of shared prefixes).
                                     Written by the launch before the run is submitted (sweep.api, executors.sbatch,
                                     cli `run`); the worker reads only this. Rewritten when a run is reused.
    status.json          STATUS      its status (schedsweep.sweep.status) with summary numbers: RunStatus below.
                                     Written by the run's process when it starts and when it ends (train.run), by
                                     the launcher when that process died without one (executors, executors.slurm),
                                     by prune_lr (sweep.prune). Absent: the run is pending.
    status.previous.json PREVIOUS    a failed run's status, moved aside by `launch --retry-failed` (sweep.api).
    claim.json           CLAIM       while a process trains the run: its owner (sweep.claims); removed on release.
    .claim.lock          CLAIM_LOCK  the flock under which a claim is taken, renewed and released (sweep.claims).
    claims.jsonl         CLAIMS      one line per claim ever taken (sweep.claims, when it takes one).
    attempts.jsonl       ATTEMPTS    one line when an attempt starts, one when it ends (train.pinned, by the run).
    code.json            CODE        the code of the run's first step (train.pinned, when it starts from step 0).
    client.json          CLIENT      a script run's report of itself (schedsweep.client, rank 0): started | checkpointed |
                                     finished | exited | diverged | error, with its numbers; train.script turns it into
                                     the status. Removed when an attempt starts.
    hold.json            HOLD        the fork step the run stops at under prune_lr (sharing.holds, by the launcher).
    checkpoint.pt        CHECKPOINT  model, optimizer, step, RNG states (train.checkpoint; a script's through the
                                     client) until the run is done or diverged.
    lightning.ckpt       LIGHTNING   a Lightning script's trainer checkpoint (client.lightning), beside checkpoint.pt.
    error.rank<r>.txt    RANK_ERROR  a distributed run's rank r>0 error, until rank 0 folds it into the status (train.run).
    forks/<k>/           FORKS       shared prefixes: its state before update k, for its branches (sharing.forks,
                                     which owns what a fork folder holds).
    metrics/             METRICS     per-step Parquet parts and progress.json (train.metrics owns them).
    logs/                LOGS        the run process's output: a local run's submitit logs, the worker pool's
                                     run.log (executors.workers), a script's script[.rankN].out/.err (train.script).
    hf/                  HF          a Hugging Face script's Trainer output_dir (client.hf).

    folder = RunFolder.of(sweep_dir, run_id)      # or RunFolder(path)
    folder.status(); folder.write_status(RunStatus(...)); folder.record(); folder.metrics; folder.fork(k)

Every file is written under a temporary name and renamed into place (schedsweep.files), so a reader never
sees half a file and a killed writer leaves no torn one. A module that owns a file's format (claims, pinned,
holds, forks, checkpoint, metrics, script) keeps its functions and takes the file's path from here.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from schedsweep import files
from schedsweep.sweep.status import FAILED, PENDING, STATES

RUNS = "runs"  # results/<sweep>/runs/<id>/: where the run folders live

RECORD = "run.json"
STATUS = "status.json"
PREVIOUS = "status.previous.json"
CLAIM = "claim.json"
CLAIM_LOCK = ".claim.lock"
CLAIMS = "claims.jsonl"
ATTEMPTS = "attempts.jsonl"
CODE = "code.json"
CLIENT = "client.json"
HOLD = "hold.json"
CHECKPOINT = "checkpoint.pt"
LIGHTNING = "lightning.ckpt"
RANK_ERROR = "error.rank{rank}.txt"
FORKS = "forks"
METRICS = "metrics"
LOGS = "logs"
RUN_LOG = "run.log"  # in logs/: a worker pool's run (executors.workers)
HF = "hf"

FILES = (RECORD, STATUS, PREVIOUS, CLAIM, CLAIM_LOCK, CLAIMS, ATTEMPTS, CODE, CLIENT, HOLD, CHECKPOINT, LIGHTNING)
FOLDERS = (FORKS, METRICS, LOGS, HF)


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True)
class RunStatus:
    """What status.json holds. Losses are None when not finite or not measured."""

    status: str
    steps_done: int = 0
    final_loss: float | None = None
    final_eval_loss: float | None = None
    best_eval_loss: float | None = None
    wall_s: float = 0.0
    requeues: int = 0
    trial_steps: int = 0  # of steps_done, the updates an adaptive schedule's trials took and rewound (AutoLRS)
    peak_lr: float | None = None  # a script run's peak LR as its client reported it (schedsweep.train.script)
    error: str | None = None
    host: str | None = None  # where a running run runs (pid on host)
    pid: int | None = None
    updated: str = field(default_factory=now)


class RunFolder:
    """One run's folder: the paths of its files and the reads and writes every stage shares."""

    __slots__ = ("path",)

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)

    @classmethod
    def of(cls, sweep_dir: Path | str, run_id: str) -> RunFolder:
        return cls(Path(sweep_dir) / RUNS / run_id)

    @staticmethod
    def glob(sweep_dir: Path | str, name: str) -> list[Path]:
        """`name` (one of the names above, or below one: "forks/*/*") in every run folder of the sweep."""
        return list((Path(sweep_dir) / RUNS).glob(f"*/{name}"))

    @property
    def id(self) -> str:
        return self.path.name

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RunFolder) and other.path == self.path

    def __hash__(self) -> int:
        return hash(self.path)

    # ---- the files' paths

    @property
    def record_file(self) -> Path:
        return self.path / RECORD

    @property
    def status_file(self) -> Path:
        return self.path / STATUS

    @property
    def previous_status_file(self) -> Path:
        return self.path / PREVIOUS

    @property
    def claim_file(self) -> Path:
        return self.path / CLAIM

    @property
    def claim_lock(self) -> Path:
        return self.path / CLAIM_LOCK

    @property
    def claims_file(self) -> Path:
        return self.path / CLAIMS

    @property
    def attempts_file(self) -> Path:
        return self.path / ATTEMPTS

    @property
    def code_file(self) -> Path:
        return self.path / CODE

    @property
    def client_file(self) -> Path:
        return self.path / CLIENT

    @property
    def hold_file(self) -> Path:
        return self.path / HOLD

    @property
    def checkpoint(self) -> Path:
        return self.path / CHECKPOINT

    @property
    def lightning_checkpoint(self) -> Path:
        return self.path / LIGHTNING

    def rank_error(self, rank: int) -> Path:
        return self.path / RANK_ERROR.format(rank=rank)

    def rank_errors(self) -> list[Path]:
        """Every rank's error file, by name."""
        return sorted(self.path.glob(RANK_ERROR.format(rank="*")))

    @property
    def forks(self) -> Path:
        return self.path / FORKS

    def fork(self, step: int) -> Path:
        """The folder of its fork before update `step` (what it holds: schedsweep.sharing.forks)."""
        return self.path / FORKS / str(step)

    @property
    def metrics(self) -> Path:
        return self.path / METRICS

    @property
    def logs(self) -> Path:
        return self.path / LOGS

    @property
    def run_log(self) -> Path:
        return self.path / LOGS / RUN_LOG

    @property
    def hf(self) -> Path:
        return self.path / HF

    # ---- run.json

    def has_record(self) -> bool:
        return self.record_file.exists()

    def record(self) -> dict[str, Any]:
        """run.json (OSError when absent, ValueError when not JSON)."""
        return files.read_json(self.record_file)

    def write_record(self, record: dict[str, Any]) -> None:
        files.write_json(self.record_file, record)

    def branch(self) -> dict[str, Any] | None:
        """run.json's `branch` ({of, step[, kept]}): the fork it starts from under shared prefixes; None for none."""
        return self.record().get("branch") or None

    # ---- status.json

    def has_status(self) -> bool:
        return self.status_file.is_file()

    def status(self) -> RunStatus:
        """The run's status; `pending` when it never started, `failed` when status.json is unreadable."""
        path = self.status_file
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return RunStatus(PENDING, updated="")
        except (OSError, ValueError) as e:
            return RunStatus(FAILED, error=f"unreadable {path}: {e}", updated="")
        known = RunStatus.__dataclass_fields__
        status = RunStatus(**{k: v for k, v in data.items() if k in known})
        if status.status not in STATES:
            return RunStatus(FAILED, error=f"{path}: unknown status {status.status!r}", updated="")
        return status

    def write_status(self, status: RunStatus) -> None:
        files.write_json(self.status_file, asdict(status))

    def set_status_aside(self) -> None:
        """status.json becomes status.previous.json: the run is pending again (launch --retry-failed)."""
        self.status_file.rename(self.previous_status_file)
