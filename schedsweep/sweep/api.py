"""A `Sweep` owns one sweep folder (plan, claims, statuses, launches): the library the CLI calls.

    from schedsweep import Sweep
    plan = Sweep.plan(["task=classifier", "schedule=linear,cosine", "budget=0.5,1.0"])
    sweep = Sweep.create(plan, "results")       # writes the folder; nothing runs yet
    sweep.launch()                              # trains every unfinished run; returns the counts
    sweep.status().counts                       # Counter of pending/running/.../done
    sweep.report()                              # the ranking (schedsweep.results.report.Report)

A launch reads plan.jsonl once, picks the runs without a final status that no live process holds
(schedsweep.sweep.claims), and hands them to an executor (schedsweep.executors). Runs that are
`interrupted` (their writer is gone) are resumed; `failed` ones only with retry_failed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Collection, Iterator, Mapping, Sequence

import yaml

from schedsweep import files
from schedsweep import executors
from schedsweep.sharing import branching, forks
from schedsweep.sharing import kept as keeping
from schedsweep.sweep import claims, extend, prune, reuse, stale, store
from schedsweep.sweep.run_folder import RunFolder
from schedsweep.errors import ResultsError
from schedsweep.plan.grid import Plan
from schedsweep.plan.variants import queue_order
from schedsweep.executors.settings import Settings, SlurmSettings, parse
from schedsweep.sweep.status import FAILED, FINAL, INTERRUPTED, OPEN, PENDING, PRUNED, RESULTS, RUNNING, is_open

Progress = Callable[[Counter[str], dict[str, str]], None]  # the counts, and each run's status by id


@dataclass(frozen=True)
class Prepared:
    planned: int  # runs in this launch's plan
    total: int  # runs in the sweep folder's plan (earlier launches included)
    to_run: int
    skipped: Counter[str]  # final statuses left alone, by status
    kept: branching.Kept  # new runs that branch from an earlier launch's forks (shared prefixes)
    reused: str = ""  # what was reused from other sweeps of the results folder (sweep.reuse), as one line


@dataclass(frozen=True)
class Queued:
    """What a launch on a detached executor (Slurm) queued."""

    runs: int  # runs submitted
    jobs: int  # jobs submitted: more than runs when runs are cut at their fork steps (segments)
    arrays: tuple[str, ...]  # job array ids, oldest first
    active: int  # runs skipped because a job of theirs is already pending or running
    held: int = 0  # runs not submitted: over the user's MaxSubmitJobs
    limit: int = 0  # that limit

    def line(self) -> str:
        shown = ", ".join(self.arrays) if len(self.arrays) <= 4 else f"{self.arrays[0]} .. {self.arrays[-1]}"
        segmented = f" ({self.jobs} jobs: runs cut at their fork steps)" if self.jobs > self.runs else (
            f" ({self.jobs} jobs of up to {-(-self.runs // self.jobs)} runs)" if self.jobs < self.runs else "")
        return (f"queued {self.runs} runs{segmented} in {len(self.arrays)} job array(s) {shown}"
                + (f"; {self.active} already pending or running on the cluster" if self.active else "")
                + (f"; {self.held} run(s) held back by your MaxSubmitJobs={self.limit} (counting your queued jobs): "
                   "--wait submits them as jobs end, or relaunch to submit them" if self.held else ""))


@dataclass(frozen=True)
class RunView:
    record: dict[str, Any]
    status: store.RunStatus  # as observed: `interrupted` when its writer is gone
    job: str  # latest Slurm job id, "" when none
    job_state: str


@dataclass(frozen=True)
class SweepStatus:
    runs: list[RunView]

    @property
    def counts(self) -> Counter[str]:
        return Counter(v.status.status for v in self.runs)

    @property
    def finished(self) -> bool:
        return not any(is_open(v.status.status) for v in self.runs)


class Sweep:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    @staticmethod
    def plan(overrides: Sequence[str] = (), *, config_dir: Path | None = None, config_name: str = "config",
             name: str | None = None, check_imports: bool = True) -> Plan:
        """The grid from conf/ and Hydra overrides (schedsweep.plan.grid.make_plan); nothing is written."""
        from schedsweep.plan.grid import make_plan

        return make_plan(list(overrides), config_dir=config_dir, config_name=config_name, name=name,
                         check_imports=check_imports)

    @classmethod
    def create(cls, plan: Plan, results: str | Path, *, retry_failed: bool = False, reuse_runs: bool = True,
               argv: Sequence[str] = ()) -> tuple["Sweep", Prepared]:
        """Write (or extend) results/<plan.name>; existing results are never overwritten. With
        retry_failed, failed runs are made pending again (they resume from their checkpoints). With
        reuse_runs, a run another sweep of `results` finished is linked in, not trained (sweep.reuse);
        without, it trains again here (e.g. to check that a run reproduces)."""
        results = Path(results)
        sweep = cls(results / plan.name)
        for folder in (results, sweep.path):
            if folder.exists() and not folder.is_dir():
                raise ResultsError(f"results path '{folder}' is a file, not a folder.")
        if results.exists() and not os.access(results, os.W_OK):
            raise ResultsError(f"cannot write to results folder '{results}': permission denied.")
        with sweep.lock():
            known = store.read_plan(sweep.path) if store.is_sweep(sweep.path) else []
            known_ids = {r["id"] for r in known}
            aliases = {r.id: r.aliases for r in plan.runs if r.aliases}
            for record in known:  # a schedule planned once into a run of an earlier launch: record its name
                extra = [a for a in aliases.get(record["id"], ()) if a not in (record.get("aliases") or [])]
                if extra:
                    record["aliases"] = [*(record.get("aliases") or []), *extra]
            records = known + [r.record() for r in plan.runs if r.id not in known_ids]
            store.write_plan(sweep.path, records)
            files.write_text(sweep.path / store.SWEEP_CONFIG, _sweep_yaml(plan))
            files.append_jsonl(sweep.path / store.LAUNCHES, {"time": store.now(), "argv": list(argv),
                                                             "runs": len(plan.runs), "retry_failed": retry_failed})
            # Runs another sweep of `results` has finished: linked in, never trained again (sweep.reuse).
            status_of = {r.id: RunFolder.of(sweep.path, r.id).status().status for r in plan.runs}
            unsettled = [run_id for run_id, status in status_of.items() if status not in FINAL]
            reused = reuse.find(results, sweep.path, unsettled) if reuse_runs else {}
            for run in plan.runs:
                if run.id in reused:
                    folder = RunFolder.of(sweep.path, run.id)
                    reuse.link(reused[run.id], folder.path)
                    folder.write_record(run.record() | {"reused_from": str(reused[run.id].resolve())})
                    status_of[run.id] = folder.status().status
            skipped: Counter[str] = Counter()
            # Shared prefixes: trees among the runs new to the sweep; a run written earlier keeps its place.
            fresh = [r for r in plan.runs if not RunFolder.of(sweep.path, r.id).has_record()]
            sharing = branching.plan_trees(fresh, plan.share_prefix)
            keep = keeping.KeepTrunk.parse(plan.keep_trunk)
            kept = branching.from_kept(fresh, sharing, forks.kept(sweep.path, known)) if plan.share_prefix and known \
                else branching.Kept({}, 0)
            for run in plan.runs:
                folder = RunFolder.of(sweep.path, run.id)
                status = status_of[run.id]
                if status == FAILED and retry_failed:
                    folder.set_status_aside()
                elif status in FINAL:
                    skipped[status] += 1
                    continue
                if not folder.has_record():
                    branch = kept.branches.get(run.id)
                    from_kept = {"branch": {"of": branch.of, "step": branch.step, "kept": True}} if branch else {}
                    keeps = keeping.record_keys(keep, sharing, run, start=branch.step if branch else 0)  # keep_trunk
                    folder.write_record(run.record() | branching.record_keys(sharing, run.id) | keeps | from_kept)
        return sweep, Prepared(len(plan.runs), len(records), len(plan.runs) - sum(skipped.values()), skipped, kept,
                               reuse.summary(reused))

    @contextmanager
    def lock(self) -> Iterator[None]:
        """One launcher per sweep at a time (claims make each run safe; this keeps launches orderly)."""
        with files.locked(self.path / ".lock", wait=False) as f:
            if f is None:
                holder = (self.path / ".lock").read_text().strip() or "?"
                raise ResultsError(
                    f"sweep '{self.path}' is being run by another schedsweep process (pid {holder}). "
                    f"Wait for it, or follow it with 'schedsweep status {self.path}'."
                )
            f.seek(0)
            f.truncate()
            f.write(str(os.getpid()))
            f.flush()
            yield

    def records(self) -> list[dict[str, Any]]:
        return store.read_plan(self.path)

    def executor_settings(self) -> Settings:
        """The executor settings of the sweep's latest launch (sweep.yaml), typed."""
        return parse(store.read_executor(store.require_sweep(self.path)))

    def launch(self, settings: Mapping[str, Any] | Settings | None = None, *, wait: bool = True,
               progress: Progress | None = None, hold: Collection[str] = ()) -> Counter[str] | None:
        """Train every run without a final status that no live process holds; the final counts, or
        None when not waiting (Slurm: return once queued). Runs held by a live claim are left alone, and
        so are the ids in `hold` (prune_lr: runs whose smaller budgets are not decided yet, schedsweep.sweep.prune)."""
        settings = parse(settings) if settings is not None else self.executor_settings()
        with self.lock():
            local = not isinstance(settings, SlurmSettings)
            # Slurm starts runs as the cluster allows, not in our order, and skips its own jobs at submit.
            records = queue_order(self.records()) if local else self.records()
            view = self._observe(records)
            unfinished = [v for v in view.runs if v.status.status in (*OPEN, INTERRUPTED) and v.record["id"] not in hold]
            if local:
                unfinished = [v for v in unfinished if not _held(RunFolder.of(self.path, v.record["id"]).path)]
            todo = [RunFolder.of(self.path, v.record["id"]).path for v in unfinished]
            if local:
                todo = forks.parents_first(todo)
            executor = executors.make(settings, self.path, records)
            executor.submit(todo)
            self.last_executor: executors.Executor = executor
            self._launched = (executor, view, todo)
            if not wait:
                return None
            return self.follow(progress)

    def queued(self) -> Queued | None:
        """What the last launch queued on Slurm; None for a local launch (or before any)."""
        executor = getattr(self, "last_executor", None)
        if not isinstance(executor, executors.Slurm):
            return None
        jobs = executor.jobs
        arrays = tuple(sorted({j["array"] for j in jobs}, key=int))
        return Queued(len({j["run"] for j in jobs}), len({j["job"] for j in jobs}), arrays, executor.active,
                      len(executor.held), executor.limit)

    def refinement_stage(self, overrides: Sequence[str], refinement: Mapping[str, Any], *, config_dir: Path | None = None,
                         config_name: str = "config", retry_failed: bool = False) -> list[Plan] | None:
        """Stage 2 of the refinement study (schedsweep.plan.study): None while stage 1 runs; once it has
        finished, each refined schedule's runs planned and added to this sweep (launch() then trains them)."""
        from schedsweep.plan import study

        settings = study.Settings.parse(dict(refinement))
        if not study.stage_one_done(self.path):
            return None
        plans = list(study.stage_two(self.path, list(overrides), settings, config_dir=config_dir, config_name=config_name))
        for plan in plans:
            Sweep.create(plan, self.path.parent, retry_failed=retry_failed)
        return plans

    def follow(self, progress: Progress | None = None) -> Counter[str]:
        """Wait for the runs of this object's last launch (e.g. one returned at once, on Slurm)."""
        executor, view, todo = self._launched
        counts = _follow(executor, view, todo, progress or (lambda counts, statuses: None))
        forks.remove_forks(self.path)  # shared prefixes: forks whose branches are all done or diverged
        return counts

    def prune_checkpoints(self) -> tuple[int, int]:
        """Remove the forks kept for later launches (keep_trunk) that no unfinished branch waits for:
        (forks removed, bytes freed)."""
        with self.lock():
            return forks.prune(self.path)

    def status(self) -> SweepStatus:
        """Every run's observed status: a running run whose writer is gone shows as `interrupted`, and
        a Slurm job that left the queue without a final status is settled first (slurm.reconcile)."""
        return self._observe(self.records(), reconcile=True)

    def _observe(self, records: list[dict[str, Any]], reconcile: bool = False) -> SweepStatus:
        from schedsweep.executors import slurm, squeue

        jobs = slurm.current_jobs(self.path)
        if jobs and reconcile:
            slurm.reconcile(self.path, records)
        paths = [RunFolder.of(self.path, r["id"]).path for r in records]
        statuses = claims.observe_all(paths)
        active = slurm.active_runs(self.path) if jobs else {}  # a segmented run: the job that drives it now
        job_of = {r["id"]: active.get(r["id"], jobs[r["id"]][-1]["job"]) for r in records if r["id"] in jobs}
        for record, path, status in zip(records, paths, statuses):  # exported sbatch arrays: known from the claims
            claim = claims.read(path) if record["id"] not in job_of and status.status in OPEN else None
            if claim is not None and claim.job:
                job_of[record["id"]] = claim.job
        job_states = squeue.states(job_of.values()) if job_of else {}
        runs = [RunView(r, st, job_of.get(r["id"], ""), job_states.get(job_of.get(r["id"], ""), ""))
                for r, st in zip(records, statuses)]
        return SweepStatus(runs)

    def cancel(self) -> list[str]:
        """Cancel the sweep's pending and running Slurm jobs: one scancel per job array."""
        from schedsweep.executors import slurm

        return slurm.cancel(store.require_sweep(self.path))

    def collect(self, last_k: int = 20, rebuild: bool = False) -> Any:
        from schedsweep.results import collect

        return collect.collect(self.path, last_k=last_k, rebuild=rebuild)

    def report(self, metric: str | None = None, maximize: bool = False, baseline: str | None = None,
               r_max: float = 1.1, last_k: int = 20, collected: Any = None, fit_lr: bool = False,
               averaged: bool = False) -> Any:
        """What `schedsweep report` prints, computed (schedsweep.results.report.Report): the ranking and the
        comparison tables of the collected sweep, by `metric` for every task, or (None) by the study's metric
        per task (schedsweep.plan.ranking), with the notes. `collected`: this sweep's collect(), when the
        caller has it already (the CLI warns about unreadable runs first). fit_lr: lr* per cell
        (schedsweep.results.lr_fit). averaged: each averaged run also competes as <schedule>+<kind>
        (schedsweep.results.rival)."""
        from schedsweep.plan import study
        from schedsweep.plan.ranking import RankBy
        from schedsweep.results import collect as collecting
        from schedsweep.results import report as reporting

        collected = collected if collected is not None else self.collect(last_k)
        runs = reporting.collected_runs(self.path, collected.summary)
        pruned = prune.pruned_notes(runs)
        never = runs[runs["status"] == PRUNED]  # LRs that lost at a smaller budget: tried, for lr_edge
        runs = runs[runs["status"] != PRUNED]  # never trained: listed in a note, not ranked as missing
        if averaged:
            from schedsweep.results import rival

            kinds = {r["id"]: r["spec"]["average"]["kind"] for r in self.records() if r["spec"].get("average")}
            runs = rival.with_averages(runs, kinds, reporting.setting_columns)
        if not runs["status"].isin(list(RESULTS)).any():  # a ranking needs a finished run (done or diverged)
            counts = ", ".join(f"{n} {s}" for s, n in runs["status"].value_counts().items())
            raise ResultsError(f"no run of '{self.path}' has finished ({counts}): there is nothing to rank. "
                               f"See why with: schedsweep status {self.path}")
        if baseline is not None and baseline not in set(runs["schedule"]):
            raise ResultsError(f"--baseline {baseline!r} is not a schedule of this sweep; "
                               f"choose one of: {', '.join(dict.fromkeys(runs['schedule']))}.")
        rank_by = RankBy() if metric is not None else RankBy.parse(store.read_rank_by(self.path))
        rep = reporting.build(runs, metric=metric or rank_by.metric, maximize=maximize, baseline=baseline or "linear",
                              r_max=r_max, metric_by_task=rank_by.metric_by_task, fit_lr=fit_lr, pruned=never)
        rep.notes.extend(study.source_notes(self.path))
        rep.notes.extend(extend.notes(self.path) + pruned)
        rep.notes.extend(collecting.sharing_notes(collected.summary, forks.from_kept(self.path)))
        starts = sorted({(r["spec"]["init"]["digest"], r["spec"]["init"]["step"]) for r in self.records() if r["spec"].get("init")})
        rep.notes.extend(f"runs from init_from {digest[:19]}... are cooldowns of that checkpoint: they start at its step "
                         f"{step}, and steps_trained counts only their own" for digest, step in starts)
        rep.notes.extend(stale.notes(self.path))
        return rep

    def ranked_runs(self) -> tuple[Any, str]:
        """(runs, metric column): the collected runs with the sweep's own metric, as the report ranks by default
        (the study's per task in one column, else final_eval_loss). What --extend-lr and prune_lr decide on."""
        from schedsweep.plan.ranking import RankBy
        from schedsweep.results import report as reporting

        runs = reporting.collected_runs(self.path, self.collect().summary)
        if not runs["status"].isin(RESULTS).any():  # nothing has finished: a logged metric has no column yet
            return runs.assign(**{reporting.TASK_METRIC: float("nan")}), reporting.TASK_METRIC
        rank_by = RankBy.parse(store.read_rank_by(self.path))
        if rank_by.metric_by_task:
            runs, _ = reporting.task_metric(runs, rank_by.metric, rank_by.metric_by_task)
            return runs, reporting.TASK_METRIC
        return runs, reporting.metric_column(runs, rank_by.metric)

    def spawn(self) -> int:
        """Run the launch in a detached process (--no-wait locally); its pid."""
        log = (self.path / "queue.log").open("ab")
        proc = subprocess.Popen([sys.executable, "-m", "schedsweep.sweep.api", str(self.path)], stdout=log,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        return proc.pid


def _follow(executor: executors.Executor, view: SweepStatus, todo: list[Path], report: Progress) -> Counter[str]:
    """Poll the executor until every run handed to it has ended; report the sweep's counts on each change."""
    state = view.counts
    now = {v.record["id"]: v.status.status for v in view.runs}
    open_ = set(todo)
    report(+state, now)
    try:
        while open_:
            for path, outcome in executor.poll().items():
                if path not in open_:
                    continue
                shown = RUNNING if outcome == claims.BUSY else outcome
                state[now[path.name]] -= 1
                state[shown] += 1
                now[path.name] = shown
                # A local run that ends pending stopped at its hold (prune_lr, schedsweep.sharing.holds).
                if outcome == claims.BUSY or outcome not in OPEN or (outcome == PENDING and not executor.detached):
                    open_.discard(path)
            report(+state, now)
    except BaseException:
        if not executor.detached:  # local runs die with their launcher; Slurm jobs outlive it
            executor.cancel()
        raise
    return +state


def _held(path: Path) -> bool:
    """Whether a live process other than this one holds the run's claim."""
    claim = claims.read(path)
    return claim is not None and not claims.gone(claim)


def _sweep_yaml(plan: Plan) -> str:
    doc = {"name": plan.name, "overrides": list(plan.overrides), "axes": {a.key: list(a.values) for a in plan.axes},
           "executor": plan.executor, "config": plan.base, "report": plan.rank_by.as_dict()}
    return yaml.safe_dump(doc, sort_keys=False)


if __name__ == "__main__":
    print(dict(Sweep(sys.argv[1]).launch() or {}), flush=True)
