"""Status after trouble, through the real CLI: Ctrl-C is SIGINT and leaves the sweep unfinished, a failed
run shows the step it reached, a launch with failures says what to do next, `report` with nothing finished
refuses, and a full disk ends the launch with one message from which a relaunch resumes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import terminal
from helpers import Run, make_sweep

from schedsweep.sweep import run_folder, store

PY = sys.executable

FAILING = '''
import sys
import schedsweep.client as sweep
run = sweep.init()
for step in range(run.steps):
    if step == 29 and sys.argv[1] == "bad":
        raise RuntimeError("the data loader broke at step 29")
    run.log(step, loss=1.0 / (step + 1))
run.finish(eval_loss=0.5)
'''


def _training(sweep: Path) -> bool:
    """A run has logged a step: its signal handlers are up."""
    return any((sweep / "runs").glob("*/metrics/progress.json"))


@pytest.mark.slow
def test_ctrl_c_is_reported_as_sigint_and_the_sweep_is_not_all_finished(tmp_path: Path) -> None:
    sweep = tmp_path / "results" / "c"
    sent = []

    def ctrl_c(text: str, fd: int) -> bool:
        if _training(sweep):
            os.write(fd, b"\x03")
            sent.append(True)
            return True
        return False

    screen = terminal.run(["launch", "task=quadratic", "full_steps=1000000", "schedule=linear", "budget=1.0",
                           "--name", "c"], 80, tmp_path, on_output=ctrl_c)
    assert sent, f"no run logged a step before the timeout (exit {screen.rc}):\n{screen.text}"
    assert screen.rc == 130, f"exit {screen.rc}:\n{screen.text}"
    (run,) = list((sweep / "runs").iterdir())
    status = json.loads((run / run_folder.STATUS).read_text())
    assert status["status"] == "interrupted"
    assert status["error"].startswith("stopped by SIGINT at step ")
    shown = terminal.run(["status", str(sweep)], 80, tmp_path)
    assert "interrupted 1" in shown.text and "(all finished)" not in shown.text
    assert "launch the same command again" in shown.text
    assert max(map(len, shown.lines)) <= 80 and "…" not in shown.text


@pytest.mark.slow
def test_a_launch_with_failures_names_them_and_status_shows_the_failed_step(tmp_path: Path) -> None:
    (tmp_path / "failing.py").write_text(FAILING)
    command = f"task.command={PY} failing.py bad,{PY} failing.py good"
    screen = terminal.run(["launch", "task=script", command, "budget=1.0", "full_steps=40", "--name", "f"], 80, tmp_path)
    assert screen.rc == 1, screen.text
    flat = " ".join(screen.lines)
    assert "1 run(s) failed in this launch" in flat
    assert "first error, run" in flat and "at step 29: RuntimeError: the data loader broke at step 29" in flat
    assert "see them: schedsweep status results/f" in flat
    assert "--name f --retry-failed" in flat  # the same command, to retry them
    shown = terminal.run(["status", "results/f"], 80, tmp_path)
    (row,) = [line for line in shown.lines if " failed " in line and "│" in line]
    assert row.split("│")[-2].strip() == "29"  # the step column: where it failed, not 0
    assert "(failed at step 29): RuntimeError: the data loader broke" in " ".join(shown.lines)


@pytest.mark.slow
def test_report_with_no_finished_run_refuses_with_exit_2(tmp_path: Path) -> None:
    sweep = make_sweep(tmp_path / "s", [Run("linear", status="failed"), Run("cosine", status="failed")])
    proc = subprocess.run([PY, "-m", "schedsweep", "report", str(sweep)], capture_output=True, text=True, cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": os.environ.get("PYTHONPATH") or str(terminal.TESTS.parent)})
    assert proc.returncode == 2
    assert "no run of" in proc.stderr and "has finished (2 failed)" in proc.stderr
    assert "rank" not in proc.stdout  # no table at all


@pytest.mark.slow
@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs needs root")
@pytest.mark.parametrize("executor", ["debug", "local"])
def test_a_full_disk_ends_the_launch_with_one_message_and_a_relaunch_resumes(tmp_path: Path, executor: str) -> None:
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=400k", "tmpfs", str(disk)]).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        args = ["launch", "task=quadratic", "full_steps=200", "schedule=linear,cosine,constant,wsd", "budget=1.0",
                "seed=0,1,2,3", f"executor={executor}", "--name", "full", "--results", str(disk)]
        env = {**os.environ, "PYTHONPATH": os.environ.get("PYTHONPATH") or str(terminal.TESTS.parent)}
        proc = subprocess.run([PY, "-m", "schedsweep", *args], capture_output=True, text=True, env=env, cwd=tmp_path)
        assert proc.returncode == 2, proc.stderr
        assert "Traceback" not in proc.stderr
        assert f"the disk holding '{disk / 'full'}' is full (No space left on device)" in proc.stderr
        assert "run the same command again; it resumes every unfinished run" in proc.stderr
        subprocess.run(["mount", "-o", "remount,size=8m", str(disk)], check=True)
        again = subprocess.run([PY, "-m", "schedsweep", *args], capture_output=True, text=True, env=env, cwd=tmp_path)
        assert again.returncode == 0, again.stderr
        statuses = [store.read_status(store.run_dir(disk / "full", r["id"])).status for r in store.read_plan(disk / "full")]
        assert statuses == ["done"] * 16
    finally:
        subprocess.run(["umount", "-l", str(disk)])
