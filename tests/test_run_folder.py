"""The run folder object (schedsweep.sweep.run_folder) names every file of a run folder, once."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from schedsweep import files
from schedsweep.sweep import run_folder, store
from schedsweep.sweep.run_folder import RunFolder, RunStatus
from schedsweep.sweep.status import DONE, FAILED, PENDING, RUNNING
from schedsweep.train import pinned
from schedsweep.train import run as train

from helpers import TINY_MLP, run_record

PACKAGE = Path(run_folder.__file__).resolve().parent.parent


def test_a_real_run_leaves_exactly_the_documented_files(tmp_path: Path) -> None:
    record = run_record([*TINY_MLP, "optimizer=adamw", "budget=12", "full_steps=12", "eval_every=4"])
    folder = RunFolder.of(tmp_path, record["id"])
    assert folder.path == tmp_path / "runs" / record["id"] == store.run_dir(tmp_path, record["id"])
    folder.write_record(record)
    assert folder.has_record() and folder.record() == record and not folder.has_status()
    assert train.main(str(folder.path), threads=1) == DONE
    names = {p.name for p in folder.path.iterdir()}
    assert names <= set(run_folder.FILES) | set(run_folder.FOLDERS)  # nothing undocumented, no temporary file left
    # What a done built-in run keeps: its record, status, claim history, attempts, code and metrics; the claim
    # is released and the checkpoint removed.
    assert names == {run_folder.RECORD, run_folder.STATUS, run_folder.CLAIM_LOCK, run_folder.CLAIMS,
                     run_folder.ATTEMPTS, run_folder.CODE, run_folder.METRICS}
    status = folder.status()
    assert status.status == DONE and status.steps_done == record["spec"]["steps"]
    assert [a["status"] for a in pinned.attempts(folder.path)] == [DONE]
    assert "package" in files.read_json(folder.code_file)
    assert any(folder.metrics.iterdir()) and not folder.checkpoint.exists() and not folder.claim_file.exists()


def test_every_name_is_documented_and_has_its_path() -> None:
    doc = run_folder.__doc__ or ""
    for name in (*run_folder.FILES, *run_folder.FOLDERS):
        assert name in doc, f"{name} is not described in the run_folder docstring"
    folder = RunFolder("/r")
    paths = {folder.record_file, folder.status_file, folder.previous_status_file, folder.claim_file, folder.claim_lock,
             folder.claims_file, folder.attempts_file, folder.code_file, folder.client_file, folder.hold_file,
             folder.checkpoint, folder.lightning_checkpoint, folder.forks, folder.metrics, folder.logs, folder.hf}
    assert {p.name for p in paths} == {*run_folder.FILES, *run_folder.FOLDERS}
    assert folder.fork(7) == Path("/r/forks/7") and folder.run_log == Path("/r/logs/run.log")
    assert folder.rank_error(2) == Path("/r/error.rank2.txt")


@pytest.mark.parametrize("status", [
    RunStatus(RUNNING, steps_done=0, host="h", pid=1),
    RunStatus(DONE, steps_done=0, final_loss=0.0, wall_s=0.0, requeues=0, peak_lr=0.0),  # zeros stay zeros
    RunStatus(FAILED, steps_done=12, final_loss=None, error="boom", trial_steps=3),
])
def test_status_round_trips(tmp_path: Path, status: RunStatus) -> None:
    folder = RunFolder(tmp_path / "runs" / "r")
    folder.write_status(status)
    assert folder.has_status() and folder.status() == status
    assert folder.status().steps_done == status.steps_done  # 0 is read back as 0, not a default
    assert store.read_status(folder.path) == status  # the wrapper the tests use reads the same


def test_status_of_a_missing_or_bad_file(tmp_path: Path) -> None:
    folder = RunFolder(tmp_path / "r")
    assert folder.status().status == PENDING
    folder.path.mkdir()
    folder.status_file.write_text("{not json")
    assert folder.status().status == FAILED and "unreadable" in (folder.status().error or "")
    files.write_json(folder.status_file, {"status": "nonsense"})
    assert folder.status().status == FAILED and "unknown status" in (folder.status().error or "")
    files.write_json(folder.status_file, {"status": "failed", "steps_done": 3, "unknown_key": 1})
    folder.set_status_aside()
    assert folder.status().status == PENDING and files.read_json(folder.previous_status_file)["steps_done"] == 3


def _strings(tree: ast.AST) -> list[ast.Constant]:
    """The string constants of a module that are not docstrings."""
    docstrings = {id(body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                  and (body := node.body) and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)}
    return [n for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docstrings]


def test_no_other_module_spells_a_run_folder_file_name() -> None:
    names = [*run_folder.FILES, "error.rank"]
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "run_folder.py" and path.parent.name == "sweep":
            continue
        for node in _strings(ast.parse(path.read_text(encoding="utf-8"))):
            offenders += [f"{path.relative_to(PACKAGE)}:{node.lineno} {name}" for name in names if name in node.value]
    assert offenders == []
