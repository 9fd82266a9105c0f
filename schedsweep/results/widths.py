"""Tables that fit a terminal without cutting a number: drop low-priority columns, then stack the rest.

rich shrinks a table wider than the terminal by wrapping or cutting its cells (`0.9…`, `+0.0…`), which
turns numbers into wrong numbers. Instead, while a table is wider than the terminal:

1. columns of `LOW_PRIORITY` are left out, least useful first (the caption says which);
2. if it is still too wide, the other value columns are stacked: several tables one under the other,
   each repeating the label columns (schedule, budget, ...).

Every kept cell is then drawn at its full width (no wrapping, no ellipsis).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Callable, Sequence

from rich.console import Console
from rich.table import Table

# Least useful first: spreads and counts that --format md/csv still carry.
LOW_PRIORITY = ("95% CI", "gap", "n", "problems", "job", "command", "equal", "best", "worst", "error", "seed", "steps")


def natural_width(table: Table) -> int:
    """The width `table` takes when nothing is wrapped (its title apart)."""
    bare = Table(*[c.header for c in table.columns], box=table.box, pad_edge=table.pad_edge,
                 show_edge=table.show_edge, padding=table.padding)
    for row in zip(*[list(column.cells) for column in table.columns]):
        bare.add_row(*row)
    return Console(width=100_000).measure(bare).maximum


def fit(section: Any, width: int, drawn: Callable[[Any], Table]) -> list[Table]:
    """`section` (a render.Section) drawn as one or more tables no wider than `width`.

    `drawn` turns a section into a rich Table (render.rich_table). Label columns (the first
    `section.left`) are never dropped. Before any column goes, a table too wide loses its edge padding
    and its empty value columns (a CI with one seed)."""
    tight = False

    def draw(s: Any) -> Table:
        table = drawn(s)
        table.min_width = min(table.min_width or 0, width) or None  # a long title must not widen it past the terminal
        if tight:
            table.show_edge = False
        return table

    table = draw(section)
    if natural_width(table) <= width:
        return [_whole(table)]
    tight = True
    keep = [i for i in range(len(section.headers))
            if i < section.left or any(row[i] for row in section.rows) or not section.rows]
    dropped: list[str] = []
    if natural_width(draw(_columns(section, keep, dropped))) <= width:
        return [_whole(draw(_columns(section, keep, dropped)))]
    for header in LOW_PRIORITY:
        cols = [i for i in keep if section.headers[i] == header and i >= section.left]
        if not cols:
            continue
        keep = [i for i in keep if i not in cols]
        dropped.append(header)
        if natural_width(draw(_columns(section, keep, dropped))) <= width:
            return [_whole(draw(_columns(section, keep, dropped)))]
    labels = [i for i in keep if i < section.left]
    values = [i for i in keep if i >= section.left]
    chunks: list[list[int]] = []
    for i in values:
        if chunks and natural_width(draw(_columns(section, labels + chunks[-1] + [i], dropped))) <= width:
            chunks[-1].append(i)
        else:
            chunks.append([i])
    return [_whole(draw(_columns(section, labels + chunk, dropped, part=(n, len(chunks)))))
            for n, chunk in enumerate(chunks, 1)]


def _columns(section: Any, keep: Sequence[int], dropped: Sequence[str], part: tuple[int, int] | None = None) -> Any:
    """The section with only the columns `keep`; the caption names what is not shown."""
    caption = section.caption
    if dropped:
        caption += f"; not shown at this width: {', '.join(dropped)} (widen the terminal or use --format md)"
    title = section.title if part is None or part[0] == 1 else f"{section.title} (continued)"
    if part is not None and part[0] > 1:
        caption = f"columns {part[0]} of {part[1]}"
    return replace(section, title=title, caption=caption, headers=[section.headers[i] for i in keep],
                   rows=[[row[i] for i in keep] for row in section.rows], left=sum(1 for i in keep if i < section.left))


def _whole(table: Table) -> Table:
    """No cell wraps or is cut: a column is as wide as its widest cell."""
    for column in table.columns:
        column.no_wrap = True
        column.min_width = max([len(str(column.header))] + [len(c.plain) if hasattr(c, "plain") else len(str(c))
                                                            for c in column.cells])
    return table
