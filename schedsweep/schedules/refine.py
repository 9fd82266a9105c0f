"""Refinement (Defazio et al., "When, Why and How Much?", arXiv 2310.07831): a schedule from a run's
gradient norms.

With G_t the gradient norm logged at step t of a previous run (L2 for SGD-type optimizers, L1 with
power 1 for Adam-type ones), smoothed by a median filter over ~10% of the run:

    w_t = G_t^-p  (p = 2 for L2, 1 for L1),   eta_t ∝ w_t * sum_{s>t} w_s,   eta_{T-1} = 0,

normalised to a maximum of 1. Constant norms give exactly linear decay (the paper's worst-case
optimal schedule); large early norms give a warm-up, rising late norms a faster final anneal.
The result is a shape over the budget fraction [0, 1], written as a `piecewise` schedule YAML, so
one source run can be applied at every budget.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from schedsweep.schedules.tabulated import piecewise_spec
from schedsweep.train import metrics
from schedsweep.sweep.run_folder import RECORD, RunFolder
from schedsweep.errors import SchedsweepError

NORMS = {"l2": ("grad_norm", 2.0), "l1": ("grad_norm_l1", 1.0)}
MIN_STEPS = 10


class RefineError(SchedsweepError):
    """The source run cannot give a refined schedule (no norms, too short, NaN or zero norms)."""


@dataclass(frozen=True)
class Refined:
    fractions: np.ndarray  # t / T for the source run's steps
    schedule: np.ndarray  # refined multiplier at each step, max 1, last 0
    norms: np.ndarray  # raw gradient norms
    smoothed: np.ndarray
    norm: str  # "l2" | "l1"
    window: float
    source: str  # run id


def median_smooth(g: np.ndarray, window: float) -> np.ndarray:
    """The authors' median filter: width 2*(int(window*T)//2)+1, the right end reflect-padded.

    Equals scipy.ndimage.median_filter(np.pad(g, (0, pad), 'reflect'), size=width, mode='nearest')[:-pad]
    with pad = 2 * width, as in the paper's README.
    """
    width = 2 * (int(window * len(g)) // 2) + 1
    if width <= 1:
        return g.copy()
    pad = 2 * width
    padded = np.pad(g, (0, pad), mode="reflect")
    half = width // 2
    edged = np.pad(padded, (half, half), mode="edge")  # 'nearest' at both ends of the padded signal
    windows = np.lib.stride_tricks.sliding_window_view(edged, width)
    return np.median(windows, axis=1)[: len(g)]


def closed_form(g: np.ndarray, power: float) -> np.ndarray:
    """eta_t ∝ w_t * sum_{s>t} w_s with w = g^-power, eta_{T-1} = 0, normalised to max 1."""
    w = g.astype(np.float64) ** -power
    tail = np.cumsum(w[::-1])[::-1]  # tail[t] = sum_{s>=t} w_s
    sched = np.zeros_like(w)
    sched[:-1] = w[:-1] * tail[1:]
    peak = sched.max()
    if not peak > 0:
        raise RefineError("the refined schedule is zero everywhere (a run of one step?).")
    return sched / peak


def choose_norm(norm: str, optimizer_spec: dict[str, Any]) -> str:
    """'auto' = l1 for Adam-type optimizers (coordinate-wise scaling), l2 for SGD-type ones."""
    if norm == "auto":
        return "l1" if "adam" in str(optimizer_spec.get("_target_", "")).lower() else "l2"
    if norm not in NORMS:
        raise RefineError(f"--norm {norm!r} is not one of: auto, {', '.join(NORMS)}.")
    return norm


def refine_run(run_path: Path, norm: str = "auto", window: float = 0.1) -> Refined:
    if not 0 <= window < 1:
        raise RefineError(f"--window {window} must be a fraction of the run in [0, 1) (the paper uses 0.1).")
    try:
        record = RunFolder(run_path).record()
    except (OSError, ValueError):
        raise RefineError(f"'{run_path}' is not a schedsweep run folder: it has no readable {RECORD}.") from None
    norm = choose_norm(norm, record["spec"]["optimizer"])
    column, power = NORMS[norm]
    table = metrics.read_metrics(RunFolder(run_path).metrics, columns=["step", column])
    values = table[column].to_numpy(zero_copy_only=False).astype(np.float64) if table.num_rows else np.array([])
    if len(values) == 0 or np.isnan(values).all():
        raise RefineError(f"run '{run_path.name}' has no '{column}' values to refine from (did it log any step?).")
    if len(values) < MIN_STEPS:
        raise RefineError(f"run '{run_path.name}' has {len(values)} steps; refinement needs at least {MIN_STEPS}.")
    bad = np.flatnonzero(~np.isfinite(values) | (values <= 0))
    if len(bad):
        raise RefineError(
            f"run '{run_path.name}' has {len(bad)} NaN, infinite or zero '{column}' values (first at step {bad[0]}); "
            "refine from a run that trained without diverging."
        )
    smoothed = median_smooth(values, window)
    steps = table["step"].to_numpy()
    total = int(record["spec"]["steps"])
    return Refined(steps / total, closed_form(smoothed, power), values, smoothed, norm, window, record["id"])


def schedule_yaml(refined: Refined, name: str, source_label: str) -> dict[str, Any]:
    """A piecewise schedule over [0, 1] of the budget, with provenance in its description and source."""
    values = np.array(refined.schedule, dtype=float)
    values[-1] = 0.0  # the closed form reaches 0 at the last update
    return piecewise_spec(
        refined.fractions, values,
        description=f"refined from run {refined.source} ({source_label}): {refined.norm} gradient norms, "
        f"median window {refined.window:g} of the run",
        source="Defazio, Cutkosky, Mehta, Mishchenko, When, Why and How Much? (arXiv 2310.07831), closed form")


def plot(refined: Refined, out: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(7, 6), sharex=True)
    top.plot(refined.fractions, refined.norms, lw=0.8, alpha=0.6, label=f"{refined.norm} gradient norm")
    top.plot(refined.fractions, refined.smoothed, lw=1.8, label=f"median-smoothed ({refined.window:g} of the run)")
    top.set_ylabel("gradient norm")
    top.legend()
    bottom.plot(refined.fractions, refined.schedule, lw=1.8, color="C3", label="refined schedule")
    bottom.plot(refined.fractions, 1 - refined.fractions, lw=1, ls="--", color="gray", label="linear decay")
    bottom.set_xlabel("fraction of the budget")
    bottom.set_ylabel("lr / peak lr")
    bottom.legend()
    fig.suptitle(title)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
