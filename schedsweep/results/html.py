"""One self-contained HTML page of a report: tables, figures and the sweep's config, to mail or attach.

Everything is inline (CSS, PNG figures as base64 data URIs): the page loads nothing from anywhere.
The tables are the same `render.Section`s the terminal shows; text is HTML-escaped.
"""

from __future__ import annotations

import base64
import html
from datetime import datetime, timezone

from schedsweep.results.render import Section

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto; max-width: 1200px;
       padding: 0 1em; color: #222; background: #fff; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; } h2 { margin-top: 2em; border-bottom: 1px solid #ccc; }
h3 { font-size: 1.05em; margin: 1.6em 0 0.2em; }
p.caption, p.meta { color: #555; margin: 0.2em 0 0.6em; font-size: 0.9em; }
table { border-collapse: collapse; font-size: 0.85em; margin-bottom: 1em; }
th, td { padding: 0.25em 0.7em; border-bottom: 1px solid #eee; text-align: left; white-space: nowrap; }
th { border-bottom: 2px solid #888; } td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.win td { font-weight: bold; color: #116622; } tr.dim td { color: #999; }
tr.break td { border-bottom: 1px solid #888; }
.warn { background: #fff4e0; border-left: 4px solid #e0a030; padding: 0.5em 1em; margin: 1em 0; }
figure { margin: 1em 0 2em; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { color: #555; font-size: 0.9em; } pre { background: #f6f6f6; padding: 1em; overflow-x: auto; font-size: 0.8em; }
nav ul { columns: 2; font-size: 0.9em; }
"""
FIGURE_CAPTIONS = {
    "final_vs_budget": "Final metric vs budget per schedule at its best peak LR; error bars: std over seeds.",
    "curves": "Train (smoothed) and eval loss per budget, one line per schedule at its best peak LR, mean over seeds.",
    "lr": "The learning rate each schedule actually used (the logged lr column), per budget.",
    "avg_rank": "Average rank vs budget across settings (REX Fig. 1); 1 is best.",
    "sensitivity": "Final metric vs peak LR per schedule: how robust each schedule is to the LR, not just its best point.",
    "profile": "Performance profile: share of problems where each schedule is within a factor tau of the best.",
}


def page(title: str, sections: list[Section], figures: dict[str, bytes], config: str,
         summary: str = "", warnings: list[str] | None = None, notes: list[str] | None = None) -> str:
    """The page: title, summary line, warnings, the comparisons across settings, the figures, every
    setting's tables, notes and the sweep's config (sweep.yaml text)."""
    across = [s for s in sections if s.across]
    per_setting = [s for s in sections if not s.across]
    parts = [f"<h1>{_e(title)}</h1>",
             f"<p class=meta>{_e(summary)} Generated {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC by schedsweep.</p>"]
    parts += [f"<div class=warn>{_e(w)}</div>" for w in warnings or []]
    toc = [("across", "Across settings"), ("figures", "Figures"), ("settings", "Per setting"), ("config", "Sweep configuration")]
    parts.append("<nav><ul>" + "".join(f'<li><a href="#{a}">{_e(t)}</a></li>' for a, t in toc) + "</ul></nav>")
    parts.append('<h2 id="across">Across settings</h2>')
    parts += [table(s) for s in across]
    parts.append('<h2 id="figures">Figures</h2>')
    for name, png in figures.items():
        data = base64.b64encode(png).decode("ascii")
        caption = FIGURE_CAPTIONS.get(name, name)
        parts.append(f'<figure id="fig-{_e(name)}"><img alt="{_e(caption)}" src="data:image/png;base64,{data}">'
                     f"<figcaption>{_e(caption)}</figcaption></figure>")
    parts.append('<h2 id="settings">Per setting</h2>')
    parts += [table(s) for s in per_setting]
    if notes:
        parts.append("<h2>Notes</h2><ul>" + "".join(f"<li>{_e(n)}</li>" for n in notes) + "</ul>")
    parts.append(f'<h2 id="config">Sweep configuration</h2><pre>{_e(config)}</pre>')
    body = "\n".join(parts)
    return (f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><title>{_e(title)}</title>'
            f"<style>{STYLE}</style></head>\n<body>\n{body}\n</body></html>\n")


def table(section: Section) -> str:
    """One section as <h3>, caption and a <table> (numbers right-aligned, winners bold)."""
    def cls(i: int) -> str:
        return "" if section.is_label(i) else ' class="num"'

    head = "".join(f"<th{cls(i)}>{_e(h)}</th>" for i, h in enumerate(section.headers))
    rows = []
    for r, row in enumerate(section.rows):
        classes = [c for c, on in (("win", r in section.bold), ("dim", r in section.dim),
                                   ("break", r in section.breaks and r != len(section.rows) - 1)) if on]
        attr = f' class="{" ".join(classes)}"' if classes else ""
        rows.append(f"<tr{attr}>" + "".join(f"<td{cls(i)}>{_e(c)}</td>" for i, c in enumerate(row)) + "</tr>")
    return (f"<h3>{_e(section.title)}</h3><p class=caption>{_e(section.caption)}</p>"
            f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>")


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)
