"""The report's figures, drawn with matplotlib (Agg) into PNG bytes; readable without the terminal.

- `final_vs_budget`: final metric vs budget, one line per schedule, seed std as error bars (REX's figure);
- `curves`: train and eval loss over steps per budget, one line per schedule at its best LR (mean over seeds);
- `lr`: the learning rates actually used (the logged lr column) per budget, one line per schedule;
- `avg_rank`: average rank vs budget across settings, one panel per optimizer (REX Fig. 1);
- `sensitivity`: final metric vs peak LR per schedule, per budget (robustness, not just the best point);
- `profile`: the Dolan-More performance profile rho_s(tau) of final-metric ratios.

Import this module only when drawing: matplotlib is slow to import and the CLI's --help must be instant.
Per-setting figures show the first MAX_SETTINGS settings (rows); `Figures.notes` says what was left out.
"""

from __future__ import annotations

import io
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from schedsweep import files
from schedsweep.results.compare import budget_fraction, rank_by_budget  # noqa: E402
from schedsweep.results.render import budget_label  # noqa: E402
from schedsweep.results.report import Report, setting_columns  # noqa: E402

MAX_SETTINGS = 4  # rows of per-setting figures: a page stays readable (and quick to draw)
MAX_POINTS = 400  # points per curve: more does not show at this size
CURVE_COLUMNS = ["step", "loss", "eval_loss", "lr"]
PANEL = (4.0, 2.8)  # inches per panel
DPI = 100
MIN_WIDTH = 6.0  # inches: room for the title and the legend of a one-panel figure


@dataclass
class Figures:
    """PNG bytes by name, in drawing order, and notes on what could not be drawn."""

    png: dict[str, bytes] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def save(self, folder: Path) -> list[Path]:
        folder.mkdir(parents=True, exist_ok=True)
        paths = []
        for name, data in self.png.items():
            path = folder / f"{name}.png"
            files.write_bytes(path, data)
            paths.append(path)
        return paths


def shown_cells(rep: Report) -> pd.DataFrame:
    """The ranked rows of the settings the per-setting figures show (the first MAX_SETTINGS)."""
    sid = rep.ranked.groupby(setting_columns(rep.ranked), sort=False, dropna=False).ngroup()
    return rep.ranked[sid < MAX_SETTINGS]


def draw(rep: Report, best: pd.DataFrame, rows: pd.DataFrame) -> Figures:
    """Every figure. `best`: report.best_runs of the shown settings; `rows`: their per-step CURVE_COLUMNS
    with run_id (collect.read_rows)."""
    figs = Figures()
    settings = _settings(rep.ranked)
    if len(settings) > MAX_SETTINGS:
        figs.notes.append(f"Per-setting figures show the first {MAX_SETTINGS} of {len(settings)} settings.")
    colors = _colors(rep.ranked)
    figs.png["final_vs_budget"] = final_vs_budget(rep, colors)
    curve = _mean_curves(best, rows)
    if curve.empty:
        figs.notes.append("No finished run has logged metrics: no loss curves or LR plots.")
    else:
        figs.png["curves"] = curves(rep, curve, colors)
        figs.png["lr"] = lr_used(rep, curve, colors)
    figs.png["avg_rank"] = avg_rank(rep, colors)
    if rep.sensitivity["lr"].nunique() > 1:
        figs.png["sensitivity"] = sensitivity(rep, colors)
    else:
        figs.notes.append("The peak LR was not swept: no sensitivity plot.")
    if len(rep.profile.columns) and rep.performance["n"].max() > 0:
        figs.png["profile"] = profile(rep, colors)
    return figs


