"""Shared prefixes on the real Slurm test cluster: segments, dependent arrays, requeue, failure and retry.

Each sweep is compared with its twin trained with share_prefix=false on the debug executor (the same
run ids): per-step losses and final eval losses must be equal, bit for bit.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from schedsweep.sweep import claims, store
from schedsweep.results import collect
from schedsweep.train import metrics
from schedsweep.executors import slurm
from schedsweep.sweep.api import Sweep
from schedsweep.sweep import run_folder
from helpers import _wait_for as _wait
from helpers import cli, statuses
from helpers import accounting as _accounting

pytestmark = [pytest.mark.slurm, pytest.mark.usefixtures("cluster")]
FLAKY = ["task=custom", "task._target_=helpers.FlakyTask", "schedule=wsd", "schedule.warmup=5", "checkpoint_every=10"]


def assert_same_as_alone(tmp_path: Path, sweep: Path, args: list[str]) -> None:
    """The twin sweep trained run by run from step 0 gives the same rows and losses, bit for bit."""
    plan = Sweep.plan([*args, "executor=debug", "executor.threads_per_run=1", "share_prefix=false"], name="alone")
    twin, _ = Sweep.create(plan, tmp_path / "results", reuse_runs=False)  # trained again, not linked
    twin.launch()  # in this process: the same entry point (train.main) without a second interpreter's start
    alone = twin.path
    for run_id in statuses(sweep):
        ours = metrics.read_metrics(store.run_dir(sweep, run_id) / run_folder.METRICS)
        theirs = metrics.read_metrics(store.run_dir(alone, run_id) / run_folder.METRICS)
        assert ours["step"].to_pylist() == theirs["step"].to_pylist() == list(range(len(theirs)))
        assert ours["loss"].to_pylist() == theirs["loss"].to_pylist()
        assert ours["eval_loss"].to_pylist() == theirs["eval_loss"].to_pylist()
        ours_st, theirs_st = store.read_status(store.run_dir(sweep, run_id)), store.read_status(store.run_dir(alone, run_id))
        assert ours_st.final_eval_loss == theirs_st.final_eval_loss and ours_st.steps_done == theirs_st.steps_done


def test_a_branched_sweep_with_a_requeued_segment_is_exact(tmp_path: Path) -> None:
    slow = tmp_path / "slow"
    slow.touch()  # 50 ms a step until the requeued segment has resumed: a segment the test can catch running
    args = [*FLAKY, f"+task.slow_if={slow}", "full_steps=400", "budget=0.5,1.0", "seed=0,1", "eval_every=50"]
    out = cli("launch", *args, "executor=slurm", "--name", "branched", cwd=tmp_path).stdout
    # Per seed: the trunk cut at 161 (where the 200-step run's cooldown starts) and the branch: 2 x 3 jobs.
    assert "queued 4 runs (6 jobs: runs cut at their fork steps) in 3 job array(s)" in out
    sweep = tmp_path / "results" / "branched"
    jobs = slurm.current_jobs(sweep)
    trunks = [run for run, js in jobs.items() if len(js) == 2]
    assert len(trunks) == 2 and all([(j["start"], j["stop"]) for j in jobs[t]] == [(0, 161), (161, None)] for t in trunks)
    first, second = jobs[trunks[0]]
    assert second["after"] == first["job"] and first["job"].split("_")[1] == second["job"].split("_")[1]  # aftercorr
    branches = {run: js for run, js in jobs.items() if run not in trunks}
    assert sorted(js[0]["after"] for js in branches.values()) == sorted(jobs[t][0]["job"] for t in trunks)

    trunk = store.run_dir(sweep, trunks[0])
    _wait(lambda: (claims.read(trunk) or claims.Claim("", 0, 0, None, "", 0, "")).job == first["job"]
          and (trunk / "checkpoint.pt").exists(), 120, "the first segment to run and checkpoint")
    subprocess.run(["scontrol", "requeue", first["job"]], check=True)
    _wait(lambda: len(claims.attempts(trunk)) >= 2, 120, "the requeued segment to resume")
    view = {v.record["id"]: v for v in Sweep(sweep).status().runs}[trunks[0]]
    assert (view.status.status, view.job, view.job_state) == ("running", first["job"], "RUNNING")  # the segment at work
    slow.unlink()
    _wait(lambda: set(statuses(sweep).values()) == {"done"}, 180, "every run to finish")
    assert [a["job"] for a in claims.attempts(trunk)] == [first["job"], first["job"], second["job"]]

    summary = collect.collect(sweep).summary.set_index("run_id")
    assert sorted(summary["branch_step"]) == [0, 0, 161, 161]
    assert summary["steps_trained"].sum() == 2 * (400 + 39) and (summary["steps_done"] == summary["steps"]).all()
    assert not list(sweep.glob(f"runs/*/{run_folder.FORKS}/*"))  # every branch done: its fork is gone
    assert_same_as_alone(tmp_path, sweep, args)


@pytest.mark.accounting
def test_a_failed_segment_fails_its_descendants_by_name_and_retry_failed_completes_them(tmp_path: Path) -> None:
    flag = tmp_path / "fail"
    flag.touch()
    # Budgets 10, 50, 100: the trunk is cut at 9 and 41. Every job fails after 20 steps of its own: the
    # trunk's first segment (9 steps) and the 10-step branch (1) pass, its second segment (9..41) fails.
    args = [*FLAKY, f"+task.fail_if={flag}", "+task.fail_after=20", "full_steps=100", "budget=0.1,0.5,1.0", "eval_every=10"]
    cli("launch", *args, "executor=slurm", "--wait", "--name", "fails", cwd=tmp_path, check=1)
    sweep = tmp_path / "results" / "fails"
    jobs = slurm.current_jobs(sweep)
    (trunk,) = [run for run, js in jobs.items() if len(js) == 3]
    middle = jobs[trunk][1]
    assert (middle["start"], middle["stop"]) == (9, 41)
    by_steps = {r["labels"]["steps"]: r["id"] for r in store.read_plan(sweep)}
    assert statuses(sweep) == {by_steps[100]: "failed", by_steps[50]: "failed", by_steps[10]: "done"}
    assert "FlakyTask was told to fail" in store.read_status(store.run_dir(sweep, trunk)).error
    named = f"segment steps 9-41 of run {trunk} (Slurm job {middle['job']})"
    how = "ended as FAILED" if _accounting() else "left the queue (no accounting to say how)"
    assert store.read_status(store.run_dir(sweep, by_steps[50])).error.startswith(f"{named} {how}")
    shown = cli("status", str(sweep), cwd=tmp_path).stdout
    assert f"segment steps 9-41 of run {trunk} (Slurm job {middle['job']})" in " ".join(shown.split())
    errors = collect.collect(sweep).summary.set_index("run_id")["error"]
    assert errors[by_steps[50]].startswith(named)

    flag.unlink()
    cli("launch", *args, "executor=slurm", "--wait", "--retry-failed", "--name", "fails", cwd=tmp_path)
    assert set(statuses(sweep).values()) == {"done"}
    retried = slurm.current_jobs(sweep)
    assert [(j["start"], j["stop"]) for j in retried[trunk]] == [(20, 41), (41, None)]  # from its checkpoint at 20
    assert retried[by_steps[50]][0]["after"] == retried[trunk][0]["job"]
    assert_same_as_alone(tmp_path, sweep, args)
