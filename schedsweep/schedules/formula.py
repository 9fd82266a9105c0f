"""Safe arithmetic formulas for `formula:` schedules: parsed with ``ast``, checked against a whitelist,
compiled into a tree of closures over numpy arrays. User text is never passed to eval, exec or compile.

Grammar (anything else is one :class:`~schedsweep.errors.ScheduleError` naming what was found):

* numbers, the variables given by the caller (schedules use ``z t T W``) and the constant ``pi``;
* ``+ - * / **`` and unary ``-``/``+``; an exponent that folds to a constant must be within +-MAX_EXPONENT;
* ``exp log sqrt cos sin`` (one argument), ``min max`` (two or more), ``clip(x, lo, hi)``;
* ``where(cond, a, b)``, where ``cond`` is a comparison (``< <= > >= == !=``, chains allowed) or
  ``and`` / ``or`` / ``not`` of comparisons; comparisons are allowed nowhere else.

Constant subexpressions are folded at parse time and must be finite (``1/0`` and ``10**10**10`` fail
there). Evaluation is elementwise float64 with numpy's warnings silenced: a formula that is not
finite at some step gives nan or inf there, which the schedule check reports with the step.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Union

import numpy as np

from schedsweep.errors import ScheduleError

MAX_LENGTH = 500  # characters: a schedule formula is one line, not a program
MAX_NODES = 300  # syntax-tree nodes
MAX_DEPTH = 40  # nesting of operations and calls
MAX_EXPONENT = 100.0  # |constant exponent|: 10**10**10 folds to an exponent of 1e10 and is refused
CONSTANTS = {"pi": math.pi}
_UNARY: dict[str, Callable[[Any], Any]] = {"exp": np.exp, "log": np.log, "sqrt": np.sqrt, "cos": np.cos, "sin": np.sin}
FUNCTIONS = (*_UNARY, "min", "max", "clip", "where")
_BINARY: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: np.add, ast.Sub: np.subtract, ast.Mult: np.multiply, ast.Div: np.true_divide, ast.Pow: np.power,
}
_COMPARE: dict[type, Callable[[Any, Any], Any]] = {
    ast.Lt: np.less, ast.LtE: np.less_equal, ast.Gt: np.greater, ast.GtE: np.greater_equal,
    ast.Eq: np.equal, ast.NotEq: np.not_equal,
}
_REFUSED = {  # node type -> how the error names it
    "Attribute": "attribute access", "Subscript": "indexing", "Lambda": "lambda", "ListComp": "comprehensions",
    "SetComp": "comprehensions", "DictComp": "comprehensions", "GeneratorExp": "comprehensions",
    "IfExp": "'a if c else b' (use where(c, a, b))", "NamedExpr": "':='", "Starred": "'*' unpacking",
    "JoinedStr": "strings", "List": "lists", "Tuple": "tuples", "Dict": "dicts", "Set": "sets",
    "Mod": "'%'", "FloorDiv": "'//'", "MatMult": "'@'", "BitAnd": "'&'", "BitOr": "'|'", "BitXor": "'^'",
    "LShift": "'<<'", "RShift": "'>>'", "Invert": "'~'", "Not": "'not' outside where()", "BoolOp":
    "'and'/'or' outside where()", "Compare": "comparisons outside where()", "In": "'in'", "NotIn": "'not in'",
    "Is": "'is'", "IsNot": "'is not'", "Await": "await", "Yield": "yield", "YieldFrom": "yield",
}

Value = Union[float, np.ndarray]
Env = Mapping[str, Value]
_Node = Callable[[Env], Value]


class Formula:
    """A compiled formula: ``formula(z=..., t=...)`` evaluates it elementwise and returns a float64 array."""

    def __init__(self, text: str, node: _Node, names: frozenset[str]) -> None:
        self.text, self._node, self.names = text, node, names

    def __call__(self, **variables: Value) -> np.ndarray:
        shape = np.broadcast_shapes(*(np.shape(v) for v in variables.values()))
        with np.errstate(all="ignore"):
            value = self._node(variables)
        return np.broadcast_to(np.asarray(value, dtype=np.float64), shape).copy()

    def __repr__(self) -> str:
        return f"Formula({self.text!r})"


def parse(text: Any, variables: Sequence[str]) -> Formula:
    """Compile ``text`` over ``variables`` (plus ``pi``), or raise ScheduleError saying what is not allowed."""
    if not isinstance(text, str):
        raise _error(text, f"a formula must be a string, not {type(text).__name__}")
    if len(text) > MAX_LENGTH:
        raise _error(text[:40] + "...", f"is {len(text)} characters long; formulas are limited to {MAX_LENGTH}")
    if not text.strip():
        raise _error(text, "is empty")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as e:
        detail = getattr(e, "msg", None) or type(e).__name__
        raise _error(text, f"is not a valid expression ({detail})") from None
    if sum(1 for _ in ast.walk(tree)) > MAX_NODES:
        raise _error(text, f"has more than {MAX_NODES} syntax nodes")
    compiler = _Compiler(text, frozenset(variables))
    node, _ = compiler.compile(tree.body, 0)
    return Formula(text, node, frozenset(compiler.used))


def _error(text: Any, problem: str, node: ast.AST | None = None) -> ScheduleError:
    where = f" at column {node.col_offset + 1}" if node is not None and hasattr(node, "col_offset") else ""
    return ScheduleError(f"Formula {text!r} {problem}{where}. {_HELP}")


_HELP = (
    "A formula may use numbers, its variables, pi, + - * / ** and unary -, the functions "
    "exp log sqrt cos sin min max clip(x, lo, hi), and where(cond, a, b) with comparisons in cond."
)


class _Compiler:
    """Whitelisted AST -> closures; each compile() returns (closure, folded constant or None)."""

    def __init__(self, text: str, variables: frozenset[str]) -> None:
        self.text, self.variables, self.used = text, variables, set()

    def fail(self, problem: str, node: ast.AST) -> ScheduleError:
        return _error(self.text, problem, node)

    def compile(self, node: ast.AST, depth: int) -> tuple[_Node, float | None]:
        if depth > MAX_DEPTH:
            raise self.fail(f"nests deeper than {MAX_DEPTH} levels", node)
        if isinstance(node, ast.Constant):
            return self.constant(node)
        if isinstance(node, ast.Name):
            return self.name(node)
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            return self.binary(node, depth)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            operand, value = self.compile(node.operand, depth + 1)
            if isinstance(node.op, ast.UAdd):
                return operand, value
            return self.fold(lambda env: np.negative(operand(env)), value is not None, node)
        if isinstance(node, ast.Call):
            return self.call(node, depth)
        raise self.fail(f"uses {self.describe(node)}, which is not allowed", node)

    def describe(self, node: ast.AST) -> str:
        if isinstance(node, ast.Attribute):
            return f"attribute access ('.{node.attr}')"
        for part in (node, getattr(node, "op", None)):
            if part is not None and type(part).__name__ in _REFUSED:
                return _REFUSED[type(part).__name__]
        if isinstance(node, ast.Compare):
            return _REFUSED["Compare"]
        return f"a {type(node).__name__} expression"

    def constant(self, node: ast.Constant) -> tuple[_Node, float]:
        value = node.value
        if isinstance(value, str) or isinstance(value, bytes):
            raise self.fail("contains a string, which is not allowed", node)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(f"contains the constant {value!r}; only real numbers are allowed", node)
        try:
            number = float(value)
        except OverflowError:
            raise self.fail("contains a number too large for a float", node) from None
        if not math.isfinite(number):
            raise self.fail(f"contains the non-finite number {value!r}", node)
        return (lambda env: number), number

    def name(self, node: ast.Name) -> tuple[_Node, float | None]:
        key = node.id
        if key in CONSTANTS:
            number = CONSTANTS[key]
            return (lambda env: number), number
        if key not in self.variables:
            allowed = ", ".join([*sorted(self.variables), *CONSTANTS])
            hint = " (functions must be called)" if key in FUNCTIONS else ""
            raise self.fail(f"uses the name {key!r}{hint}; the allowed names are {allowed}", node)
        self.used.add(key)
        return (lambda env: env[key]), None

    def binary(self, node: ast.BinOp, depth: int) -> tuple[_Node, float | None]:
        left, left_value = self.compile(node.left, depth + 1)
        right, right_value = self.compile(node.right, depth + 1)
        if isinstance(node.op, ast.Pow) and right_value is not None and abs(right_value) > MAX_EXPONENT:
            raise self.fail(f"raises to the power {right_value:g}; constant exponents must be within "
                            f"+-{MAX_EXPONENT:g}", node)
        op = _BINARY[type(node.op)]
        return self.fold(lambda env: op(left(env), right(env)), left_value is not None and right_value is not None,
                         node)

    def call(self, node: ast.Call, depth: int) -> tuple[_Node, float | None]:
        if not isinstance(node.func, ast.Name):
            raise self.fail(f"uses {self.describe(node.func)} to name a function, which is not allowed; only the "
                            f"functions {', '.join(FUNCTIONS)} may be called", node)
        name = node.func.id
        if name not in FUNCTIONS:
            raise self.fail(f"calls {name!r}; only the functions {', '.join(FUNCTIONS)} may be called", node)
        for arg in node.args:  # before counting them: max(*z) and max(t for t in z) are refused for what they are
            if isinstance(arg, (ast.Starred, ast.GeneratorExp)):
                raise self.fail(f"uses {self.describe(arg)}, which is not allowed", arg)
        if node.keywords:
            raise self.fail(f"passes keyword arguments to {name}(); give arguments by position", node)
        arity = {"min": None, "max": None, "clip": 3, "where": 3}.get(name, 1)
        count = len(node.args)
        if (arity is None and count < 2) or (arity is not None and count != arity):
            wanted = "two or more arguments" if arity is None else f"{arity} argument{'s' * (arity > 1)}"
            raise self.fail(f"calls {name}() with {count} argument{'s' * (count != 1)}; it takes {wanted}", node)
        if name == "where":
            condition = self.condition(node.args[0], depth + 1)
            (a, _), (b, _) = (self.compile(arg, depth + 1) for arg in node.args[1:])
            return (lambda env: np.where(condition(env), a(env), b(env))), None
        compiled = [self.compile(arg, depth + 1) for arg in node.args]
        args = [c for c, _ in compiled]
        constant = all(v is not None for _, v in compiled)
        if name in _UNARY:
            fn, (arg,) = _UNARY[name], args
            return self.fold(lambda env: fn(arg(env)), constant, node)
        if name == "clip":
            x, lo, hi = args
            return self.fold(lambda env: np.minimum(np.maximum(x(env), lo(env)), hi(env)), constant, node)
        reduce = np.minimum if name == "min" else np.maximum

        def extremum(env: Env) -> Value:
            result = args[0](env)
            for arg in args[1:]:
                result = reduce(result, arg(env))
            return result

        return self.fold(extremum, constant, node)

    def condition(self, node: ast.AST, depth: int) -> _Node:
        if depth > MAX_DEPTH:
            raise self.fail(f"nests deeper than {MAX_DEPTH} levels", node)
        if isinstance(node, ast.Compare):
            if not all(type(op) in _COMPARE for op in node.ops):
                raise self.fail(f"uses {self.describe(next(o for o in node.ops if type(o) not in _COMPARE))}, "
                                "which is not allowed", node)
            terms = [self.compile(t, depth + 1)[0] for t in (node.left, *node.comparators)]
            ops = [_COMPARE[type(op)] for op in node.ops]

            def compare(env: Env) -> Value:
                values = [term(env) for term in terms]
                result = ops[0](values[0], values[1])
                for op, a, b in zip(ops[1:], values[1:], values[2:]):
                    result = np.logical_and(result, op(a, b))
                return result

            return compare
        if isinstance(node, ast.BoolOp):
            parts = [self.condition(v, depth + 1) for v in node.values]
            combine = np.logical_and if isinstance(node.op, ast.And) else np.logical_or

            def boolean(env: Env) -> Value:
                result = parts[0](env)
                for part in parts[1:]:
                    result = combine(result, part(env))
                return result

            return boolean
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            inner = self.condition(node.operand, depth + 1)
            return lambda env: np.logical_not(inner(env))
        raise self.fail("has a where() condition that is not a comparison (e.g. where(t < W, a, b))", node)

    def fold(self, fn: _Node, constant: bool, node: ast.AST) -> tuple[_Node, float | None]:
        """Evaluate a constant subexpression now: it must be finite (catches 1/0, log(0), 10.0**400)."""
        if not constant:
            return fn, None
        with np.errstate(all="ignore"):
            value = float(fn({}))
        if not math.isfinite(value):
            raise self.fail(f"has a constant part that is not finite ({value})", node)
        return (lambda env: value), value
