"""A report section (one table as display strings) and its Markdown or LaTeX text (schedsweep.results.render
builds the sections)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

FORMATS = ("md", "csv", "json", "latex")
# The tables `report --format csv --table NAME` can select (schedsweep.results.render draws them); the CLI's help lists them.
TABLES = ("ranking", "pivot", "budgets", "budgets_by_optimizer", "topk", "ratios", "ratio_summary", "profile", "pairs",
          "contrasts", "problems", "lr_fit", "lr_law")
IN_BEST = "●"  # the ranking's mark of the best group: not significantly worse than the winner (95%)
LATEX_SPECIAL = {"&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}",
                 "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "\\": r"\textbackslash{}",
                 "±": r"$\pm$", "≤": r"$\le$", "≥": r"$\ge$", "τ": r"$\tau$", IN_BEST: r"$\bullet$"}


@dataclass
class Section:
    """One table as display strings: what every output format draws."""

    title: str
    caption: str
    headers: list[str]
    rows: list[list[str]] = field(default_factory=list)
    left: int = 1  # the first `left` columns are labels (left-aligned); the rest numbers
    bold: set[int] = field(default_factory=set)  # winning rows
    dim: set[int] = field(default_factory=set)  # rows without a finite result
    breaks: set[int] = field(default_factory=set)  # a rule after these rows (between budgets)
    across: bool = False  # a comparison across settings (else one setting's table)

    def is_label(self, column: int) -> bool:
        """Left-aligned text (labels, marks) rather than a right-aligned number."""
        return column < self.left or self.headers[column] == "mark"


def sections_text(sections: list[Any], fmt: str) -> str:
    if fmt == "md":
        return "".join(_markdown(s) for s in sections)
    if fmt == "latex":
        return "".join(_latex(s) for s in sections)
    raise ValueError(f"unknown format {fmt!r}; choose one of: {', '.join(FORMATS)}.")


def _markdown(section: Any) -> str:
    def line(cells: list[Any]) -> str:
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"

    sep = ["---" if section.is_label(i) else "---:" for i in range(len(section.headers))]
    rows = [line(section.headers), line(sep), *map(line, section.rows)]
    return "\n".join([f"## {section.title}", "", section.caption + ".", "", *rows, "", ""])


def _latex(section: Any) -> str:
    spec = "".join("l" if section.is_label(i) else "r" for i in range(len(section.headers)))
    lines = [r"\begin{table}[ht]", r"\centering", rf"\caption{{{_tex(section.title)}: {_tex(section.caption)}}}",
             rf"\begin{{tabular}}{{{spec}}}", r"\toprule", " & ".join(_tex(h) for h in section.headers) + r" \\", r"\midrule"]
    for i, row in enumerate(section.rows):
        cells = [_tex(c) for c in row]
        if i in section.bold:
            cells = [rf"\textbf{{{c}}}" if c else c for c in cells]
        lines.append(" & ".join(cells) + r" \\")
        if i in section.breaks and i != len(section.rows) - 1:
            lines.append(r"\midrule")
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}", "", ""]
    return "\n".join(lines)


def _tex(text: str) -> str:
    return "".join(LATEX_SPECIAL.get(ch, ch) for ch in str(text))
