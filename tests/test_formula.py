"""Formula schedules: the whitelist grammar, values, constant folding, and hostile input refused with one message."""

from __future__ import annotations

import ast
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schedsweep import schedules
from schedsweep.schedules import formula
from schedsweep.errors import ScheduleError

VARS = ("z", "t", "T", "W")
ENV = {"z": np.array([0.0, 0.25, 0.5, 0.75]), "t": np.array([0.0, 25.0, 50.0, 75.0]), "T": 100.0, "W": 10.0}

VALID: dict[str, Callable[[float, float, float, float], float]] = {
    "1 - z": lambda z, t, T, W: 1 - z,
    "(1 - z) / (1 - 0.5 * z)": lambda z, t, T, W: (1 - z) / (1 - 0.5 * z),
    "-z + +1": lambda z, t, T, W: 1 - z,
    "2 ** -z": lambda z, t, T, W: 2 ** -z,
    "(1 - z) ** 2": lambda z, t, T, W: (1 - z) ** 2,
    "exp(-4 * z)": lambda z, t, T, W: math.exp(-4 * z),
    "log(1 + z) + sqrt(z)": lambda z, t, T, W: math.log(1 + z) + math.sqrt(z),
    "(1 + cos(pi * z)) / 2": lambda z, t, T, W: (1 + math.cos(math.pi * z)) / 2,
    "sin(pi * z / 2)": lambda z, t, T, W: math.sin(math.pi * z / 2),
    "min(1, t / W, 0.9)": lambda z, t, T, W: min(1, t / W, 0.9),
    "max(0.1, 1 - z, 0)": lambda z, t, T, W: max(0.1, 1 - z, 0),
    "clip(2 * (1 - z), 0, 1)": lambda z, t, T, W: min(max(2 * (1 - z), 0), 1),
    "where(t < W, t / W, 1)": lambda z, t, T, W: t / W if t < W else 1,
    "where(0.2 <= z < 0.6, 0.5, 1)": lambda z, t, T, W: 0.5 if 0.2 <= z < 0.6 else 1,
    "where(z > 0.6 or t == 0, 0, 1)": lambda z, t, T, W: 0 if z > 0.6 or t == 0 else 1,
    "where(not z >= 0.5 and z != 0, 1, 0)": lambda z, t, T, W: 1 if not z >= 0.5 and z != 0 else 0,
    "1 / sqrt((t + W) / W)": lambda z, t, T, W: 1 / math.sqrt((t + W) / W),
    "0.5": lambda z, t, T, W: 0.5,
    "T / 200": lambda z, t, T, W: 0.5,
    "2 ** 10 / 1024 - 1e-3": lambda z, t, T, W: 1 - 1e-3,
    "  1 - z  ": lambda z, t, T, W: 1 - z,
}


@pytest.mark.parametrize("text", VALID)
def test_valid_formula_values(text: str) -> None:
    compiled = formula.parse(text, VARS)
    got = compiled(**ENV)
    expected = [VALID[text](z, t, ENV["T"], ENV["W"]) for z, t in zip(ENV["z"], ENV["t"])]
    assert got.shape == (4,) and got.dtype == np.float64
    assert got.tolist() == pytest.approx(expected, rel=1e-15, abs=1e-300)


def test_names_used_and_constants_folded() -> None:
    compiled = formula.parse("where(t < W, t / W, 1) * 2 ** 3 / 8", VARS)
    assert compiled.names == {"t", "W"}
    assert formula.parse("pi", VARS)(z=np.zeros(3)).tolist() == [math.pi] * 3


def test_formula_schedule_equals_its_shape_at_every_budget_and_warmup() -> None:
    for total in (1, 2, 7, 100, 1001):
        for warmup in (0.0, 0.1, 0.3):
            for text, shape in [("(1 - z) / (1 - 0.5 * z)", "rex"), ("1 - z", "linear"),
                                ("(1 + cos(pi * z)) / 2", "cosine"), ("(1 - z) ** 2", "polynomial")]:
                ours = schedules.values({"shape": "formula", "formula": text, "warmup": warmup}, total)
                theirs = schedules.values({"shape": shape, "warmup": warmup}, total)
                assert ours == pytest.approx(theirs, rel=1e-12, abs=1e-15), (text, total, warmup)


# A recursive strategy that builds a formula's text and, from the same tree, a reference in plain math.
leaves = st.one_of(
    st.sampled_from([("z", lambda z: z), ("pi", lambda z: math.pi)]),
    st.floats(0.0, 10.0).map(lambda v: (repr(v), lambda z, v=v: v)),
)


def _extend(children: st.SearchStrategy[tuple[str, Any]]) -> st.SearchStrategy[tuple[str, Any]]:
    binary = st.tuples(st.sampled_from(["+", "-", "*"]), children, children).map(
        lambda o: (f"({o[1][0]} {o[0]} {o[2][0]})",
                   lambda z, o=o: {"+": float.__add__, "-": float.__sub__, "*": float.__mul__}[o[0]](
                       float(o[1][1](z)), float(o[2][1](z)))))
    unary = st.tuples(st.sampled_from(["cos", "sin", "-"]), children).map(
        lambda o: (f"{o[0]}({o[1][0]})", lambda z, o=o: {"cos": math.cos, "sin": math.sin, "-": float.__neg__}[o[0]](
            float(o[1][1](z)))))
    extremum = st.tuples(st.sampled_from(["min", "max"]), children, children).map(
        lambda o: (f"{o[0]}({o[1][0]}, {o[2][0]})", lambda z, o=o: {"min": min, "max": max}[o[0]](
            float(o[1][1](z)), float(o[2][1](z)))))
    return st.one_of(binary, unary, extremum)