def final_vs_budget(rep: Report, colors: dict[str, Any]) -> bytes:
    fraction = budget_fraction(rep.ranked)
    settings = _settings(rep.ranked)[:MAX_SETTINGS]
    cols = min(3, len(settings))
    fig, axes = _grid((len(settings) + cols - 1) // cols, cols)
    for ax, (title, part) in zip(axes.flat, settings):
        part = part.assign(fraction=fraction.loc[part.index])
        for schedule, g in part.groupby("schedule", sort=False):
            g = g[np.isfinite(g["mean"])].sort_values("fraction")
            ax.errorbar(g["fraction"], g["mean"], yerr=g["std"].fillna(0), marker="o", ms=3, capsize=2,
                        label=str(schedule), color=colors[schedule])
        _budget_axis(ax, part["fraction"], _unit_labels(part))
        ax.set_title(title, fontsize=8)
        ax.set_ylabel(rep.metric, fontsize=8)
    return _finish(fig, axes, f"{rep.metric} vs budget (best peak LR per schedule; bars: seed std)")


def curves(rep: Report, curve: pd.DataFrame, colors: dict[str, Any]) -> bytes:
    settings, budgets = _layout(rep)
    fig, axes = _grid(2 * len(settings), len(budgets))
    for r, (title, _) in enumerate(settings):
        for c, budget in enumerate(budgets):
            panel = curve[(curve["setting"] == title) & (curve["budget_label"] == budget)]
            for what, ax in (("loss", axes[2 * r, c]), ("eval_loss", axes[2 * r + 1, c])):
                for schedule, g in panel.groupby("schedule", sort=False):
                    g = g.dropna(subset=[what])
                    ax.plot(g["step"], g[what], lw=1, color=colors[schedule], label=str(schedule),
                            marker="o" if what == "eval_loss" and len(g) < 30 else None, ms=2)
                ax.set_title(f"{title}\n{budget}: {'train' if what == 'loss' else 'eval'} loss", fontsize=7)
                ax.set_xlabel("step", fontsize=7)
                ax.set_ylabel("train loss" if what == "loss" else "eval loss", fontsize=7)
    return _finish(fig, axes, "Loss curves at each schedule's best peak LR (mean over seeds; train loss smoothed)")


def lr_used(rep: Report, curve: pd.DataFrame, colors: dict[str, Any]) -> bytes:
    settings, budgets = _layout(rep)
    fig, axes = _grid(len(settings), len(budgets))
    for r, (title, _) in enumerate(settings):
        for c, budget in enumerate(budgets):
            panel = curve[(curve["setting"] == title) & (curve["budget_label"] == budget)]
            for schedule, g in panel.groupby("schedule", sort=False):
                axes[r, c].plot(g["step"], g["lr"], lw=1, color=colors[schedule], label=str(schedule))
            axes[r, c].set_title(f"{title}\n{budget}", fontsize=7)
            axes[r, c].set(xlabel="step", ylabel="learning rate")
            axes[r, c].xaxis.label.set_fontsize(7)
            axes[r, c].yaxis.label.set_fontsize(7)
    return _finish(fig, axes, "Learning rate used at each step (logged lr column, best peak LR per schedule)")


def avg_rank(rep: Report, colors: dict[str, Any]) -> bytes:
    by = ("optimizer",) if rep.ranked["optimizer"].nunique() > 1 else ()
    grid = rank_by_budget(rep.ranked, by=by)
    groups = list(grid.groupby(level=0, sort=False)) if by else [("all settings", grid)]
    fig, axes = _grid(1, len(groups))
    fractions = [c for c in grid.columns if c not in ("all", "n")]
    for ax, (name, part) in zip(axes.flat, groups):
        for key, row in part.iterrows():
            schedule = key[-1] if isinstance(key, tuple) else key
            ax.plot(fractions, [row[f] for f in fractions], marker="o", ms=3, color=colors[schedule], label=str(schedule))
        _budget_axis(ax, pd.Series(fractions))
        ax.invert_yaxis()  # rank 1 (best) on top
        ax.set_title(f"optimizer={name}" if by else name, fontsize=8)
        ax.set_ylabel("average rank (1 = best)", fontsize=8)
    return _finish(fig, axes, "Average rank vs budget across settings (REX Fig. 1)")


def sensitivity(rep: Report, colors: dict[str, Any]) -> bytes:
    settings, budgets = _layout(rep)
    sens = rep.sensitivity
    sens = sens.assign(setting=_titles(sens), budget_label=sens["budget"].map(budget_label))
    fig, axes = _grid(len(settings), len(budgets))
    for r, (title, _) in enumerate(settings):
        for c, budget in enumerate(budgets):
            ax = axes[r, c]
            panel = sens[(sens["setting"] == title) & (sens["budget_label"] == budget)]
            finite = panel[np.isfinite(panel["mean"])]
            top = finite["mean"].max() if len(finite) else 1.0
            for schedule, g in panel.groupby("schedule", sort=False):
                ok = g[np.isfinite(g["mean"])]
                ax.plot(ok["lr"], ok["mean"], marker="o", ms=3, color=colors[schedule], label=str(schedule))
                bad = g[g["n_diverged"] > 0]
                ax.scatter(bad["lr"], [top] * len(bad), marker="x", color=colors[schedule])
            ax.set_xscale("log")
            ax.set_title(f"{title}\n{budget}", fontsize=7)
            ax.set_xlabel("peak lr", fontsize=7)
            ax.set_ylabel(rep.metric, fontsize=7)
    return _finish(fig, axes, f"Sensitivity: {rep.metric} vs peak LR (mean over seeds; x = diverged)")


def profile(rep: Report, colors: dict[str, Any]) -> bytes:
    fig, axes = _grid(1, 1, size=(6.0, 3.5))
    ax = axes[0, 0]
    for schedule in rep.profile.columns:
        ax.step(rep.profile.index, rep.profile[schedule], where="post", color=colors[schedule], label=str(schedule))
    ax.set_xlabel("τ (ratio to the best result of the problem)", fontsize=8)
    ax.set_ylabel("share of problems within τ", fontsize=8)
    ax.set_ylim(-0.02, 1.02)
    return _finish(fig, axes, f"Dolan-More profile of final-metric ratios, r_max = {rep.r_max:g}")


# ---- helpers


def _mean_curves(best: pd.DataFrame, rows: pd.DataFrame) -> pd.DataFrame:
    """Mean over seeds per (cell, step); train loss smoothed over ~2% of the run; <= MAX_POINTS per cell."""
    if best.empty or rows.empty:
        return pd.DataFrame()
    meta = best[["id", "_cell", "schedule", "budget"]].assign(setting=_titles(best)).rename(columns={"id": "run_id"})
    frame = rows.merge(meta, on="run_id")
    curve = frame.groupby(["_cell", "step"], sort=True)[["loss", "eval_loss", "lr"]].mean().reset_index()
    curve = curve.merge(meta.drop_duplicates("_cell").drop(columns="run_id"), on="_cell")
    out = []
    for _, g in curve.groupby("_cell", sort=False):
        window = max(1, len(g) // 50)
        g = g.assign(loss=g["loss"].rolling(window, min_periods=1).mean())
        stride = max(1, len(g) // MAX_POINTS)
        keep = (np.arange(len(g)) % stride == 0) | g["eval_loss"].notna().to_numpy()
        keep[-1] = True
        out.append(g[keep])
    curve = pd.concat(out, ignore_index=True)
    return curve.assign(budget_label=curve["budget"].map(budget_label))


def _settings(frame: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    setting = setting_columns(frame)
    return [(" ".join(f"{c}={v}" for c, v in zip(setting, key if isinstance(key, tuple) else (key,))), part)
            for key, part in frame.groupby(setting, sort=False, dropna=False)]


def _titles(frame: pd.DataFrame) -> pd.Series:
    setting = setting_columns(frame)
    return pd.Series([" ".join(f"{c}={v}" for c, v in zip(setting, key)) for key in zip(*(frame[c] for c in setting))],
                     index=frame.index)


def _layout(rep: Report) -> tuple[list[tuple[str, pd.DataFrame]], list[str]]:
    settings = _settings(rep.ranked)[:MAX_SETTINGS]
    order = rep.ranked.sort_values("steps", kind="stable")["budget"]
    return settings, list(dict.fromkeys(order.map(budget_label)))


def _colors(ranked: pd.DataFrame) -> dict[str, Any]:
    cmap = plt.get_cmap("tab10" if ranked["schedule"].nunique() <= 10 else "tab20")
    return {s: cmap(i % cmap.N) for i, s in enumerate(dict.fromkeys(ranked["schedule"]))}


def _unit_labels(part: pd.DataFrame) -> dict[float, str] | None:
    """Tick labels of budgets given in tokens or samples ('1e9 tokens', schedsweep.plan.units), by fraction."""
    if not part["budget"].map(lambda b: isinstance(b, str)).all():
        return None
    return dict(zip(part["fraction"].astype(float), part["budget"].astype(str)))


def _budget_axis(ax: Any, fractions: pd.Series, labels: dict[float, str] | None = None) -> None:
    values = fractions.astype(float)
    if len(values) and values.max() / max(values.min(), 1e-12) > 4:
        ax.set_xscale("log")
    ax.set_xticks(sorted(set(values)))
    ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    if labels:  # budgets in tokens or samples: the amounts as planned
        ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda x, _: labels.get(x, f"{x * 100:.3g}%")))
        ax.set_xlabel("budget", fontsize=7)
        return
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda x, _: f"{x * 100:.3g}%"))
    ax.set_xlabel("budget (share of the full run)", fontsize=7)


