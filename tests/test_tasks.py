"""Tasks: the protocol's resolution errors, user tasks, and the two built-ins' determinism and learning."""

from __future__ import annotations

import inspect
import math
import sys
import textwrap
from pathlib import Path
from typing import Any, Iterator

import pytest
import torch
from omegaconf import OmegaConf

from schedsweep import tasks
from schedsweep.errors import ConfigError, TaskError
from schedsweep.tasks import charlm, classifier

CONF = Path(__file__).resolve().parents[1] / "conf" / "task"
CLASSIFIER = {"_target_": "schedsweep.tasks.classifier.Classifier"}
CHARLM = {"_target_": "schedsweep.tasks.charlm.CharLM"}
# Small enough that the whole file runs in seconds; the defaults are exercised by the learning tests.
SMALL_LM = CHARLM | {"context": 16, "d_model": 32, "n_heads": 2, "batch_size": 8, "eval_batches": 2}


# --- a user task defined here, resolved by its import path ----------------------------------------

class TinyTask:
    """Linear regression onto a fixed random target: the protocol at its smallest."""

    def __init__(self, width: int = 4, seed: int = 0) -> None:
        self.width, self.seed = width, seed
        g = torch.Generator().manual_seed(0)
        self.x = torch.randn(256, width, generator=g)
        self.y = self.x @ torch.randn(width, 1, generator=g)

    def build_model(self) -> torch.nn.Module:
        with tasks.seeded(tasks.derive_seed(self.seed, "init")):
            return torch.nn.Linear(self.width, 1)

    def batches(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        g = torch.Generator().manual_seed(tasks.derive_seed(self.seed, "batches"))
        while True:
            i = torch.randint(0, 192, (16,), generator=g)
            yield self.x[i], self.y[i]

    def loss(self, model: torch.nn.Module, batch: Any) -> torch.Tensor:
        x, y = batch
        return torch.nn.functional.mse_loss(model(x), y)

    def evaluate(self, model: torch.nn.Module) -> float:
        return torch.nn.functional.mse_loss(model(self.x[192:]), self.y[192:]).item()


class NoEvaluate:
    def __init__(self, seed: int = 0) -> None: ...
    def build_model(self) -> torch.nn.Module: ...
    def batches(self) -> Iterator[Any]: ...
    def loss(self, model: torch.nn.Module, batch: Any) -> torch.Tensor: ...


class NoSeed(TinyTask):
    def __init__(self, width: int = 4) -> None:  # type: ignore[override]
        super().__init__(width, 0)


class NeedsDepth(TinyTask):
    def __init__(self, depth: int, seed: int = 0) -> None:
        super().__init__(4, seed)


class TakesKwargs(TinyTask):
    def __init__(self, seed: int = 0, **extra: Any) -> None:
        super().__init__(4, seed)


class Picky(TinyTask):
    @staticmethod
    def check_params(params: dict[str, Any]) -> None:
        if params.get("width", 4) > 10:
            raise TaskError(f"task Picky: width must be <= 10; got {params['width']}.")


def not_a_class(seed: int = 0) -> TinyTask:
    return TinyTask(seed=seed)


@pytest.fixture(autouse=True, scope="module")
def one_thread() -> Iterator[None]:
    """Runs train on 1 thread each; 2 threads on a shared 2-core machine were 2-5x slower, not faster."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


HERE = __name__  # the test module's import name under pytest (e.g. 'test_tasks' or 'tests.test_tasks')


def train(task: tasks.Task, model: torch.nn.Module, steps: int, lr: float) -> list[float]:
    """`steps` AdamW updates at constant lr; the training losses."""
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    stream, losses = task.batches(), []
    for _ in range(steps):
        loss = task.loss(model, next(stream))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def test_user_task_in_a_test_module_resolves_and_trains() -> None:
    spec = {"_target_": f"{HERE}.TinyTask", "width": 3}
    assert tasks.resolve(spec) is TinyTask
    task = tasks.build(spec, seed=1)
    model = task.build_model()
    before = task.evaluate(model)
    train(task, model, 30, lr=0.05)
    assert task.evaluate(model) < before


def test_user_module_in_the_launch_folder_is_importable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The docstring's own example, written where the user launches: cwd goes first on sys.path."""
    doc = tasks.__doc__ or ""
    example = doc[doc.index("    # mytask.py"):doc.index("    $ schedsweep launch")]
    (tmp_path / "mytask_for_tests.py").write_text(textwrap.dedent(example))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    monkeypatch.delitem(sys.modules, "mytask_for_tests", raising=False)
    try:
        task = tasks.build({"_target_": "mytask_for_tests.MyTask", "width": 8}, seed=0)
        model = task.build_model()
        before = task.evaluate(model)
        train(task, model, 50, lr=0.01)
        assert task.evaluate(model) < before
    finally:
        sys.modules.pop("mytask_for_tests", None)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({}, "no _target_"),
        ({"_target_": "???"}, "task._target_ is not set"),
        ({"_target_": "NoDots"}, "import path 'module.Class'"),
        ({"_target_": "no_such_module_zz.Task"}, "no module named 'no_such_module_zz'"),
        ({"_target_": "schedsweep.no_such_zz.Task"}, "no module named 'schedsweep.no_such_zz'"),
        ({"_target_": "schedsweep.tasks.classifier.Nope"},
         "has no attribute 'Nope'; task classes there: Classifier"),
        ({"_target_": f"{HERE}.not_a_class"}, "is a function, not a class"),
        ({"_target_": f"{HERE}.NoEvaluate"}, "lacks the method(s) evaluate"),
        ({"_target_": f"{HERE}.NoSeed"}, "must accept a keyword argument `seed"),
        ({"_target_": f"{HERE}.NeedsDepth"}, "needs a value for depth"),
        ({"_target_": f"{HERE}.NeedsDepth", "depth": "???"}, "needs a value for depth"),
        ({"_target_": f"{HERE}.TinyTask", "seed": 3}, "remove 'seed' from the task config"),
        ({"_target_": f"{HERE}.Picky", "width": 11}, "width must be <= 10; got 11"),
        (CLASSIFIER | {"hiden": 64}, "has no parameter(s) hiden. Valid parameters (with defaults): n_features=32"),
        (CLASSIFIER | {"noise": 1.5}, "noise (the label-flip probability) must be in [0, 1]"),
        (CLASSIFIER | {"batch_size": 100, "n_train": 50}, "batch_size (100) must be <= n_train (50)"),
        (CHARLM | {"d_model": 50}, "n_heads (4) must divide d_model (50)"),
        (CHARLM | {"context": 0}, "context must be an integer >= 1"),
        (CHARLM | {"text": "/no/such/corpus.txt"}, "text file '/no/such/corpus.txt' does not exist"),
    ],
)
def test_resolve_errors_name_the_problem(spec: dict[str, Any], expected: str) -> None:
    with pytest.raises(TaskError) as err:
        tasks.resolve(spec)
    message = str(err.value)
    assert expected in message
    assert "\n" not in message  # one paragraph: the CLI prints it as is
    assert isinstance(err.value, ConfigError)


