"""`schedsweep predict`: the steps behind the command, so that the CLI stays one thin function.

Every argument of --optimize is checked before the (slow) fit; the law is validated on the sweep's runs
(schedsweep.predict.validate) before any ranking is printed, and --optimize refuses a law that does not
rank the sweep's schedules unless --force. The schedule goes into a conf tree of the user's
(OUT/schedule/NAME.yaml, OUT = ./schedules by default), never into schedsweep's own conf/.
"""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from schedsweep.schedules.tabulated import write_spec
from schedsweep.predict import optimize as optimizing
from schedsweep.predict import output
from schedsweep.predict.fitting import PredictError
from schedsweep.predict.sweep import Selection, full_steps_of, parse_budget, parse_selection, predict_sweep, select, what_if
from schedsweep.predict.validate import validate
from schedsweep.sweep import store

DEFAULT_OUT = Path("schedules")


def run(sweep: Path, fit_on: list[str], what: list[str], law: str, optimize: bool, budget: str, name: str | None,
        out: Path | None, force: bool, plot: Path | None, config_dir: Path | None, console: Console) -> None:
    store.require_sweep(sweep)
    target = conf_dir = None
    if optimize:
        target, conf_dir = _target(name, out, force)
    wanted = parse_selection(what, "--what-if") if what else None
    selection = select(sweep, parse_selection(fit_on, "--fit"))
    steps = _check_optimize(selection, budget) if optimize else 0
    groups = predict_sweep(selection, law=law)
    for group in groups:
        group.validation = validate(group)
        if wanted is not None:
            group.what_if = what_if(group, wanted, config_dir)
    output.show(console, groups)
    figure = plot or sweep / "predicted" / f"curves-{law}.png"
    output.plot(groups, figure)
    console.print(f"\nwrote {figure} (actual curves solid, predicted dashed)")
    if optimize:
        assert target is not None and conf_dir is not None
        _optimize(groups[0], steps, budget, name or "", target, conf_dir, sweep, force, console)


def _target(name: str | None, out: Path | None, force: bool) -> tuple[Path, Path]:
    """The schedule file and the conf tree (--config-dir) it is in."""
    from schedsweep.plan.config import builtin_conf_dir

    if not name:
        raise PredictError("--optimize writes a schedule: give it a name with --name NAME (it becomes OUT/schedule/NAME.yaml).")
    if not name.replace("_", "").replace("-", "").isalnum():
        raise PredictError(f"--name {name!r} must be letters, digits, '_' or '-' (it becomes OUT/schedule/NAME.yaml).")
    out = out or DEFAULT_OUT
    if out.suffix in (".yaml", ".yml"):
        if out.parent.name != "schedule":
            raise PredictError(f"--out {out}: a file must be DIR/schedule/NAME.yaml, so that --config-dir DIR finds it; "
                               "or give a folder (--out DIR).")
        target, conf_dir = out, out.parent.parent
    else:
        target, conf_dir = out / "schedule" / f"{name}.yaml", out
    builtin = builtin_conf_dir().resolve()
    if conf_dir.resolve() == builtin or builtin in conf_dir.resolve().parents:
        raise PredictError(f"--out {out} is schedsweep's own conf/ ({builtin}): a schedule there would appear in every "
                           "project that uses this installation. Choose a folder of your own (default ./schedules).")
    if target.exists() and not force:
        raise PredictError(f"'{target}' exists; pass --force to overwrite it or choose another --name.")
    return target, conf_dir


def _check_optimize(selection: Selection, budget: str) -> int:
    """One setting and peak LR to optimise for, and the budget's steps: checked before fitting."""
    groups = selection.groups()
    if len(groups) != 1:
        labels = "; ".join(", ".join(f"{k}={v}" for k, v in key.items()) for key, _, _ in groups)
        keys, others = [], [key for key, _, _ in groups[1:]]  # the fewest keys that single out the first group
        for k, v in groups[0][0].items():
            if any(o[k] != v for o in others):
                keys.append(k)
                others = [o for o in others if o[k] == v]
            if not others:
                break
        narrow = " ".join(f"--fit {k}={groups[0][0][k]}" for k in keys)
        raise PredictError(f"--optimize needs one setting and peak LR, but the fit has {len(groups)} ({labels}); "
                           f"narrow it to values of this sweep, e.g. {narrow}.")
    return parse_budget(budget, full_steps_of(groups[0][1]))


def _optimize(group, steps: int, budget: str, name: str, target: Path, conf_dir: Path, sweep: Path, force: bool,
              console: Console) -> None:

    check = group.validation
    if check is not None and not check.ranks:
        if not force:
            raise PredictError(f"--optimize refuses: {check.line()} A schedule it finds best is as likely to be worse "
                               "(pass --force to write it anyway).")
        console.print("[bold yellow]--force: writing a schedule from a law that does not rank this sweep's schedules.[/]")
    result = optimizing.optimize(group.law, float(group.key["lr"]), steps, group.warmup)
    spec = optimizing.schedule_yaml(result, name, group.law, f"sweep {sweep.resolve().name} ({group.label})")
    write_spec(target, spec)
    console.print(f"wrote {target}: predicted final loss {result.predicted:.4g} at {steps} steps "
                  f"(linear decay: {result.start:.4g})", highlight=False)
    console.print(f"launch it: schedsweep launch --config-dir {conf_dir} schedule={name} budget={budget} ...", highlight=False)
