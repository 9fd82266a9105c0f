"""The one runner of Slurm commands: transient errors retried with backoff, others raised at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from schedsweep.executors import squeue


@pytest.mark.slow
def test_a_transient_error_is_retried_then_reported_with_the_tries(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(squeue, "BACKOFF_S", 0.01)
    count = tmp_path / "count"
    flaky = f"echo x >> {count}; echo 'slurm_load_jobs error: Socket timed out on send/recv operation' >&2; exit 1"
    with pytest.raises(squeue.SubmissionError, match=r"failed \(3 tries\): slurm_load_jobs error: Socket timed out"):
        squeue.run(["sh", "-c", flaky], retries=2)
    assert count.read_text().count("x") == 3
    with pytest.raises(squeue.SubmissionError, match=r"failed: Invalid job id") as e:
        squeue.run(["sh", "-c", f"echo y >> {count}; echo 'Invalid job id' >&2; exit 1"], retries=2)
    assert "tries" not in str(e.value) and count.read_text().count("y") == 1  # not transient: one try
    assert squeue.run(["sh", "-c", "echo ok"]) == "ok\n"


def test_array_tasks_are_expanded_as_sacct_prints_them() -> None:
    assert squeue.expand("42_[0-2,5%3]") == ["42_0", "42_1", "42_2", "42_5"]
    assert squeue.expand("42_7") == ["42_7"]
