"""The two-stage refinement study (`schedsweep launch +study=refinement ...`).

Stage 1 is the sweep as planned; it must include `linear`, the refinement paper's baseline.
Once every stage-1 run has finished, stage 2 refines a schedule from the best linear run of each
(task, optimizer) (or of each and budget, with `per_budget`), writes it under
results/<sweep>/refined/, and adds its runs to the same sweep, so the report ranks refined next
to linear and the rest. Nothing has to stay alive between the stages: relaunching the same
command after stage 1 plans stage 2 (on Slurm, that is how stage 2 gets submitted).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import yaml

from schedsweep.schedules.tabulated import write_spec
from schedsweep.schedules import refine
from schedsweep.sweep import store
from schedsweep.sweep.run_folder import RunFolder
from schedsweep.errors import ConfigError
from schedsweep.plan.grid import Plan, make_plan
from schedsweep.sweep.status import DONE, FINAL

REPLACED = ("schedule", "optimizer", "task")  # stage 2 pins these per refined schedule


@dataclass(frozen=True)
class Settings:
    norm: str = "auto"
    window: float = 0.1  # 10% of the run: the paper's default median window
    per_budget: bool = False

    @classmethod
    def parse(cls, raw: dict[str, Any]) -> "Settings":
        unknown = sorted(set(raw) - set(cls.__dataclass_fields__))
        if unknown:
            raise ConfigError(f"refinement has no key(s) {', '.join(unknown)}. Valid: norm, window, per_budget.")
        return cls(**raw)


def stage_one_done(sweep_dir: Path) -> bool:
    return all(
        RunFolder.of(sweep_dir, r["id"]).status().status in FINAL
        for r in store.read_plan(sweep_dir)
        if r["labels"]["schedule"] != "refined"
    )


def sources(sweep_dir: Path, per_budget: bool) -> dict[tuple[str, str, Any], dict[str, Any]]:
    """(task, optimizer, budget or None) -> the finished linear run with the lowest final eval loss.

    Without per_budget, only the largest budget's runs are candidates: one source per (task, optimizer),
    applied at every budget as a shape over [0, 1] of the budget. Losses are compared within a task only.
    """
    linear = [r for r in store.read_plan(sweep_dir) if r["labels"]["schedule"] == "linear"]
    if not linear:
        raise ConfigError("the refinement study needs `linear` in stage 1 (the paper's baseline): add schedule=linear,...")
    largest: dict[str, int] = {}
    for r in linear:
        largest[r["labels"]["task"]] = max(largest.get(r["labels"]["task"], 0), r["labels"]["steps"])
    best: dict[tuple[str, str, Any], tuple[float, dict[str, Any]]] = {}
    for record in linear:
        labels = record["labels"]
        if not per_budget and labels["steps"] != largest[labels["task"]]:
            continue
        status = RunFolder.of(sweep_dir, record["id"]).status()
        if status.status != DONE:
            continue
        loss = status.final_eval_loss if status.final_eval_loss is not None else math.inf
        key = (labels["task"], labels["optimizer"], labels["budget"] if per_budget else None)
        if key not in best or loss < best[key][0]:
            best[key] = (loss, record)
    if not best:
        raise ConfigError(f"no linear run of sweep '{sweep_dir}' finished: nothing to refine from.")
    return {key: record for key, (_, record) in best.items()}


def stage_two(
    sweep_dir: Path, overrides: Sequence[str], settings: Settings, *, config_dir: Path | None, config_name: str
) -> list[Plan]:
    """Refine, write the schedules, and plan stage 2 into the same sweep."""
    kept = [o for o in overrides if o.split("=", 1)[0].lstrip("+~") not in (*REPLACED, *(("budget",) if settings.per_budget else ()))]
    found = sources(sweep_dir, settings.per_budget)
    several_tasks = len({task for task, _, _ in found}) > 1
    plans = []
    for (task, optimizer, budget), record in sorted(found.items(), key=str):
        # One name in every setting, so the report ranks `refined` next to `linear` for each (task, optimizer);
        # each (task, optimizer, budget) gets its own folder, hence its own spec and run ids.
        name = "refined"
        setting = f"{task}_{optimizer}" if several_tasks else optimizer
        folder = sweep_dir / "refined" / (f"{setting}_budget_{budget}" if settings.per_budget else setting)
        result = refine.refine_run(RunFolder.of(sweep_dir, record["id"]).path, settings.norm, settings.window)
        label = f"linear, {task}, {optimizer}, budget {record['labels']['budget']}, lr {record['labels']['lr']:g}"
        spec = refine.schedule_yaml(result, name, label)
        write_spec(folder / "schedule" / f"{name}.yaml", spec)
        refine.plot(result, folder / f"{name}.png", f"refined for {task}, {optimizer}: {label}")
        pinned = [f"task={task}", f"schedule={name}", f"optimizer={optimizer}",
                  *([f"budget={budget}"] if settings.per_budget else [])]
        plans.append(make_plan([*kept, *pinned], config_dir=config_dir, config_name=config_name,
                               name=sweep_dir.name, generated=[folder]))
    return plans


def source_notes(sweep_dir: Path) -> list[str]:
    """One line per refined schedule of the sweep: where it came from (the report prints them)."""
    notes = []
    for path in sorted((sweep_dir / "refined").glob("*/schedule/refined.yaml")):
        spec = yaml.safe_load(path.read_text(encoding="utf-8"))
        notes.append(f"refined ({path.parent.parent.name}): {spec.get('description', '')}")
    return notes
