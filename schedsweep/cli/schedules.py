"""CLI verbs about schedules: list, show and plot the catalogue, and refine one from a run."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Optional

import typer

from schedsweep.cli.app import ConfigDir, app, friendly, out, schedules_app
from schedsweep.errors import SchedsweepError


@app.command()
@friendly
def refine(
    run: Path = typer.Argument(..., help="A finished run folder, e.g. results/<sweep>/runs/<run id>."),
    name: str = typer.Option(..., "--name", help="Name of the new schedule (the YAML file's name)."),
    norm: str = typer.Option("auto", "--norm", help="l2 (SGD-type), l1 (Adam-type) or auto (from the run's optimizer)."),
    window: float = typer.Option(0.1, "--window", help="Median-filter window as a fraction of the run (the paper: 0.1)."),
    out_file: Optional[Path] = typer.Option(None, "--out", help="YAML to write (default: conf/schedule/NAME.yaml here)."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing schedule file."),
) -> None:
    """Derive a schedule from a run's gradient norms (Defazio et al.'s refinement) and write it as YAML."""
    from schedsweep.schedules import refine as refinement
    from schedsweep.schedules.tabulated import write_spec

    if not name.replace("_", "").replace("-", "").isalnum():
        raise SchedsweepError(f"--name {name!r} must be letters, digits, '_' or '-' (it becomes conf/schedule/NAME.yaml).")
    target = out_file or Path("conf") / "schedule" / f"{name}.yaml"
    if target.exists() and not force:
        raise SchedsweepError(f"'{target}' exists; pass --force to overwrite it or choose another --name.")
    result = refinement.refine_run(run, norm, window)
    spec = refinement.schedule_yaml(result, name, f"run folder {run}")
    write_spec(target, spec)
    figure = run / f"refined-{name}.png"
    refinement.plot(result, figure, f"{name}: refined from run {result.source} ({result.norm} norms)")
    out.print(f"wrote {target} ({result.norm} norms, window {window:g}) and {figure}")
    from schedsweep.plan.config import builtin_conf_dir

    tree = target.resolve().parent.parent
    out.print(f"use it: schedsweep launch schedule=linear,{name}" + ("" if tree == builtin_conf_dir() else f" --config-dir {tree}"))


@schedules_app.command("list")
@friendly
def schedules_list(
    config_dir: Optional[Path] = ConfigDir,
    verbose: bool = typer.Option(False, "-v", "--verbose", help="Every parameter (defaults too) and each schedule's source."),
) -> None:
    """Every schedule in conf/schedule/: name, shape, the parameters it sets apart from its shape's defaults,
    and its description (-v: every parameter and the source)."""
    from rich.table import Column, Table

    from schedsweep import schedules
    from schedsweep.plan.config import composer

    defaults = {name: info.parameters for name, info in schedules.shapes().items()}
    columns = ["name", "shape", Column("parameters", overflow="fold"), "description"] + (["source"] if verbose else [])
    table = Table(*columns, show_lines=verbose)
    with composer(config_dir) as c:
        for name in c.options("schedule"):
            spec = _schedule_spec(c, name, resolve=False)  # power's max_lr shows as ${optimizer.lr}
            shape = str(spec.get("shape"))
            params = {k: v for k, v in spec.items() if k not in ("shape", *schedules.LABEL_KEYS)}
            if not verbose:  # only what this schedule sets apart from its shape
                params = {k: v for k, v in params.items() if not _is_default(v, defaults.get(shape, {}), k)}
            row = [name, shape, ", ".join(f"{k}={v}" for k, v in params.items()), str(spec.get("description", ""))]
            table.add_row(*row, *([str(spec.get("source", ""))] if verbose else []))
    out.print(table)


def _is_default(value: Any, defaults: dict[str, Any], key: str) -> bool:
    if key not in defaults:
        return False
    default = defaults[key]
    try:
        return float(value) == float(default)
    except (TypeError, ValueError):
        return value == default


@schedules_app.command("show")
@friendly
def schedules_show(
    name: str = typer.Argument(..., help="A schedule name (a file in conf/schedule/)."),
    steps: int = typer.Option(100, "--steps", min=1, help="Budget in steps (T)."),
    peak_lr: float = typer.Option(1.0, "--peak-lr", help="Peak learning rate the schedule multiplies."),
    csv: bool = typer.Option(False, "--csv", help="Print 'step,lr' rows instead of a table."),
    config_dir: Optional[Path] = ConfigDir,
) -> None:
    """The learning rate at every step 0..T-1 of a budget of T steps."""
    import numpy as np

    from schedsweep import schedules
    from schedsweep.plan.config import composer

    with composer(config_dir) as c:
        spec = _schedule_spec(c, name, peak_lr)
    if spec.get("shape") == "autolrs":
        _show_adaptive(name, spec, steps, peak_lr)
        return
    values = peak_lr * schedules.check(spec, steps, name)  # vectorised: 10^6 steps in well under a second
    if csv:
        import io

        import pyarrow as pa
        import pyarrow.csv as pa_csv

        text = io.BytesIO()  # Arrow formats 10^6 floats (shortest round-trip form) ~5x faster than repr
        pa_csv.write_csv(pa.table({"step": np.arange(steps), "lr": values}), text,
                         pa_csv.WriteOptions(include_header=False))
        sys.stdout.flush()
        sys.stdout.buffer.write(b"step,lr\n" + text.getvalue())
        sys.stdout.buffer.flush()
        return
    from rich.table import Table

    table = Table("step", "lr", title=f"{name} over {steps} steps, peak lr {peak_lr:g}")
    for t, v in enumerate(values):
        table.add_row(str(t), f"{v:.6g}")
    out.print(table)


@schedules_app.command("plot")
@friendly
def schedules_plot(
    names: list[str] = typer.Argument(..., help="Schedule names (files in conf/schedule/), one line each."),
    steps: int = typer.Option(100, "--steps", min=1, help="Budget in steps (T)."),
    out_file: Path = typer.Option(..., "--out", help="Image to write (PNG, or any format matplotlib knows by suffix)."),
    peak_lr: float = typer.Option(1.0, "--peak-lr", help="Peak learning rate the schedules multiply."),
    config_dir: Optional[Path] = ConfigDir,
) -> None:
    """Plot the learning rate of one or more schedules over a budget of T steps into one figure."""
    from schedsweep import schedules
    from schedsweep.plan.config import composer

    with composer(config_dir) as c:
        specs = {name: _schedule_spec(c, name, peak_lr) for name in names}
    adaptive = [name for name, spec in specs.items() if spec.get("shape") == "autolrs"]
    if adaptive:
        raise SchedsweepError(f"{', '.join(adaptive)}: its LRs are chosen during training, so it has no curve to plot "
                              "before a run; `schedsweep report` plots the LR each run logged (its lr figure).")
    curves = {name: peak_lr * schedules.check(spec, steps, name) for name, spec in specs.items()}
    from schedsweep.results import plots

    figure = plots.schedule_lines(curves, steps, peak_lr)
    try:
        figure.savefig(out_file, dpi=120)
    except (OSError, ValueError) as e:
        raise SchedsweepError(f"cannot write the plot to '{out_file}': {e}") from None
    out.print(f"wrote {out_file}")


def _show_adaptive(name: str, spec: dict[str, Any], steps: int, peak_lr: float) -> None:
    """What `schedules show` says of an adaptive schedule: how it picks its LRs, and its stages at this budget."""
    from rich.table import Table

    from schedsweep import schedules

    schedules.check(spec, steps, name)  # a budget too small for one search: one readable error
    f = schedules.build(spec, steps)
    trial_steps = steps - f.kept_steps
    out.print(f"{name}: {spec.get('description', '')}\n"
              f"Its LRs are chosen during training (Bayesian optimisation over trials that rewind), between "
              f"{peak_lr * f.min_lr:g} and {peak_lr:g}, so there is no LR curve before a run: `schedsweep report` "
              f"plots the LR each run logged. Of a budget of {steps} steps, {trial_steps} are trials and "
              f"{f.kept_steps} are kept (a run's steps count both; its trial_steps, the trials).")
    table = Table("stage", "first kept step", "trials x steps", "kept steps", "forecasts", title=f"{name} over {steps} steps")
    for k, stage in enumerate(f.stages):
        table.add_row(str(k), str(stage.start), f"{f.trials} x {stage.trial}", str(stage.length),
                      f"eval loss every {stage.every}" if stage.held_out else "training loss")
    out.print(table)


def _schedule_spec(c: Any, name: str, peak_lr: Optional[float] = None, resolve: bool = True) -> dict[str, Any]:
    """The schedule's spec; interpolations (power's max_lr: ${optimizer.lr}) resolved with optimizer.lr = peak_lr."""
    if peak_lr is not None and not peak_lr > 0:  # also NaN
        raise SchedsweepError(f"--peak-lr must be a number > 0 (the peak learning rate the schedule multiplies); got {peak_lr!r}.")
    from schedsweep import schedules
    from schedsweep.plan.config import check_option

    if resolve:
        return schedules.compose_spec(c, name, peak_lr)
    check_option(c, "schedule", name)
    cfg, _ = c.compose([f"schedule={name}"], "config")
    return cfg["schedule"]