trees = st.recursive(leaves, _extend, max_leaves=12)


@settings(max_examples=50, deadline=None)
@given(tree=trees, z=st.floats(0.0, 1.0))
def test_compiled_tree_equals_plain_math(tree: tuple[str, Any], z: float) -> None:
    text, reference = tree
    got = formula.parse(text, VARS)(z=np.array([z]))[0]
    assert got == pytest.approx(reference(z), rel=1e-12, abs=1e-12)


HOSTILE: dict[str, tuple[str, list[str]]] = {
    "__import__": ("__import__('os').system('echo hi')", ["attribute access ('.system')"]),
    "__import__ bare": ("__import__('os')", ["calls '__import__'", "only the functions"]),
    "eval": ("eval('1')", ["calls 'eval'"]),
    "open": ("open('/etc/passwd')", ["calls 'open'"]),
    "attribute": ("z.real", ["attribute access ('.real')"]),
    "dunder attribute": ("(1).__class__", ["attribute access ('.__class__')"]),
    "subscript": ("z[0]", ["indexing"]),
    "lambda": ("(lambda: 1)()", ["lambda"]),
    "comprehension": ("[t for t in (1, 2)]", ["comprehensions"]),
    "generator": ("max(t for t in (1, 2))", ["comprehensions"]),
    "huge power": ("10**10**10", ["power 1e+10", "within +-100"]),
    "huge power, parenthesised": ("2 ** (10 ** 5)", ["power 100000"]),
    "overflowing constant": ("10.0 ** 99 * 10.0 ** 99 * 10.0 ** 99 * 10.0 ** 99", ["not finite"]),
    "infinite literal": ("1e999 * z", ["non-finite number"]),
    "huge int literal": ("1" * 400, ["too large"]),
    "division by zero": ("z + 1 / 0", ["not finite"]),
    "string": ("'a'", ["string"]),
    "f-string": ("f'{z}'", ["strings"]),
    "unknown name": ("x + z", ["name 'x'", "T, W, t, z, pi"]),
    "function as a name": ("exp", ["name 'exp'", "must be called"]),
    "walrus": ("(y := 1)", ["':='"]),
    "conditional": ("1 if z else 0", ["where(c, a, b)"]),
    "statement": ("import os", ["not a valid expression"]),
    "two statements": ("z; 1", ["not a valid expression"]),
    "modulo": ("z % 2", ["'%'"]),
    "invert": ("~z", ["'~'"]),
    "comparison as a value": ("z < 1", ["comparisons outside where()"]),
    "where on a number": ("where(z, 1, 0)", ["not a comparison"]),
    "keyword argument": ("max(z, 1, key=1)", ["keyword arguments"]),
    "wrong arity": ("exp(z, 1)", ["exp() with 2 arguments", "takes 1 argument"]),
    "min of one": ("min(z)", ["two or more"]),
    "boolean": ("True", ["only real numbers"]),
    "complex": ("1j", ["only real numbers"]),
    "tuple": ("(1, 2)", ["tuples"]),
    "overlong": ("z + " * 200 + "1", ["801 characters long", "limited to 500"]),
    "deep nesting": ("-" * 60 + "z", ["deeper than 40"]),
    "empty": ("   ", ["is empty"]),
    "null byte": ("z\x00", ["not a valid expression"]),
    "starred": ("max(*z)", ["'*' unpacking"]),
    "is": ("where(z is 1, 1, 0)", ["'is'"]),
}


@pytest.mark.parametrize(("text", "fragments"), HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_formula_is_one_clear_error(text: str, fragments: list[str]) -> None:
    with pytest.raises(ScheduleError) as caught:
        formula.parse(text, VARS)
    message = str(caught.value)
    assert "\n" not in message and message.startswith("Formula ")
    assert "only the functions" in message or "A formula may use" in message  # says what is allowed
    for fragment in fragments:
        assert fragment in message


def test_hostile_formula_is_refused_when_the_schedule_is_checked() -> None:
    with pytest.raises(ScheduleError, match=r"Schedule 'evil': .*Formula .*calls '__import__'"):
        schedules.check({"shape": "formula", "formula": "__import__('os')"}, 100, "evil")


def test_the_module_never_evaluates_text() -> None:
    # The whitelist compiler is the only interpreter: no eval, exec, compile or __import__ anywhere in it.
    tree = ast.parse(Path(formula.__file__).read_text())
    called = {node.func.id for node in ast.walk(tree) if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)}
    assert not called & {"eval", "exec", "compile", "__import__"}
    attributes = {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)}
    assert not attributes & {"literal_eval", "eval", "exec"}
