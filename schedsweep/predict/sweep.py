"""`schedsweep predict` on a sweep: fit a law per setting and peak LR on the runs `--fit` selects, then
predict every other run (and `--what-if` runs never trained) and compare predicted with actual results.

Runs are read through schedsweep.results.collect, as `report` does. A run's curve is its logged `lr` column
(the LR of every step) and its held-out `eval_loss` (the loss after update t, the metric the report
ranks by) from 10% of the run on (the initial transient is not a function of the LR area); a what-if run's LR comes from schedsweep.schedules at the peak LR of its group.
DataFrames out; schedsweep.predict.output renders them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from schedsweep import schedules
from schedsweep.results import collect, report
from schedsweep.plan import variants
from schedsweep.predict.fitting import Curve, PredictError, fit
from schedsweep.predict.laws import Law
from schedsweep.sweep.status import DONE

COLUMN = "eval_loss"
TRANSIENT = 0.1  # the first 10% of a run is its initial transient, which no law of the LR area describes: not fitted nor scored
CURVE_COLUMNS = ["step", "lr", COLUMN]


@dataclass
class Group:
    """One setting at one peak LR: its fitted law and its runs (with their curves)."""

    key: dict[str, Any]
    law: Law
    full_steps: int
    runs: pd.DataFrame  # id, schedule, budget, steps, seed, fitted, actual, predicted, rel_error, curve_error
    curves: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=dict)  # id -> lr, steps, loss, predicted
    what_if: pd.DataFrame | None = None  # schedule, budget, steps, predicted, rank
    warmup: float = 0.0  # fraction of the budget before the fitted runs' LR peaks
    validation: Any = None  # predict.validate.Validation, once checked

    @property
    def label(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.key.items())


def parse_selection(items: list[str], option: str) -> dict[str, list[str]]:
    """['schedule=constant,cosine', 'budget=1.0'] -> {'schedule': ['constant', 'cosine'], 'budget': ['1.0']}."""
    out: dict[str, list[str]] = {}
    for item in items:
        key, sep, values = item.partition("=")
        if not sep or not key or not values:
            raise PredictError(f"{option} {item!r} is not KEY=VALUE[,VALUE...] (e.g. {option} schedule=constant,cosine).")
        out.setdefault(key.strip(), []).extend(v.strip() for v in values.split(",") if v.strip())
    return out


def _matches(runs: pd.DataFrame, selection: dict[str, list[str]], option: str) -> pd.Series:
    keep = pd.Series(True, index=runs.index)
    for key, values in selection.items():
        if key not in runs.columns or key in collect.MEASURES:
            choices = [c for c in runs.columns if c not in collect.MEASURES and c != "id"]
            raise PredictError(f"{option} key {key!r} is not a column of this sweep's runs; choose from: {', '.join(choices)}.")
        keep &= runs[key].map(lambda v: variants.matches(v, values))
    return keep


@dataclass
class Selection:
    """The done runs of a sweep and which of them `--fit` chose, grouped by setting and peak LR: what a fit
    needs, known before fitting (so that --optimize checks its arguments first)."""

    sweep: Path
    result: Any  # collect.Collected
    done: pd.DataFrame
    chosen: pd.Series
    keys: list[str]

    def groups(self) -> list[tuple[dict[str, Any], pd.DataFrame, pd.DataFrame]]:
        """(key, every done run of the group, its chosen runs) for each group with a chosen run."""
        out = []
        for values, members in self.done.groupby(self.keys, sort=False, dropna=False):
            fitted = members[self.chosen.loc[members.index]]
            if not fitted.empty:
                out.append((dict(zip(self.keys, values if isinstance(values, tuple) else (values,))), members, fitted))
        return out


def select(sweep: Path, fit_on: dict[str, list[str]]) -> Selection:
    """The done runs and the ones `fit_on` selects; an error naming the values that exist when it selects none."""
    result = collect.collect(sweep)
    runs = collect.runs_frame(result.summary)
    done = runs[runs["status"] == DONE]
    chosen = _matches(done, fit_on, "--fit")
    if not chosen.any():
        selection = " ".join(f"{k}={','.join(v)}" for k, v in fit_on.items())
        have = "; ".join(f"{k}: {', '.join(map(str, dict.fromkeys(done[k])))}" for k in fit_on if k in done)
        raise PredictError(f"--fit {selection} selects no finished run of sweep '{sweep}' "
                           f"({len(done)} of its {len(runs)} runs are done" + (f"; its done runs have {have}" if have else "")
                           + f"); check the names with `schedsweep report {sweep}`.")
    return Selection(sweep, result, done, chosen, [*report.setting_columns(runs), "lr"])


def predict_sweep(sweep: Path | Selection, fit_on: dict[str, list[str]] | None = None, law: str = "mpl") -> list[Group]:
    """Fit `law` per (setting, peak LR) on the selected done runs; predict every done run of the group."""
    chosen = sweep if isinstance(sweep, Selection) else select(sweep, fit_on or {})
    rows = collect.read_rows(chosen.sweep, chosen.result.summary, list(chosen.done["id"]), CURVE_COLUMNS)
    by_run = {rid: frame.sort_values("step") for rid, frame in rows.groupby("run_id")}
    groups = []
    for key, members, fitted in chosen.groups():
        curves = {rid: _curve(by_run.get(rid), rid) for rid in members["id"]}
        try:
            law_fit = fit([curves[rid] for rid in fitted["id"]], law=law)
        except PredictError as e:
            raise PredictError(f"setting {', '.join(f'{k}={v}' for k, v in key.items())}: {e}") from None
        groups.append(_evaluate(key, law_fit, members, set(fitted["id"]), curves))
    return groups


def _curve(frame: pd.DataFrame | None, run_id: str) -> Curve:
    if frame is None or frame.empty:
        raise PredictError(f"run {run_id} has no logged rows: collect the sweep again (schedsweep collect --rebuild).")
    lr = frame["lr"].to_numpy(dtype=np.float64)
    if len(lr) != frame["step"].iloc[-1] + 1 or np.isnan(lr).any():
        raise PredictError(f"run {run_id} has no LR for every step (it logged {len(lr)} rows up to step "
                           f"{frame['step'].iloc[-1]}): a curve needs the LR of every step from step 0.")
    observed = frame[frame[COLUMN].notna() & (frame["step"] >= TRANSIENT * len(lr))]
    return Curve(lr, observed["step"].to_numpy(), observed[COLUMN].to_numpy(dtype=np.float64), run_id).checked()


def _evaluate(key: dict[str, Any], law: Law, members: pd.DataFrame, fitted: set[str], curves: dict[str, Curve]) -> Group:
    table = members[["id", "schedule", "budget", "steps", "seed"]].copy()
    table["fitted"] = table["id"].isin(fitted)
    out: dict[str, tuple] = {}
    actual, predicted, curve_error = [], [], []
    for rid in table["id"]:
        c = curves[rid]
        pred = law.predict(c.lr)
        out[rid] = (c.lr, c.steps, c.loss, pred)
        actual.append(c.loss[-1] if len(c.loss) else np.nan)
        predicted.append(pred[c.steps[-1]] if len(c.steps) else np.nan)
        curve_error.append(float(np.mean(np.abs(pred[c.steps] - c.loss) / c.loss)) if len(c.steps) else np.nan)
    table["actual"], table["predicted"], table["curve_error"] = actual, predicted, curve_error
    table["rel_error"] = (table["predicted"] - table["actual"]).abs() / table["actual"]
    full = full_steps_of(members)
    first = curves[next(iter(sorted(fitted)))]
    warmup = float(np.argmax(first.lr)) / len(first.lr)
    return Group(key, law, full, table.reset_index(drop=True), out, warmup=warmup)


def full_steps_of(members: pd.DataFrame) -> int:
    """Steps of the 100% budget: steps / budget of a run whose budget is a fraction, else the most steps
    (absolute budgets: steps, or a label such as '1,280 tokens' of budget_unit=tokens|samples)."""
    for budget, steps in zip(members["budget"], members["steps"]):
        try:
            b = float(budget)
        except (TypeError, ValueError):  # a token or sample budget's label: absolute
            continue
        if 0 < b <= 1 and not (isinstance(budget, int) and b >= 2):
            return int(round(int(steps) / b))
    return int(members["steps"].max())


def rankings(group: Group) -> pd.DataFrame:
    """Per budget: predicted and actual rank of every schedule (mean over seeds), Spearman and top-1 match."""
    rows = []
    means = group.runs.groupby(["steps", "schedule"], sort=True)[["actual", "predicted"]].mean().reset_index()
    for steps, cell in means.groupby("steps"):
        if len(cell) < 2:
            continue
        actual_rank = cell["actual"].rank(method="min")
        predicted_rank = cell["predicted"].rank(method="min")
        rows.append({
            "steps": int(steps),
            "budget": group.runs.loc[group.runs["steps"] == steps, "budget"].iloc[0],
            "schedules": len(cell),
            "actual_order": " > ".join(cell.sort_values("actual")["schedule"]),
            "predicted_order": " > ".join(cell.sort_values("predicted")["schedule"]),
            "spearman": float(spearman(cell["actual"].to_numpy(), cell["predicted"].to_numpy())),
            "top1": bool(set(cell["schedule"][actual_rank == 1]) & set(cell["schedule"][predicted_rank == 1])),
        })
    return pd.DataFrame(rows)


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation (average ranks on ties); NaN when either side is constant."""
    ra = pd.Series(a).rank().to_numpy()
    rb = pd.Series(b).rank().to_numpy()
    if len(a) < 2 or ra.std() == 0 or rb.std() == 0:
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])


