"""`schedsweep predict`: the steps behind the command, so that cli.py stays one thin function."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from schedsweep.schedules.tabulated import write_spec
from schedsweep.sweep import store
from schedsweep.predict import optimize as optimizing
from schedsweep.predict import output
from schedsweep.predict.fitting import PredictError
from schedsweep.predict.sweep import parse_budget, parse_selection, predict_sweep, what_if


def run(sweep: Path, fit_on: list[str], what: list[str], law: str, optimize: bool, budget: str, name: str | None,
        target: Path | None, force: bool, plot: Path | None, config_dir: Path | None, console: Console) -> None:
    if optimize and not name:
        raise PredictError("--optimize writes a schedule: give it a name with --name NAME (conf/schedule/NAME.yaml).")
    if name is not None and not name.replace("_", "").replace("-", "").isalnum():
        raise PredictError(f"--name {name!r} must be letters, digits, '_' or '-' (it becomes conf/schedule/NAME.yaml).")
    target = target or Path("conf") / "schedule" / f"{name}.yaml"
    if optimize and target.exists() and not force:
        raise PredictError(f"'{target}' exists; pass --force to overwrite it or choose another --name.")
    store.require_sweep(sweep)
    groups = predict_sweep(sweep, parse_selection(fit_on, "--fit"), law)
    if what:
        wanted = parse_selection(what, "--what-if")
        for group in groups:
            group.what_if = what_if(group, wanted, config_dir)
    output.show(console, groups)
    figure = plot or sweep / "predicted" / f"curves-{law}.png"
    output.plot(groups, figure)
    console.print(f"\nwrote {figure} (actual curves solid, predicted dashed)")
    if optimize:
        _optimize(groups, budget, name or "", target, sweep, console)


def _optimize(groups: list, budget: str, name: str, target: Path, sweep: Path, console: Console) -> None:

    if len(groups) != 1:
        labels = "; ".join(g.label for g in groups)
        raise PredictError(f"--optimize needs one setting and peak LR, but the fit has {len(groups)} ({labels}); "
                           "narrow it, e.g. --fit optimizer=adamw --fit lr=0.003.")
    group = groups[0]
    steps = parse_budget(budget, group.full_steps)
    result = optimizing.optimize(group.law, float(group.key["lr"]), steps, group.warmup)
    spec = optimizing.schedule_yaml(result, name, group.law, f"sweep {sweep.resolve().name} ({group.label})")
    write_spec(target, spec)
    console.print(f"wrote {target}: predicted final loss {result.predicted:.4g} at {steps} steps "
                  f"(linear decay: {result.start:.4g})")
    console.print(f"launch it: schedsweep launch schedule={name} budget={budget} ...")
