"""A class's constructor parameters read from its source, without importing its module.

Run ids hash a task's and an optimizer's parameters with their defaults filled in, so planning needs
the defaults of `torch.optim.AdamW` and of a task class. Importing them costs ~4 s of CPU (torch);
reading `__init__`'s literal defaults from the module's source with `ast` costs milliseconds. The
same answer as `inspect.signature(cls)` whenever `read` gives one (tests compare the two for every
built-in task and torch optimizer); `read` returns None, and the caller imports, for anything it
cannot read for sure: a decorated class, a metaclass, no `__init__` of its own, a default that is
not a literal, a module that is not a plain .py file.
"""

from __future__ import annotations

import ast
import importlib.machinery
import importlib.util
import sys
from dataclasses import dataclass
from typing import Any

FILE_PARAMS = "FILE_PARAMS"  # class attribute: {parameter: module whose source a null value reads}
_MAX_HOPS = 8  # re-exports followed (torch.optim -> torch.optim.adamw is one)


@dataclass(frozen=True)
class Params:
    """The keyword parameters of a constructor (self and positional-only ones left out)."""

    names: tuple[str, ...]
    defaults: dict[str, Any]  # name -> default, for those that have one
    var_keyword: bool  # takes **kwargs
    files: dict[str, str | None]  # the class's FILE_PARAMS (see schedsweep.plan.identity)


def read(target: str) -> Params | None:
    """The parameters of the class at 'package.module.Class', or None when they cannot be read statically."""
    module, _, name = target.rpartition(".")
    if not module:
        return None
    try:
        return _class(module, name, _MAX_HOPS)
    except (OSError, SyntaxError, ValueError, ImportError):
        return None


def source_path(module: str) -> str | None:
    """The .py file of `module`, found without executing it or its packages (None if not a plain file)."""
    if module in sys.modules:
        found = getattr(sys.modules[module], "__file__", None)
        return found if isinstance(found, str) and found.endswith(".py") else None
    parts = module.split(".")
    spec = importlib.util.find_spec(parts[0])  # a top-level name: located, not imported
    for i in range(1, len(parts)):
        if spec is None or not spec.submodule_search_locations:
            return None
        spec = importlib.machinery.PathFinder.find_spec(".".join(parts[: i + 1]), list(spec.submodule_search_locations))
    if spec is None or not isinstance(spec.origin, str) or not spec.origin.endswith(".py"):
        return None
    return spec.origin


def _class(module: str, name: str, hops: int) -> Params | None:
    path = source_path(module)
    if path is None or hops < 0:
        return None
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), path)
    binding: ast.stmt | None = None
    for node in tree.body:  # the last top-level statement that binds `name` is what the module exports
        if isinstance(node, ast.ClassDef) and node.name == name:
            binding = node
        elif isinstance(node, ast.ImportFrom) and any((a.asname or a.name) == name for a in node.names):
            binding = node
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.FunctionDef, ast.Import)) and name in _bound(node):
            binding = node
    if isinstance(binding, ast.ImportFrom):
        alias = next(a for a in reversed(binding.names) if (a.asname or a.name) == name)
        package = module if path.endswith("__init__.py") else module.rpartition(".")[0]
        source = importlib.util.resolve_name("." * binding.level + (binding.module or ""), package) \
            if binding.level else binding.module
        return _class(source, alias.name, hops - 1) if source else None
    if isinstance(binding, ast.ClassDef):
        return _params(binding)
    return None


def _bound(node: ast.stmt) -> set[str]:
    if isinstance(node, ast.FunctionDef):
        return {node.name}
    if isinstance(node, ast.Import):
        return {(a.asname or a.name).split(".")[0] for a in node.names}
    targets = node.targets if isinstance(node, ast.Assign) else [node.target]  # type: ignore[union-attr]
    return {t.id for t in targets if isinstance(t, ast.Name)}


def _params(cls: ast.ClassDef) -> Params | None:
    if cls.decorator_list or cls.keywords:  # dataclass, attrs, metaclass=...: the signature is generated
        return None
    init, files = None, {}
    for node in cls.body:
        if isinstance(node, ast.FunctionDef) and node.name in ("__new__", "__signature__"):
            return None
        if isinstance(node, ast.FunctionDef) and node.name == "__init__":
            init = node
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == FILE_PARAMS for t in node.targets):
            files = ast.literal_eval(node.value)  # ValueError (-> None) when not a literal
    if init is None or init.decorator_list or not isinstance(files, dict):
        return None
    args = init.args
    positional = [*args.posonlyargs, *args.args]
    first_default = len(positional) - len(args.defaults)
    names: list[str] = []
    defaults: dict[str, Any] = {}
    for i, arg in enumerate(positional[1:], 1):  # [0] is self
        if i < len(args.posonlyargs):
            continue
        names.append(arg.arg)
        if i >= first_default:
            defaults[arg.arg] = ast.literal_eval(args.defaults[i - first_default])
    for arg, default in zip(args.kwonlyargs, args.kw_defaults):
        names.append(arg.arg)
        if default is not None:
            defaults[arg.arg] = ast.literal_eval(default)
    return Params(tuple(names), defaults, args.kwarg is not None, files)
