"""Tasks: what a sweep trains at each grid point, and how a task is found from its config.

A task is a class named by `_target_` in conf/task/NAME.yaml. The other keys of that file are its
constructor's keyword arguments; the training loop adds one more, `seed: int` (the run's seed, from
the top-level `seed` key), so the YAML must not set `seed` itself. Its instances have four methods:

    build_model() -> torch.nn.Module
        A fresh model, deterministic given the seed (wrap construction in `seeded(...)`).
    batches() -> Iterator[Any]
        An infinite stream of training batches, deterministic given the seed: each call starts the
        same stream again. A batch is anything `loss` accepts; the loop counts samples as the
        leading dimension of its first tensor.
    loss(model, batch) -> torch.Tensor
        The scalar mean training loss of `model` on `batch` (the loop calls backward on it).
    evaluate(model) -> float
        The mean held-out loss, on a held-out set that is the same for every seed so that runs are
        comparable. The loop calls it under torch.no_grad() with model.eval() and restores
        model.train() afterwards.

Two optional methods make a task fit real training (schedsweep.train.groups and schedsweep.train.loop):

    param_groups(model) -> list[dict]
        torch parameter groups: {"params": [...], "lr_scale": 1.0, ...optimizer options}; each
        group's lr is peak_lr * lr_scale * f(t). Built-in tasks: schedsweep.train.groups.no_decay_groups.
    batches(start: int = 0) -> Iterator[Any]
        The same stream from batch `start` on, so a resumed run need not replay it.

A third optional method logs held-out metrics beside the loss, each one more metrics column:

    eval_metrics(model) -> dict[str, float]
        e.g. {"eval_error": fraction of the held-out set misclassified} (the built-in classification
        tasks), called after `evaluate` under the same no_grad and eval mode. `report --metric
        eval_error` ranks by its last value, as REX ranks by test error.

Optionally, a static or class method `check_params(params: dict) -> None` raises TaskError for bad
values (wrong ranges, inconsistent sizes). `resolve` calls it at plan time, before any run starts, so
it must be cheap: no models, no reading of data.

A run's id hashes the task's parameters with the constructor's defaults filled in, and the contents of
every file it reads (schedsweep.plan.identity). A task that reads files names their parameters in a class
attribute `FILE_PARAMS = {"param": None}`; the value may instead name a module whose source file is
the data when the parameter is null (charlm: `{"text": "pydoc_data.topics"}`). Keep `__init__`'s
defaults literals: the planner then reads them from the source without importing your module (and torch).

A task of your own lives in a module importable from the folder you launch in (that folder is put
first on sys.path, as `python -m` does) or from an installed package:

    # mytask.py, next to where you run `schedsweep launch`
    from typing import Iterator
    import torch
    from schedsweep.tasks import derive_seed, seeded

    class MyTask:
        def __init__(self, width: int = 32, seed: int = 0) -> None:
            self.width, self.seed = width, seed
            g = torch.Generator().manual_seed(0)   # data fixed across seeds
            self.x = torch.randn(1024, 8, generator=g)
            self.y = self.x.sum(1, keepdim=True).sin()

        def build_model(self) -> torch.nn.Module:
            with seeded(derive_seed(self.seed, "init")):
                return torch.nn.Sequential(torch.nn.Linear(8, self.width), torch.nn.Tanh(),
                                           torch.nn.Linear(self.width, 1))

        def batches(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
            g = torch.Generator().manual_seed(derive_seed(self.seed, "batches"))
            while True:
                i = torch.randint(0, 896, (32,), generator=g)   # the first 896 rows train
                yield self.x[i], self.y[i]

        def loss(self, model: torch.nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
            x, y = batch
            return torch.nn.functional.mse_loss(model(x), y)

        def evaluate(self, model: torch.nn.Module) -> float:
            return torch.nn.functional.mse_loss(model(self.x[896:]), self.y[896:]).item()

    $ schedsweep launch task=custom task._target_=mytask.MyTask +task.width=32

(`+task.width` because conf/task/custom.yaml does not list `width`; keys the YAML lists are set
without the `+`.)
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import inspect
import sys
from typing import TYPE_CHECKING, Any, Iterator, Mapping, Protocol

from schedsweep.plan import signature
from schedsweep.errors import TaskError

if TYPE_CHECKING:  # torch takes ~1 s to import; planning and --help must not pay for it
    import torch

__all__ = ["METHODS", "MISSING", "Task", "build", "derive_seed", "evaluating", "identity_params", "resolve", "seeded"]

METHODS = ("build_model", "batches", "loss", "evaluate")
MISSING = "???"  # Hydra's mark for a mandatory value nobody set
_EXAMPLE = "schedsweep launch task=custom task._target_=mymodule.MyTask +task.width=32"


class Task(Protocol):
    """What the training loop calls; see the module docstring for the contract of each method."""

    def build_model(self) -> torch.nn.Module: ...

    def batches(self) -> Iterator[Any]: ...

    def loss(self, model: torch.nn.Module, batch: Any) -> torch.Tensor: ...

    def evaluate(self, model: torch.nn.Module) -> float: ...


def resolve(spec: Mapping[str, Any]) -> type:
    """The task class named by spec['_target_'], after checking spec's other keys against it.

    Imports the module (with the current folder first on sys.path), checks the class has the four
    protocol methods, that its constructor accepts `seed` and every key of the spec and that no
    required argument is left unset, then runs the class's optional `check_params(params)`.
    Constructs nothing: the planner calls this once per distinct task spec.
    """
    spec = _plain(spec)
    target = _target(spec)
    cls = _import(target)
    where = f"task _target_ '{target}'"
    if not inspect.isclass(cls):
        kind = "a function" if callable(cls) else f"a {type(cls).__name__}"
        raise TaskError(
            f"{where} is {kind}, not a class. A task is a class whose instances have the methods "
            f"{', '.join(METHODS)}; see `python -c 'import schedsweep.tasks; help(schedsweep.tasks)'`."
        )
    lacking = [m for m in METHODS if not callable(getattr(cls, m, None))]
    if lacking:
        raise TaskError(
            f"{where} is not a task: it lacks the method(s) {', '.join(lacking)}. A task class needs "
            f"all of {', '.join(METHODS)} (see the docstring of schedsweep.tasks)."
        )
    params = _params(spec)
    _check_signature(cls, params, where)
    # Only a static or class method can be called before an instance exists.
    if isinstance(inspect.getattr_static(cls, "check_params", None), (staticmethod, classmethod)):
        cls.check_params(dict(params))  # type: ignore[attr-defined]
    return cls


def identity_params(spec: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str | None]]:
    """(constructor defaults without seed, FILE_PARAMS) of the task class, for its run id.

    Read from the module's source when possible (schedsweep.plan.signature: no import, so no torch);
    otherwise the class is imported and inspected.
    """
    target = _target(_plain(spec))
    _launch_folder_on_path()
    static = signature.read(target)
    if static is not None:
        return {k: v for k, v in static.defaults.items() if k != "seed"}, static.files
    cls = _import(target)
    try:
        parameters = inspect.signature(cls).parameters
    except (TypeError, ValueError):
        parameters = {}  # type: ignore[assignment]
    defaults = {n: p.default for n, p in parameters.items() if p.default is not inspect.Parameter.empty and n != "seed"}
    return defaults, dict(getattr(cls, signature.FILE_PARAMS, None) or {})


def build(spec: Mapping[str, Any], seed: int) -> Task:
    """An instance of the task in `spec`: resolve(spec)(**params, seed=seed)."""
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TaskError(f"a task's seed must be an integer; got {seed!r}.")
    spec = _plain(spec)
    cls = resolve(spec)
    return cls(**_params(spec), seed=seed)


def derive_seed(seed: int, stream: str) -> int:
    """An independent 63-bit seed for one random stream of a run: sha256(f"{seed}:{stream}").

    Init and batch order get different streams, so changing how many numbers one consumes never
    shifts the other; sha256 rather than hash() because str hashes change per process.
    """
    digest = hashlib.sha256(f"{seed}:{stream}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1  # 63 bits: torch seeds must fit in int64


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Run the block with torch's global CPU RNG seeded to `seed`, then restore the caller's RNG state.

    nn.Module constructors draw their initial weights from the global RNG; forking it makes
    build_model deterministic without disturbing whatever the caller had seeded.
    """
    import torch

    with torch.random.fork_rng(devices=[]):  # CPU only: tasks here build CPU models
        torch.manual_seed(seed)
        yield


