"""The self-contained HTML page: its text, and the page as a real headless browser renders it."""

from __future__ import annotations

import io
import re
import subprocess
import tempfile
from pathlib import Path

import matplotlib.image
import pytest
from helpers import make_logged_sweep
from helpers import Run
from typer.testing import CliRunner

from schedsweep.results import html
from schedsweep.cli import app
from schedsweep.results.render import Section

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]
HEADERS = ("budget", "schedule", "best lr", "mean ± std", "95% CI", "rank", "gap", "mark")


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("html")
    runs = [Run(s, b, loss + b + lr, lr=lr, seed=seed) for b in (0.01, 0.02)
            for s, loss in (("linear", 1.0), ("rex", 0.9), ("cosine", 1.1)) for lr in (1e-3, 3e-3) for seed in (0, 1)]
    sweep = make_logged_sweep(root / "s", runs)
    (sweep / "sweep.yaml").write_text("name: s\nnote: <script>alert(1)</script> & more\n")
    result = CliRunner().invoke(app, ["report", str(sweep), "--format", "md", "--html", str(root / "report.html")])
    assert result.exit_code == 0, result.output
    return root / "report.html"


def test_page_has_every_table_figure_and_the_config(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    assert text.startswith("<!doctype html>")
    for header in HEADERS:
        assert f">{html._e(header)}</th>" in text
    for title in ("Average rank per budget (REX Fig. 1)", "Top-1 / Top-3 shares (REX Table 1)",
                  "Against linear (refinement paper)", "Ratio to linear per problem",
                  "Dolan-More profile of final-metric ratios, r_max = 1.1 and 1.02", "Paired contrasts across problems"):
        assert f"<h3>{html._e(title)}</h3>" in text
    assert text.count("<table>") == 2 + 6 and text.count('src="data:image/png;base64,') == 6
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in text and "<script>" not in text
    assert not re.search(r'(src|href)="(http|//)', text)  # self-contained: loads nothing


def test_table_marks_winners_and_aligns_numbers() -> None:
    section = Section("T", "c", ["schedule", "mean", "mark"], [["rex", "1.0", ""], ["a<b", "2.0", "diverged"]], bold={0})
    text = html.table(section)
    assert '<tr class="win"><td>rex</td><td class="num">1.0</td><td></td></tr>' in text
    assert "<td>a&lt;b</td>" in text and '<th class="num">mean</th>' in text and "<th>mark</th>" in text


@pytest.mark.browser
@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium (apt-get install chromium)")
def test_page_renders_in_headless_chromium(page: Path) -> None:
    with tempfile.TemporaryDirectory() as profile, tempfile.TemporaryDirectory() as out:
        shot = Path(out) / "page.png"
        common = [str(CHROMIUM), *FLAGS, f"--user-data-dir={profile}", "--window-size=1200,2000"]
        subprocess.run([*common, f"--screenshot={shot}", page.as_uri()], capture_output=True, timeout=120, check=True)
        dom = subprocess.run([*common, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120,
                             check=True).stdout
        pixels = matplotlib.image.imread(io.BytesIO(shot.read_bytes()), format="png")[..., :3]
    assert pixels.shape[:2] == (2000, 1200)
    assert (pixels < 0.9).any(axis=-1).mean() > 0.02  # text, tables and figures drawn, not a blank page
    green = (pixels[..., 1] > pixels[..., 0] + 0.2) & (pixels[..., 1] > pixels[..., 2] + 0.2)
    assert green.sum() > 50  # the winners' rows are styled
    assert dom.count("<table>") == 8 and "Average rank per budget" in dom and "95% CI" in dom