def parse_budget(text: str, full_steps: int) -> int:
    """A budget as the sweep writes it: a fraction of full_steps (1.0, 2.0 beyond the sweep), or an integer >= 2 of steps."""
    try:
        value = float(text)
    except ValueError:
        raise PredictError(f"--what-if budget {text!r} is not a number (a fraction of full_steps, or steps).") from None
    steps = int(value) if text.strip().isdigit() and value >= 2 else int(round(value * full_steps))
    if not np.isfinite(value) or steps < 2:
        raise PredictError(f"--what-if budget {text!r} gives {steps} steps at full_steps={full_steps}; a run needs at least 2.")
    return steps


def _outside(group: Group, steps: int) -> str:
    """Why a what-if run is an extrapolation: a budget beyond the fitted runs' ('' when inside)."""
    fitted = group.runs.loc[group.runs["fitted"], "steps"]
    low, high = int(fitted.min()), int(fitted.max())
    if steps < low:
        return f"extrapolated: below the fitted budgets ({low}-{high} steps)"
    if steps > high:
        return f"extrapolated: beyond the fitted budgets ({low}-{high} steps)"
    return ""


def what_if(group: Group, what: dict[str, list[str]], config_dir: Path | None = None) -> pd.DataFrame:
    """Predict runs never trained: every schedule x budget in `what` at the group's peak LR, ranked per budget."""
    unknown = set(what) - {"schedule", "budget"}
    if unknown:
        raise PredictError(f"--what-if key(s) {', '.join(sorted(unknown))} are not supported: give schedule=... and/or budget=....")
    names = what.get("schedule") or sorted(set(group.runs["schedule"]))
    budgets = what.get("budget") or [str(b) for b in sorted(set(group.runs["budget"]), key=float)]
    peak = float(group.key["lr"])
    rows = []
    for name in names:
        spec = schedules.load(name, peak_lr=peak, config_dir=config_dir)
        if spec.get("shape") in ("plateau", "autolrs"):
            raise PredictError(f"--what-if schedule {name!r} (shape {spec['shape']}) sets its LR from the losses it sees; "
                               "a law of the LR cannot predict it.")
        for budget in budgets:
            steps = parse_budget(budget, group.full_steps)
            lr = peak * schedules.check(spec, steps, name)
            rows.append({"schedule": name, "budget": budget, "steps": steps,
                         "predicted": float(group.law.predict(lr, np.array([steps - 1]))[0]),
                         "outside": _outside(group, steps)})
    frame = pd.DataFrame(rows)
    frame["rank"] = frame.groupby("steps")["predicted"].rank(method="min").astype(int)
    return frame.sort_values(["steps", "rank"]).reset_index(drop=True)
