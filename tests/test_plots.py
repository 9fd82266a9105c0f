"""The figures, drawn from a constructed sweep with real part files."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path
from typing import Any

import matplotlib.figure
import matplotlib.image
import matplotlib.text
import numpy as np
import pandas as pd
import pytest
from helpers import make_logged_sweep
from helpers import Run
from typer.testing import CliRunner

from schedsweep.results import collect, plots
from schedsweep.cli import app
from schedsweep.results.report import Report, best_runs, build

PNG = b"\x89PNG\r\n\x1a\n"


def sweep_runs(lrs: tuple[float, ...] = (1e-3, 3e-3)) -> list[Run]:
    return [Run(s, b, loss + b + lr, lr=lr, seed=seed, extra={"task.width": w})
            for w in (8, 16) for b in (0.01, 0.02) for s, loss in (("linear", 1.0), ("rex", 0.9))
            for lr in lrs for seed in (0, 1)]


def drawn(sweep: Path) -> tuple[Report, plots.Figures]:
    summary = collect.collect(sweep).summary
    runs = collect.runs_frame(summary)
    rep = build(runs)
    best = best_runs(runs, plots.shown_cells(rep))
    rows = collect.read_rows(sweep, summary, list(best["id"]), plots.CURVE_COLUMNS)
    return rep, plots.draw(rep, best, rows)


@pytest.fixture(scope="module")
def figures(tmp_path_factory: pytest.TempPathFactory) -> tuple[Report, plots.Figures]:
    return drawn(make_logged_sweep(tmp_path_factory.mktemp("plots") / "s", sweep_runs()))


def image(png: bytes) -> np.ndarray:
    return matplotlib.image.imread(io.BytesIO(png), format="png")


def test_every_figure_is_a_non_blank_png(figures: tuple[Report, plots.Figures]) -> None:
    _, figs = figures
    assert list(figs.png) == ["final_vs_budget", "curves", "lr", "avg_rank", "sensitivity", "profile"]
    assert figs.notes == []
    for name, png in figs.png.items():
        assert png.startswith(PNG), name
        pixels = image(png)[..., :3]
        assert (pixels < 0.9).any(axis=-1).mean() > 0.01, name  # lines and text, not a white page


def test_curves_are_means_over_seeds_at_the_best_lr() -> None:
    best = pd.DataFrame({"id": ["a", "b"], "_cell": [0, 0], "schedule": ["rex", "rex"], "budget": [0.5, 0.5],
                         "task": ["t", "t"], "optimizer": ["o", "o"]})
    rows = pd.DataFrame({"run_id": ["a", "a", "b", "b"], "step": [0, 1, 0, 1], "loss": [1.0, 0.5, 3.0, 1.5],
                         "eval_loss": [np.nan, 0.4, np.nan, 0.6], "lr": [0.1, 0.05, 0.1, 0.05]})
    curve = plots._mean_curves(best, rows)
    assert curve["loss"].tolist() == [2.0, 1.0]  # seeds' mean; 2 steps are too few to smooth
    assert curve["eval_loss"].tolist()[1] == pytest.approx(0.5) and curve["lr"].tolist() == [0.1, 0.05]
    assert curve["setting"].tolist() == ["task=t optimizer=o"] * 2 and curve["budget_label"].tolist() == ["50%"] * 2


def test_no_sensitivity_plot_when_the_lr_was_not_swept_and_settings_are_capped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(plots, "MAX_SETTINGS", 1)
    _, figs = drawn(make_logged_sweep(tmp_path / "s", [r for r in sweep_runs((1e-3,)) if r.budget == 0.01], swept=("seed",)))
    assert "sensitivity" not in figs.png and "final_vs_budget" in figs.png
    assert figs.notes == ["Per-setting figures show the first 1 of 2 settings.", "The peak LR was not swept: no sensitivity plot."]


def test_cli_plots_and_html_write_files(tmp_path: Path) -> None:
    sweep = make_logged_sweep(tmp_path / "s", [r for r in sweep_runs() if r.extra["task.width"] == 8])
    result = CliRunner().invoke(app, ["report", str(sweep), "--format", "md", "--plots", str(tmp_path / "png"),
                                      "--html", str(tmp_path / "r.html")])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "png").iterdir()) == sorted(
        f"{n}.png" for n in ("final_vs_budget", "curves", "lr", "avg_rank", "sensitivity", "profile"))
    assert "wrote 6 figures" in result.stderr and (tmp_path / "r.html").read_text().count("data:image/png;base64,") == 6


@pytest.mark.slow
def test_the_cli_does_not_import_matplotlib_for_help() -> None:
    code = "import sys, schedsweep.cli; assert 'matplotlib' not in sys.modules and 'pandas' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def texts_outside(fig: Any) -> list[str]:
    """Every drawn text (titles, labels, tick labels, legend entries) whose extent leaves the canvas."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    hidden = set()  # labels of ticks beyond the view limits: matplotlib keeps them but does not draw them
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            low, high = sorted(axis.get_view_interval())
            for tick in axis.get_major_ticks() + axis.get_minor_ticks():
                if not low - 1e-9 * abs(high - low) <= tick.get_loc() <= high + 1e-9 * abs(high - low):
                    hidden |= {id(tick.label1), id(tick.label2)}
    bounds = fig.bbox
    outside = []
    for text in fig.findobj(matplotlib.text.Text):
        if id(text) in hidden or not text.get_visible() or not text.get_text() or (text.axes and not text.axes.get_visible()):
            continue
        box = text.get_window_extent(renderer)
        if box.x0 < -0.5 or box.y0 < -0.5 or box.x1 > bounds.width + 0.5 or box.y1 > bounds.height + 0.5:
            outside.append(text.get_text())
    return outside


EIGHT = ("linear", "rex", "cosine", "step", "exponential", "onecycle", "wsd", "constant")


@pytest.mark.parametrize("shape", ["two settings", "one panel, eight schedules"])
def test_every_text_of_every_figure_lies_inside_its_canvas(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shape: str) -> None:
    runs = sweep_runs() if shape == "two settings" else [
        Run(s, b, 1.0 + i / 10 + b + lr, lr=lr, seed=seed) for b in (0.01, 0.02) for i, s in enumerate(EIGHT)
        for lr in (1e-3, 3e-3) for seed in (0, 1)]
    checked: dict[str, list[str]] = {}
    savefig = matplotlib.figure.Figure.savefig

    def check_then_save(fig: Any, *args: Any, **kwargs: Any) -> None:
        checked[fig.get_suptitle()] = texts_outside(fig)
        savefig(fig, *args, **kwargs)

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", check_then_save)
    _, figs = drawn(make_logged_sweep(tmp_path / "s", runs))
    assert len(checked) == len(figs.png) == 6
    assert {title: texts for title, texts in checked.items() if texts} == {}


def test_the_schedules_plot_fits_its_canvas() -> None:
    curves = {name: np.linspace(1, 0, 100) for name in EIGHT}
    assert texts_outside(plots.schedule_lines(curves, 100, 0.1)) == []