def _grid(rows: int, cols: int, size: tuple[float, float] = PANEL) -> tuple[Any, np.ndarray]:
    """A rows x cols grid with fixed margins in inches (tight_layout costs seconds on big grids):
    0.9 in on top for the titles, 0.7 in below for the legend, 0.75 in between panels for their titles."""
    rows, cols = max(rows, 1), max(cols, 1)
    width, height = max(size[0] * cols, MIN_WIDTH), size[1] * rows + 1.6
    fig, axes = plt.subplots(rows, cols, figsize=(width, height), squeeze=False)
    fig.subplots_adjust(left=0.7 / width, right=1 - 0.2 / width, top=1 - 0.9 / height, bottom=0.7 / height,
                        wspace=0.7 / (size[0] - 0.7), hspace=0.75 / (size[1] - 0.75))
    for ax in axes.flat:
        ax.tick_params(which="both", labelsize=7)
        ax.grid(alpha=0.3)
    return fig, axes


def _finish(fig: Any, axes: np.ndarray, title: str) -> bytes:
    """Title on top and one legend below, both fitted to the canvas: the title wraps, the legend takes as
    many columns as fit and the panels move up to make room for its rows (nothing is cropped)."""
    handles: dict[str, Any] = {}
    for ax in axes.flat:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label, handle)
        if not ax.has_data():
            ax.set_visible(False)
    renderer = fig.canvas.get_renderer()
    room = fig.bbox.width - 0.2 * fig.dpi
    suptitle = fig.suptitle(title, fontsize=10, y=1 - 0.2 / fig.get_figheight())
    wide = suptitle.get_window_extent(renderer).width
    if wide > room:
        suptitle.set_text("\n".join(textwrap.wrap(title, max(10, int(len(title) * room / wide)))))
    if handles:
        for ncol in range(min(8, len(handles)), 0, -1):
            legend = fig.legend(handles.values(), handles.keys(), loc="lower center", ncol=ncol, fontsize=8, frameon=False)
            if ncol == 1 or legend.get_window_extent(renderer).width <= room:
                break
            legend.remove()
        below = legend.get_window_extent(renderer).height / fig.dpi + 0.55  # + tick labels and the x label
        fig.subplots_adjust(bottom=max(below, 0.7) / fig.get_figheight())
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    plt.close(fig)
    return buffer.getvalue()


def schedule_lines(curves: dict[str, np.ndarray], steps: int, peak_lr: float) -> Any:
    """`schedules plot`: the learning rate of each schedule over a budget of `steps` steps, one line each."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(8, 4.5), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    for name, lrs in curves.items():
        axes.plot(np.arange(steps), lrs, label=name, drawstyle="steps-post" if steps <= 200 else "default")
    axes.set(xlabel="update t", ylabel="learning rate", xlim=(0, max(steps - 1, 1)),
             title=f"learning rate over a budget of {steps} steps, peak lr {peak_lr:g}")
    axes.grid(alpha=0.3)
    axes.legend()
    return figure
