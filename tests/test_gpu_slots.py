"""GPU slots of the local pool (schedsweep.executors.devices): workers pinned with CUDA_VISIBLE_DEVICES, tested
on CPU with an explicit device list (trusted as given), through the real CLI and real worker processes."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest
from helpers import cli, statuses

from schedsweep.errors import ConfigError
from schedsweep.executors import devices
from schedsweep.executors.settings import LocalSettings, parse
from schedsweep.sweep import store
from schedsweep.train import pinned

GRID = ["task=quadratic", "full_steps=400", "budget=1.0", "schedule=linear,cosine", "seed=0,1,2,3", "eval_every=100"]


def test_gpus_are_typed_once_and_bad_values_are_refused_by_name() -> None:
    assert parse({"kind": "local"}).gpus == "auto" and parse({"kind": "local"}).runs_per_gpu == 1
    assert parse({"kind": "local", "gpus": [0, 1, "2"]}).gpus == ("0", "1", "2")
    assert parse({"kind": "local", "gpus": 0}).gpus == 0 and parse({"kind": "local", "gpus": None}).gpus is None
    for bad in ([0, 0], [], -1, "all", [True]):
        with pytest.raises(ConfigError, match=r"executor\.gpus must be 'auto', a count >= 0"):
            parse({"kind": "local", "gpus": bad})
    with pytest.raises(ConfigError, match=r"executor\.runs_per_gpu must be an integer >= 1; got 0"):
        parse({"kind": "local", "runs_per_gpu": 0})


def test_max_parallel_defaults_to_devices_times_runs_per_gpu_over_tasks() -> None:
    assert LocalSettings().parallel(cpus=16, devices=4) == 4
    assert LocalSettings(runs_per_gpu=2).parallel(cpus=16, devices=4) == 8
    assert LocalSettings(tasks_per_node=2).parallel(cpus=16, devices=4) == 2
    assert LocalSettings(max_parallel=16).parallel(cpus=16, devices=4) == 4  # never two runs on one device
    assert LocalSettings(max_parallel=3).parallel(cpus=16, devices=4) == 3
    assert LocalSettings().parallel(cpus=16, devices=0) == 16  # no devices: one per core, as before


def test_auto_reads_the_visible_devices_and_a_count_takes_the_first(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,5,7")
    assert devices.resolve("auto") == ["2", "5", "7"] and devices.resolve(2) == ["2", "5"]
    assert devices.resolve(("0", "1")) == ["0", "1"] and devices.resolve(None) == []
    with pytest.raises(ConfigError, match=r"executor\.gpus=4: this machine shows 3 CUDA device\(s\) \(2, 5, 7\)"):
        devices.resolve(4)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert devices.resolve("auto") == []


def test_a_ddp_run_takes_tasks_devices_the_least_loaded_first() -> None:
    slots = devices.Slots(["0", "1", "2", "3"], runs_per_gpu=1)
    assert slots.capacity(2) == 2
    first, second = slots.take(2), slots.take(2)
    assert first == ["0", "1"] and second == ["2", "3"] and slots.take(1) is None
    slots.give(first)
    assert slots.take(1) == ["0"]


def busy_devices(sweep: Path) -> tuple[dict[str, list[tuple[float, float]]], list[str | None]]:
    """Each device's (start, end) intervals, and the device string each attempt saw."""
    spans: dict[str, list[tuple[float, float]]] = defaultdict(list)
    seen = []
    for record in store.read_plan(sweep):
        for attempt in pinned.attempts(store.run_dir(sweep, record["id"])):
            seen.append(attempt["devices"])
            spans[attempt["devices"]].append((attempt["start"], attempt["end"]))
    return spans, seen


def most_at_once(spans: list[tuple[float, float]]) -> int:
    events = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
    now = peak = 0
    for _, step in events:
        now += step
        peak = max(peak, now)
    return peak


@pytest.mark.slow
def test_four_devices_each_run_sees_one_and_no_device_trains_two_runs_at_once(tmp_path: Path) -> None:
    cli("launch", *GRID, "executor.gpus=[0,1,2,3]", "--name", "slots", "--results", str(tmp_path), cwd=tmp_path)
    sweep = tmp_path / "slots"
    assert set(statuses(sweep).values()) == {"done"}
    spans, seen = busy_devices(sweep)
    assert len(seen) == 8 and set(seen) <= {"0", "1", "2", "3"}  # one device each, never a list or none
    assert len(spans) == 4  # max_parallel defaulted to 4 workers, one per device
    assert {d: most_at_once(s) for d, s in spans.items()} == {d: 1 for d in spans}


@pytest.mark.slow
def test_runs_per_gpu_lets_two_runs_share_a_device_and_no_more(tmp_path: Path) -> None:
    cli("launch", *GRID, "executor.gpus=[0,1]", "executor.runs_per_gpu=2", "--name", "shared", "--results", str(tmp_path),
        cwd=tmp_path)
    spans, seen = busy_devices(tmp_path / "shared")
    assert len(seen) == 8 and set(seen) == {"0", "1"}
    assert all(most_at_once(s) <= 2 for s in spans.values())