@contextlib.contextmanager
def evaluating(model: torch.nn.Module) -> Iterator[None]:
    """model.eval() and torch.no_grad() for the block, then the model's previous train/eval mode again."""
    import torch

    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        model.train(was_training)


def _plain(spec: Mapping[str, Any]) -> dict[str, Any]:
    """spec as a plain dict; an OmegaConf node is converted with its missing values left as '???'."""
    if not isinstance(spec, Mapping):
        raise TaskError(
            f"a task config must be a mapping with a _target_ key (pick one with task=NAME); got {spec!r}."
        )
    if type(spec).__module__.startswith("omegaconf"):
        from omegaconf import OmegaConf

        return dict(OmegaConf.to_container(spec, resolve=True))  # type: ignore[arg-type]
    return dict(spec)


def _builtin_tasks() -> list[str]:
    """The task configs shipped in conf/task/ that name a class (not the custom and script templates)."""
    from schedsweep.plan.config import builtin_conf_dir

    folder = builtin_conf_dir() / "task"
    return sorted(p.stem for p in folder.glob("*.yaml") if "_target_: schedsweep." in p.read_text(encoding="utf-8"))


def _target(spec: Mapping[str, Any]) -> str:
    target = spec.get("_target_")
    if target is None:
        raise TaskError(
            f"the task config has no _target_ (keys: {', '.join(map(str, spec)) or 'none'}). Pick a "
            f"built-in task (task={', '.join(_builtin_tasks())}), or name your class: {_EXAMPLE}."
        )
    if target == MISSING:
        raise TaskError(
            f"task._target_ is not set: task=custom needs the import path of your task class, as in "
            f"`{_EXAMPLE}`. The module must be importable from the folder you launch in."
        )
    if not isinstance(target, str) or "." not in target.strip(".") or " " in target:
        raise TaskError(
            f"task _target_ must be an import path 'module.Class' (e.g. "
            f"schedsweep.tasks.classifier.Classifier or mymodule.MyTask); got {target!r}."
        )
    return target


