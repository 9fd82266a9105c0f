"""One any-rank all-reduce for the loop (Dist.any) and a user's script (schedsweep.client: Run.should_stop).

Under NCCL the flag must be a CUDA tensor on the rank's own GPU; the client's copy reduced a CPU tensor.
There is no GPU here, so torch.distributed's calls are stand-ins: the one fault this suite cannot cause."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

import schedsweep.client as client
from schedsweep.train import distributed

from helpers import make_run_dir


class FakeGroup:
    """An initialised process group of 2 ranks with the given backend; all_reduce records the tensor's device."""

    def __init__(self, backend: str, other_rank_flag: int) -> None:
        self.backend, self.other, self.devices = backend, other_rank_flag, []

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        dist = torch.distributed
        monkeypatch.setattr(dist, "is_available", lambda: True)
        monkeypatch.setattr(dist, "is_initialized", lambda: True)
        monkeypatch.setattr(dist, "get_world_size", lambda: 2)
        monkeypatch.setattr(dist, "get_backend", lambda: self.backend)
        monkeypatch.setattr(dist, "all_reduce", self.all_reduce)
        real = torch.tensor

        def tensor(data: Any, *, dtype: Any = None, device: Any = None) -> torch.Tensor:
            self.devices.append(str(device))
            return real(data, dtype=dtype)  # CPU here: the device asked for is what is checked

        monkeypatch.setattr(torch, "tensor", tensor)

    def all_reduce(self, t: torch.Tensor, op: Any = None) -> None:
        t.fill_(max(int(t.item()), self.other))


@pytest.mark.parametrize(("backend", "device"), [("nccl", "cuda:1"), ("gloo", "cpu")])
def test_any_rank_reduces_on_the_backends_device_and_takes_the_max(monkeypatch: pytest.MonkeyPatch, backend: str,
                                                                     device: str) -> None:
    group = FakeGroup(backend, other_rank_flag=1)
    group.install(monkeypatch)
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert distributed.any_rank(False) is True  # the other rank raised it
    assert distributed.Dist(rank=1, world=2, local_rank=1).any(False) is True
    assert group.devices == [device, device]


def test_the_clients_should_stop_is_the_loops_all_reduce(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                         keep_signal_handlers: None) -> None:
    make_run_dir(tmp_path, monkeypatch)
    run = client.init()
    group = FakeGroup("nccl", other_rank_flag=1)
    group.install(monkeypatch)
    monkeypatch.setenv("LOCAL_RANK", "0")
    assert run.should_stop() is True and group.devices == ["cuda:0"]  # a CPU tensor under NCCL before
