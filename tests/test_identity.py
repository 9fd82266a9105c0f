"""Run identity: one id per meaning, whatever the spelling; files by contents; golden ids pin the rule."""

from __future__ import annotations

import hashlib
import math
import inspect
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from schedsweep import schedules, tasks
from schedsweep.plan import identity, signature
from schedsweep.train import optimizers
from schedsweep.errors import ConfigError
from schedsweep.plan.identity import Identifier, canonical, run_id
from schedsweep.plan.grid import make_plan

FAST = ["task=classifier", "full_steps=100", "budget=0.5"]
CLASSIFIER = {"_target_": "schedsweep.tasks.classifier.Classifier"}
ADAMW = {"_target_": "torch.optim.AdamW", "lr": 0.003}


def spec(**sections: Any) -> dict[str, Any]:
    base = {"task": CLASSIFIER, "optimizer": ADAMW, "schedule": {"shape": "cosine"}, "steps": 50, "seed": 0, "grad_clip": None}
    return base | sections


def id_of(s: dict[str, Any]) -> str:
    digest, found = Identifier(tasks.identity_params, optimizers.identity_params).id_and_identity(s)
    assert digest == run_id(found)  # the planner's fast hash is the hash of the canonical JSON
    return digest


def plan_ids(overrides: list[str], **kw: Any) -> list[str]:
    return [r.id for r in make_plan([*FAST, *overrides], check_imports=False, **kw).runs]


# ---- golden ids: any change to these is a change of every stored sweep's ids (then bump SPEC_VERSION on purpose)

GOLDEN = [
    (spec(), "7b0982516dc3"),
    (spec(optimizer={"_target_": "torch.optim.SGD", "lr": 0.1, "momentum": 0.9}, schedule={"shape": "linear", "warmup": 0.05}),
     "3b90994868a1"),
    (spec(task={**CLASSIFIER, "hidden": 8}, seed=3, steps=300, grad_clip=1.0,
          schedule={"shape": "join", "pieces": [{"shape": "constant", "until": 0.8}, {"shape": "linear"}]}), "6f807ada12c2"),
]

# The built-in YAML (classifier and adamw as their constructors' defaults; lr 0.003 given, as conf/tuned/
# sets its own) x cosine, linear x seeds 0, 1: cosine at seed 0 is GOLDEN[0].
GOLDEN_PLAN_IDS = ["4a8008331c73", "7b0982516dc3", "eb8234f8bed4", "ff0d690085c5"]
GOLDEN_PLAN_NAME = "classifier-4runs-c673f3"


@pytest.mark.parametrize(("s", "expected"), GOLDEN)
def test_golden_ids(s: dict[str, Any], expected: str) -> None:
    assert id_of(s) == expected


def test_golden_ids_through_the_planner_and_the_default_sweep_name() -> None:
    plan = make_plan([*FAST, "optimizer.lr=0.003", "schedule=cosine,linear", "seed=0,1"], check_imports=False)
    assert sorted(r.id for r in plan.runs) == GOLDEN_PLAN_IDS
    assert plan.name == GOLDEN_PLAN_NAME


def test_golden_id_of_a_file_read_by_a_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("values.csv").write_text("1.0\n0.5\n0.0\n")
    assert id_of(spec(schedule={"shape": "piecewise", "file": "values.csv"})) == "a72da9ae0997"


@pytest.mark.slow
def test_ids_are_the_same_in_another_process() -> None:
    code = f"from schedsweep.plan.grid import make_plan; print(sorted(r.id for r in make_plan({FAST!r}, check_imports=False).runs))"
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert other == str(plan_ids([]))


# ---- equivalent spellings are one run