def _params(spec: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in spec.items() if k != "_target_"}


def _import(target: str) -> Any:
    """The object at `target` = 'package.module.Attr', importing package.module."""
    cwd = _launch_folder_on_path()
    module_name, _, attr = target.rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name and (module_name == e.name or module_name.startswith(e.name + ".")):
            raise TaskError(
                f"task _target_ '{target}': no module named '{e.name}'. The module must be importable: "
                f"a file {e.name.replace('.', '/')}.py (or a package folder) in the launch folder "
                f"{cwd}, or an installed package."
            ) from None
        raise TaskError(
            f"task _target_ '{target}': importing module '{module_name}' failed because it imports "
            f"'{e.name}', which is not installed."
        ) from e
    except Exception as e:  # a user's module with a syntax error or a failing top-level statement
        raise TaskError(
            f"task _target_ '{target}': importing module '{module_name}' raised "
            f"{type(e).__name__}: {' '.join(str(e).split())}"  # one paragraph: the CLI prints no traceback
        ) from e
    try:
        return getattr(module, attr)
    except AttributeError:
        tasks = sorted(
            name for name, obj in vars(module).items()
            if inspect.isclass(obj) and all(callable(getattr(obj, m, None)) for m in METHODS)
        )
        found = f"task classes there: {', '.join(tasks)}" if tasks else "it defines no task class"
        raise TaskError(
            f"task _target_ '{target}': module '{module_name}' ({getattr(module, '__file__', '?')}) "
            f"has no attribute '{attr}'; {found}."
        ) from None


def _launch_folder_on_path() -> str:
    """Put the current folder (a Slurm job's snapshot of it: schedsweep.executors.snapshot) first on sys.path,
    as `python -m` does; return it."""
    from schedsweep.plan import code

    cwd = code.code_dir()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    importlib.invalidate_caches()  # a module written since the last import would otherwise be missed
    return cwd


def _check_signature(cls: type, params: Mapping[str, Any], where: str) -> None:
    """Every key of params is a keyword of cls(...), none is missing, and `seed` is accepted."""
    try:
        sig = inspect.signature(cls)
    except (TypeError, ValueError):  # some C-implemented classes have no introspectable signature
        return
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    named = {n: p for n, p in sig.parameters.items() if p.kind in kinds}
    takes_kwargs = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in sig.parameters.values())
    accepted = ", ".join(
        n if p.default is inspect.Parameter.empty else f"{n}={p.default!r}"
        for n, p in named.items() if n != "seed"
    ) or "none"
    if "seed" in params:
        raise TaskError(
            f"{where}: remove 'seed' from the task config; the sweep passes each run's seed itself "
            f"(set it with the top-level key, e.g. seed=0,1,2)."
        )
    if "seed" not in named and not takes_kwargs:
        raise TaskError(
            f"{where}: the constructor {cls.__name__}{sig} must accept a keyword argument `seed: int` "
            f"(the run's seed, for init and batch order); add it to __init__."
        )
    unknown = [k for k in params if k not in named]
    if unknown and not takes_kwargs:
        raise TaskError(
            f"{where} has no parameter(s) {', '.join(map(str, unknown))}. Valid parameters (with "
            f"defaults): {accepted}."
        )
    unset = [k for k, v in params.items() if isinstance(v, str) and v == MISSING]
    required = [
        n for n, p in named.items()
        if n != "seed" and p.default is inspect.Parameter.empty and n not in params
    ]
    positional_only = [
        n for n, p in sig.parameters.items()
        if p.kind is inspect.Parameter.POSITIONAL_ONLY and p.default is inspect.Parameter.empty
    ]
    if unset or required or positional_only:
        names = unset + required + positional_only
        how = (
            "set them on the command line with +task.NAME=VALUE (task.NAME=VALUE for keys the YAML lists)"
            if not positional_only
            else f"{', '.join(positional_only)} must become keyword parameters (no '/' in the signature)"
        )
        raise TaskError(
            f"{where} needs a value for {', '.join(names)}: {how}. Parameters (with defaults): {accepted}."
        )
