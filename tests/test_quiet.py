"""Quiet by default, detail on request: one line for shared prefixes (-v: the reasons and the trees), and a
`schedules list` that shows what each schedule sets apart from its shape's defaults."""

from __future__ import annotations

from pathlib import Path

import terminal

PLAN = ["launch", "task=quadratic", "full_steps=100", "schedule=linear,cosine,wsd,rex", "budget=0.1,0.5,1.0", "--dry-run"]


def test_a_dry_run_says_one_line_about_shared_prefixes_and_verbose_shows_the_trees(tmp_path: Path) -> None:
    quiet = terminal.run(PLAN, 80, tmp_path)
    assert quiet.rc == 0, quiet.text
    flat = " ".join(quiet.text.split())
    assert "4 branch trees share their prefixes: 636 of 640 steps trained (-1%); 4 runs train from step 0 (-v: why" in flat
    assert "trunk " not in flat and "departs" not in flat
    loud = terminal.run([*PLAN, "-v"], 80, tmp_path)
    flat = " ".join(loud.text.split())
    assert "4 runs could not share (3 LR sequence departs from every longer run's" in flat
    assert sum(line.lstrip().startswith("trunk ") for line in loud.lines) == 4


def test_schedules_list_shows_only_what_differs_from_the_shape(tmp_path: Path) -> None:
    screen = terminal.run(["schedules", "list"], 120, tmp_path)
    assert screen.rc == 0, screen.text
    assert "warmup_start=0.0" not in screen.text and "sample_every=0.0" not in screen.text
    rows = {line.split("│")[1].strip(): line.split("│")[3].strip() for line in screen.lines
            if line.startswith("│") and line.split("│")[1].strip()}
    assert rows["cosine"] == "" and rows["linear"] == ""  # the shapes' defaults
    assert rows["inverse_sqrt"] == "warmup=0.05" and rows["cosine_restarts"] == "period=0.0666667, mult=2"
    assert len(screen.lines) < 100  # 154 with every default on every row
    full = terminal.run(["schedules", "list", "-v"], 120, tmp_path)
    assert "warmup_start=0.0" in full.text and "source" in full.text