def test_numbers_by_value_defaults_filled_and_dropped() -> None:
    # final: 0 / 0.0 / left out (linear's default is 0.0)
    a = id_of(spec(schedule={"shape": "linear", "final": 0}))
    assert a == id_of(spec(schedule={"shape": "linear", "final": 0.0})) == id_of(spec(schedule={"shape": "linear"}))
    assert a != id_of(spec(schedule={"shape": "linear", "final": 0.1}))
    # an optimizer's own defaults (torch.optim.AdamW: betas (0.9, 0.999), weight_decay 1e-2), list or tuple
    assert id_of(spec()) == id_of(spec(optimizer={**ADAMW, "betas": [0.9, 0.999], "weight_decay": 0.01, "amsgrad": False})) \
        == id_of(spec(optimizer={**ADAMW, "betas": (0.9, 0.999)}))
    assert id_of(spec(optimizer={**ADAMW, "lr": 1})) == id_of(spec(optimizer={**ADAMW, "lr": 1.0}))
    # a task's constructor defaults (Classifier: hidden=128, noise=0.1)
    assert id_of(spec()) == id_of(spec(task={**CLASSIFIER, "hidden": 128, "noise": 0.1}))
    assert id_of(spec()) != id_of(spec(task={**CLASSIFIER, "hidden": 8}))
    assert id_of(spec(grad_clip=1)) == id_of(spec(grad_clip=1.0)) != id_of(spec())


def test_the_same_spellings_through_the_planner() -> None:
    linear = plan_ids(["schedule=linear"])
    assert plan_ids(["schedule=linear", "schedule.final=0"]) == plan_ids(["schedule=linear", "schedule.final=0.0"]) == linear
    assert plan_ids(["optimizer=sgd", "optimizer.weight_decay=0"]) == plan_ids(["optimizer=sgd", "~optimizer.weight_decay"])
    assert plan_ids(["~task.hidden"]) == plan_ids(["task.hidden=128"]) == plan_ids([]) != plan_ids(["task.hidden=8"])


def test_canonical_numbers() -> None:
    assert canonical([0.0, 1.0, 2.5, True, None, (1, 2.0)]) == [0, 1, 2.5, True, None, [1, 2]]
    assert canonical({"a": 3.0}) == {"a": 3} and canonical(2.0**60) == 2.0**60
    assert id_of(spec(optimizer={**ADAMW, "amsgrad": True})) != id_of(spec(optimizer={**ADAMW, "amsgrad": 1}))
    with pytest.raises(ConfigError, match="non-finite number nan"):
        canonical(float("nan"))


# ---- adding a parameter with a default keeps old ids


