"""Budgets in tokens or samples: `budget_unit=tokens|samples` binds each budget (an amount of that unit) to the
steps that consume it, so an LLM sweep states `budget=1e9,3e9` as the papers do.

    steps = round_half_up(budget / per_step),  per_step = tokens_per_step | samples_per_step, or from the task:
        tokens:  task.batch_size x task.context x accumulate      samples:  task.batch_size x accumulate

(the global batch: data-parallel ranks split the task's batch, they do not multiply it). A run's id holds
its steps, as before, never the unit: `budget=1e9 budget_unit=tokens` and the same steps given directly are
one run. The run's `budget` label is the amount with its unit ("1e9 tokens"), which the plan, the report's
budget column and its figures show.

A batch-size schedule (a ramp) is not supported: steps and tokens are then no longer proportional. It would
need the loop to take the batch size per step from a schedule (the task's stream to yield batches of that
size, resumable at a token position rather than a step) and this binding to integrate the ramp.
"""

from __future__ import annotations

from typing import Any

from schedsweep.errors import ConfigError

UNITS = ("steps", "tokens", "samples")


def bind_keys(cfg: dict[str, Any], keys: Any) -> tuple[int, str, dict[str, Any]]:
    """(steps, the budget label, {unit, n}) of the config's budget in keys.budget_unit (tokens or samples)."""
    given = keys.tokens_per_step if keys.budget_unit == "tokens" else keys.samples_per_step
    per = per_step(keys.budget_unit, given, cfg["task"], keys.accumulate)
    steps, name = bind(cfg["budget"], keys.budget_unit, per)
    return steps, name, {"unit": keys.budget_unit, "n": per}


def per_step(unit: str, given: int | None, task: dict[str, Any], accumulate: int) -> int:
    """Tokens (or samples) one optimizer step consumes: `given`, else from the task's batch_size (x context)."""
    if given is not None:
        return given
    needs = ("batch_size", "context") if unit == "tokens" else ("batch_size",)
    missing = [k for k in needs if isinstance(task.get(k), bool) or not isinstance(task.get(k), int)]
    if missing:
        raise ConfigError(
            f"budget_unit={unit} needs {unit}_per_step, or a task with integer {' and '.join(needs)} to compute it "
            f"(the task has no integer {', '.join('task.' + k for k in missing)}). Set {unit}_per_step=N.")
    n = accumulate
    for key in needs:
        n *= int(task[key])
    return n


def bind(budget: Any, unit: str, per: int) -> tuple[int, str]:
    """(steps, label) of an amount `budget` of `unit`: steps rounded half up, at least 2."""
    if isinstance(budget, bool) or not isinstance(budget, (int, float)) or not budget > 0:
        raise ConfigError(f"budget {budget!r} is not allowed with budget_unit={unit}: give an amount of {unit} "
                          f"(e.g. budget=1e9,3e9).")
    steps = int(budget / per + 0.5)
    if steps < 2:
        raise ConfigError(f"budget {budget!r} {unit} at {per:,} {unit} a step rounds to {steps} step(s); a run needs "
                          f"at least 2: give a budget >= {2 * per:,} {unit}.")
    return steps, label(budget, unit)


def label(amount: float, unit: str) -> str:
    """'1e9 tokens', '3.5e9 tokens', '65,536 samples': short, and exact up to 4 significant digits."""
    if amount < 1e6 and float(amount).is_integer():
        return f"{int(amount):,} {unit}"
    mantissa, exponent = f"{amount:.4g}".split("e") if "e" in f"{amount:.4g}" else (f"{amount:.4g}", "")
    return f"{mantissa}e{int(exponent)} {unit}" if exponent else f"{mantissa} {unit}"


def plan_line(runs: Any) -> str | None:
    """'budgets in tokens (8,192 tokens a step): 1e9 tokens = 122,070 steps, ...' for the plan, None in steps."""
    shown: dict[str, tuple[int, int]] = {}
    for run in runs:
        per = run.labels.get("per_step")
        if per:
            shown.setdefault(str(run.labels["budget"]), (int(run.labels["steps"]), int(per["n"])))
    if not shown:
        return None
    unit = next(r.labels["per_step"]["unit"] for r in runs if r.labels.get("per_step"))
    pers = sorted({per for _, per in shown.values()})
    each = f"{pers[0]:,} {unit} a step" if len(pers) == 1 else f"{', '.join(f'{p:,}' for p in pers)} {unit} a step by setting"
    parts = [f"{b} = {s:,} steps ({s * p:,} {unit} trained)" for b, (s, p) in sorted(shown.items(), key=lambda kv: kv[1][0] * kv[1][1])]
    return f"budgets in {unit} ({each}): " + "; ".join(parts)