def test_unknown_param_message_lists_every_valid_one() -> None:
    with pytest.raises(TaskError) as err:
        tasks.resolve(CHARLM | {"width": 3})
    for name, param in inspect.signature(charlm.CharLM).parameters.items():
        if name != "seed":
            assert f"{name}={param.default!r}" in str(err.value)


def test_kwargs_constructor_accepts_any_key() -> None:
    assert tasks.resolve({"_target_": f"{HERE}.TakesKwargs", "anything": 1}) is TakesKwargs


def test_import_failure_inside_the_users_module_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "broken_task_zz.py").write_text("import not_installed_zz\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    with pytest.raises(TaskError, match="it imports 'not_installed_zz', which is not installed"):
        tasks.resolve({"_target_": "broken_task_zz.Task"})
    sys.modules.pop("broken_task_zz", None)


def test_resolve_accepts_an_omegaconf_node_and_reports_custom_without_target() -> None:
    custom = OmegaConf.load(CONF / "custom.yaml")
    with pytest.raises(TaskError, match=r"task=custom needs the import path"):
        tasks.resolve(custom)
    assert tasks.resolve(OmegaConf.load(CONF / "charlm.yaml")) is charlm.CharLM


@pytest.mark.parametrize("name, cls", [("classifier", classifier.Classifier), ("charlm", charlm.CharLM)])
def test_yaml_lists_every_constructor_param_with_its_default(name: str, cls: type) -> None:
    cfg = OmegaConf.to_container(OmegaConf.load(CONF / f"{name}.yaml"))
    defaults = {n: p.default for n, p in inspect.signature(cls).parameters.items() if n != "seed"}
    assert cfg == {"_target_": f"{cls.__module__}.{cls.__name__}"} | defaults


def test_resolve_reads_no_corpus(monkeypatch: pytest.MonkeyPatch) -> None:
    """Planning resolves each task spec; it must not read (or build) anything."""
    def fail(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("resolve read the corpus")

    monkeypatch.setattr(charlm, "_read_corpus", fail)
    monkeypatch.setattr(charlm.TinyGPT, "__init__", fail)
    assert tasks.resolve(CHARLM | {"text": __file__}) is charlm.CharLM


# --- the built-ins: determinism, learning, evaluate's contract -------------------------------------

BUILTINS = [pytest.param(CLASSIFIER, id="classifier"), pytest.param(SMALL_LM, id="charlm")]


def _batches_equal(a: Any, b: Any) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize("spec", BUILTINS)
def test_same_seed_same_run_bit_for_bit(spec: dict[str, Any]) -> None:
    runs = []
    for _ in range(2):
        task = tasks.build(spec, seed=7)
        model = task.build_model()
        stream = task.batches()
        first = [next(stream) for _ in range(3)]
        init = [p.detach().clone() for p in model.parameters()]
        losses = train(task, model, 5, lr=1e-2)
        runs.append((init, first, losses, task.evaluate(model)))
    (init_a, first_a, losses_a, eval_a), (init_b, first_b, losses_b, eval_b) = runs
    assert all(torch.equal(a, b) for a, b in zip(init_a, init_b, strict=True))
    assert all(_batches_equal(a, b) for a, b in zip(first_a, first_b, strict=True))
    assert losses_a == losses_b and eval_a == eval_b


@pytest.mark.parametrize("spec", BUILTINS)
def test_different_seed_differs_but_scores_on_the_same_held_out_set(spec: dict[str, Any]) -> None:
    a, b = tasks.build(spec, seed=0), tasks.build(spec, seed=1)
    pa, pb = list(a.build_model().parameters()), list(b.build_model().parameters())
    assert not all(torch.equal(x, y) for x, y in zip(pa, pb, strict=True))
    assert not _batches_equal(next(a.batches()), next(b.batches()))
    model = a.build_model()
    assert a.evaluate(model) == b.evaluate(model)  # held-out set fixed across seeds


def test_build_model_leaves_the_global_rng_alone() -> None:
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    tasks.build(CLASSIFIER, seed=0).build_model()
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.parametrize(
    ("spec", "steps", "lr"),
    [pytest.param(CLASSIFIER, 100, 3e-3, id="classifier"), pytest.param(CHARLM, 50, 3e-3, id="charlm-defaults")],
)
def test_loss_decreases(spec: dict[str, Any], steps: int, lr: float) -> None:
    task = tasks.build(spec, seed=0)
    model = task.build_model()
    before = task.evaluate(model)
    losses = train(task, model, steps, lr)
    after = task.evaluate(model)
    assert math.isfinite(after) and after < before - 0.5  # observed: 2.30 -> 1.13 and 4.51 -> 2.81
    assert sum(losses[-10:]) < sum(losses[:10])


@pytest.mark.parametrize("spec", BUILTINS)
@pytest.mark.parametrize("training", [True, False])
def test_evaluate_returns_a_float_and_keeps_the_mode(spec: dict[str, Any], training: bool) -> None:
    task = tasks.build(spec, seed=0)
    model = task.build_model().train(training)
    value = task.evaluate(model)
    assert type(value) is float and math.isfinite(value)
    assert model.training is training
    assert all(p.grad is None for p in model.parameters())  # scored under no_grad


def test_charlm_initial_loss_is_near_uniform() -> None:
    """Small init: the untrained model guesses ~uniformly, ln(103) = 4.63 nats on Python's docs."""
    task = tasks.build(SMALL_LM, seed=0)
    assert len(task.vocab) > 50
    assert abs(task.evaluate(task.build_model()) - math.log(len(task.vocab))) < 0.2


def test_charlm_reads_a_text_file(tmp_path: Path) -> None:
    corpus = "".join(f"line {i}: the quick brown fox jumps over the lazy dog\n" for i in range(60))
    path = tmp_path / "corpus.txt"
    path.write_text(corpus, encoding="utf-8")
    task = tasks.build(SMALL_LM | {"text": str(path)}, seed=0)
    assert task.vocab == sorted(set(corpus))
    split = len(corpus) - len(corpus) // 10
    assert len(task.train_ids) == split and len(task.eval_ids) == len(corpus) - split
    x, y = next(task.batches())
    assert x.shape == y.shape == (8, 16) and x.dtype == torch.long
    assert torch.equal(x[:, 1:], y[:, :-1])  # y is x shifted by one character
    model = task.build_model()
    before = task.evaluate(model)
    train(task, model, 30, lr=1e-2)
    assert task.evaluate(model) < before


def test_charlm_text_file_errors_name_the_path(tmp_path: Path) -> None:
    short = tmp_path / "short.txt"
    short.write_text("too short")
    with pytest.raises(TaskError, match=r"the corpus '.*short\.txt' has 9 characters.*needs at least 170"):
        tasks.build(SMALL_LM | {"text": str(short)}, seed=0)
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("caf\xe9 ".encode("latin-1") * 500)
    with pytest.raises(TaskError, match=r"latin1\.txt' is not UTF-8"):
        tasks.build(SMALL_LM | {"text": str(latin1)}, seed=0)
    with pytest.raises(TaskError, match=r"text file '.*missing\.txt' does not exist"):
        tasks.build(SMALL_LM | {"text": str(tmp_path / "missing.txt")}, seed=0)


def test_derive_seed_is_stable_and_separates_streams() -> None:
    assert tasks.derive_seed(0, "init") == tasks.derive_seed(0, "init")
    assert len({tasks.derive_seed(s, n) for s in range(3) for n in ("init", "batches")}) == 6
    assert 0 <= tasks.derive_seed(2**40, "batches") < 2**63


# --- gpt: token files, byte-tokenized text, the data command --------------------------------------

GPT_TINY = {"_target_": "schedsweep.tasks.gpt.GPT", "context": 16, "d_model": 32, "n_layers": 1, "n_heads": 2,
            "batch_size": 4, "eval_batches": 2}


def test_gpt_reads_a_uint32_token_file_through_memmap(tmp_path: Path) -> None:
    import numpy as np

    from schedsweep.tasks import gpt

    tokens = (np.arange(3000, dtype=np.uint64) * 7919 % 70000).astype(np.uint32)  # ids above uint16's range
    (tmp_path / "train.bin").write_bytes(tokens.tobytes())
    task = tasks.build(GPT_TINY | {"data": str(tmp_path / "train.bin"), "dtype": "uint32", "vocab_size": 70000}, 0)
    assert isinstance(task.train_tokens, np.memmap) and len(task.train_tokens) == 2700 and task.vocab_size == 70000
    x, y = next(task.batches())
    assert x.dtype == torch.int64 and x.shape == (4, 16)
    for row_x, row_y in zip(x.tolist(), y.tolist()):
        start = int(np.flatnonzero(tokens == row_x[0])[0])
        assert row_x == tokens[start:start + 16].tolist() and row_y == tokens[start + 1:start + 17].tolist()
    assert max(x.max().item(), y.max().item()) > 65535
    assert task.loss(task.build_model(), (x, y)).item() == pytest.approx(math.log(70000), rel=0.05)
    assert gpt.GPT(**{k: v for k, v in GPT_TINY.items() if k != "_target_"}).vocab_size == 256  # byte text


@pytest.mark.slow
def test_the_data_command_writes_the_tokens_the_text_route_uses(tmp_path: Path) -> None:
    from helpers import cli

    text = "héllo, wörld: " * 400
    (tmp_path / "corpus.txt").write_text(text, encoding="utf-8")
    done = cli("data", "corpus.txt", "corpus.bin", cwd=tmp_path)
    n = len(text.encode("utf-8"))
    assert f"wrote {n} tokens" in done.stdout and (tmp_path / "corpus.bin").stat().st_size == 2 * n
    from_bin = tasks.build(GPT_TINY | {"data": str(tmp_path / "corpus.bin"), "vocab_size": 256}, 3)
    from_text = tasks.build(GPT_TINY | {"data": str(tmp_path / "corpus.txt")}, 3)
    for a, b in zip(from_bin.batches(5), from_text.batches(5)):
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
        break
    bad = cli("data", "missing.txt", "out.bin", cwd=tmp_path, check=2)
    assert "cannot read 'missing.txt' as UTF-8 text" in bad.stderr and "Traceback" not in bad.stderr


def test_gpt_bad_params_are_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(TaskError, match=r"task gpt: data 'nope.bin' is not a file"):
        tasks.resolve(GPT_TINY | {"data": "nope.bin"})
    with pytest.raises(TaskError, match="dtype must be uint16 or uint32"):
        tasks.resolve(GPT_TINY | {"dtype": "int8"})
    (tmp_path / "odd.bin").write_bytes(b"abc")
    with pytest.raises(TaskError, match="has 3 bytes, not a whole number of uint16 tokens"):
        tasks.build(GPT_TINY | {"data": str(tmp_path / "odd.bin")}, 0)


def test_gpt_tiny_preset_learns_on_the_real_loop(tmp_path: Path) -> None:
    from helpers import run_record, train_in

    record = run_record(["task=gpt_tiny", "task.n_layers=1", "budget=30", "full_steps=30", "eval_every=30"])
    status, rows = train_in(tmp_path, record)
    assert status.status == "done" and rows[0]["loss"] == pytest.approx(math.log(256), rel=0.05)
    assert status.final_eval_loss < rows[0]["loss"] - 1.0  # bytes are far from uniform: quick early gains


def test_gpt_presets_are_gpt2_small_and_tiny() -> None:
    for name, size in (("gpt", (12, 12, 768, 1024, 50304)), ("gpt_tiny", (2, 4, 64, 64, 256))):
        cfg = OmegaConf.to_container(OmegaConf.load(CONF / f"{name}.yaml"))
        assert (cfg["n_layers"], cfg["n_heads"], cfg["d_model"], cfg["context"], cfg["vocab_size"]) == size
        tasks.resolve(cfg)