def test_a_new_task_parameter_with_a_default_keeps_old_ids(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    module = tmp_path / "grown_task.py"
    body = "class T:\n    def __init__(self, *, width: int = 32{extra}, seed: int = 0) -> None: ...\n"
    module.write_text(body.format(extra=""))
    s = spec(task={"_target_": "grown_task.T", "width": 32})
    before = id_of(s)
    module.write_text(body.format(extra=", depth: int = 1"))
    assert id_of(s) == id_of(spec(task={"_target_": "grown_task.T", "depth": 1})) == before
    assert id_of(spec(task={"_target_": "grown_task.T", "depth": 2})) != before


def test_a_new_shape_parameter_with_a_default_keeps_old_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    before = [id_of(spec(schedule={"shape": s})) for s in ("linear", "cosine", "wsd")]
    catalogue = schedules.shapes()
    grown = {**catalogue, "linear": catalogue["linear"].__class__(
        "linear", {**catalogue["linear"].parameters, "curvature": 0.0}, catalogue["linear"].summary)}
    monkeypatch.setattr(schedules, "shapes", lambda: grown)
    assert [id_of(spec(schedule={"shape": s})) for s in ("linear", "cosine", "wsd")] == before
    assert id_of(spec(schedule={"shape": "linear", "curvature": 0})) == before[0]


def test_the_spec_version_changes_every_id(monkeypatch: pytest.MonkeyPatch) -> None:
    before = id_of(spec())
    monkeypatch.setattr(identity, "SPEC_VERSION", identity.SPEC_VERSION + 1)
    assert id_of(spec()) != before


# ---- files by contents


def test_a_schedule_file_is_hashed_by_its_contents(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("a.csv").write_text("1.0\n0.0\n")
    Path("copy.csv").write_text("1.0\n0.0\n")
    ids = plan_ids(["schedule=piecewise", "schedule.file=a.csv"])
    assert ids == plan_ids(["schedule=piecewise", "schedule.file=copy.csv"])  # another path, same values
    Path("a.csv").write_text("1.0\n0.5\n")
    assert plan_ids(["schedule=piecewise", "schedule.file=a.csv"]) != ids
    run = make_plan([*FAST, "schedule=piecewise", "schedule.file=a.csv"], check_imports=False).runs[0]
    assert run.spec["schedule"]["file"] == "a.csv"  # the record keeps what the user set
    assert run.identity["schedule"]["file"] == "sha256:" + hashlib.sha256(b"1.0\n0.5\n").hexdigest()


def test_a_task_text_file_and_the_default_corpus_are_hashed_by_contents(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("corpus.txt").write_text("hello world " * 100)
    charlm = ["task=charlm", "full_steps=100", "budget=0.5"]
    first = make_plan([*charlm, "task.text=corpus.txt"], check_imports=False).runs[0]
    Path("corpus.txt").write_text("other words " * 100)
    second = make_plan([*charlm, "task.text=corpus.txt"], check_imports=False).runs[0]
    assert first.id != second.id
    assert second.identity["task"]["text"] == "sha256:" + hashlib.sha256(b"other words " * 100).hexdigest()
    default = make_plan(charlm, check_imports=False).runs[0]
    topics = signature.source_path("pydoc_data.topics")
    assert topics is not None and "pydoc_data" in topics  # this Python's own documentation: changes with its version
    assert default.identity["task"]["text"] == "sha256:" + hashlib.sha256(Path(topics).read_bytes()).hexdigest()


def test_an_unreadable_file_is_one_message_naming_the_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=r"schedule.file = 'nope.csv': cannot read the file \(No such file"):
        make_plan([*FAST, "schedule=piecewise", "schedule.file=nope.csv"], check_imports=False)


# ---- class defaults read from source agree with inspect, without importing


def test_source_defaults_equal_inspect_for_built_in_tasks_and_torch_optimizers() -> None:
    import torch.optim

    from schedsweep.tasks.charlm import CharLM
    from schedsweep.tasks.classifier import Classifier

    classes = [CharLM, Classifier] + [c for c in vars(torch.optim).values() if inspect.isclass(c) and issubclass(c, torch.optim.Optimizer)]
    read = 0
    for cls in classes:
        params = signature.read(f"{cls.__module__}.{cls.__name__}") or signature.read(
            f"{'torch.optim' if cls.__module__.startswith('torch.optim') else cls.__module__}.{cls.__name__}")
        if params is None:
            continue  # e.g. a class without __init__ of its own: the caller imports it
        empty = inspect.Parameter.empty
        expected = {n: p.default for n, p in inspect.signature(cls).parameters.items() if p.default is not empty}
        assert params.defaults == expected, cls
        read += 1
    assert read >= 12
    assert signature.read("schedsweep.tasks.charlm.CharLM").files == {"text": "pydoc_data.topics"}


@pytest.mark.slow
def test_planning_a_dry_run_imports_no_torch() -> None:
    code = textwrap.dedent(f"""
        import sys
        from schedsweep.plan.grid import make_plan
        plan = make_plan({["task=charlm", "optimizer=sgd,adamw", "schedule=linear,wsd"]!r}, check_imports=False)
        print(len(plan.runs), "torch" in sys.modules)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["16", "False"]


def test_classes_that_cannot_be_read_from_source_are_imported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    Path("odd_tasks.py").write_text(textwrap.dedent("""
        import dataclasses, math

        @dataclasses.dataclass
        class Decorated:
            width: int = 32
            seed: int = 0

        class Computed:
            def __init__(self, *, scale: float = math.pi, seed: int = 0) -> None: ...

        class Inherited(Computed):
            pass

        class Plain:
            def __init__(self, *, scale: float = 3.0, seed: int = 0) -> None: ...
    """))
    for name in ("Decorated", "Computed", "Inherited"):
        assert signature.read(f"odd_tasks.{name}") is None
    assert signature.read("odd_tasks.Plain").defaults == {"scale": 3.0, "seed": 0}
    assert tasks.identity_params({"_target_": "odd_tasks.Decorated"}) == ({"width": 32}, {})  # imported and inspected
    assert tasks.identity_params({"_target_": "odd_tasks.Inherited"}) == ({"scale": math.pi}, {})
    assert id_of(spec(task={"_target_": "odd_tasks.Computed", "scale": math.pi})) == id_of(spec(task={"_target_": "odd_tasks.Computed"}))
