"""A terminal that shows every table whole, at any width and in a pipe.

`FittingConsole` is rich's Console with one change: a `Table` wider than the console is
printed as several tables that each fit, instead of rich's cells cut to "…". A table with one
row is transposed (one line per column, "field: value"); a wider one is split into column
groups that each repeat the first (key) column, titled "(part i/n)". Every column folds a word
that is still too long rather than cutting it. In a pipe rich's width is 80 columns (or
$COLUMNS), so piped output reads the same as an 80-column terminal.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console, Group
from rich.measure import Measurement
from rich.table import Table

_UNBOUNDED = 10_000


def natural_width(console: Console, table: Table) -> int:
    """Columns the table takes with no cell wrapped."""
    options = console.options.update(width=_UNBOUNDED)
    return Measurement.get(console, options, table).maximum


def _copy(table: Table, title: str | None, columns: list[int]) -> Table:
    """A table like `table` with only the given columns (by index), all folding."""
    out = Table(
        title=title,
        caption=table.caption,
        box=table.box,
        show_header=table.show_header,
        show_lines=table.show_lines,
        title_justify=table.title_justify,
    )
    cols = table.columns
    for i in columns:
        c = cols[i]
        out.add_column(c.header, justify=c.justify, style=c.style, overflow="fold")
    cells = [list(cols[i].cells) for i in columns]
    for r in range(table.row_count):
        out.add_row(*(cells[k][r] for k in range(len(columns))))
    return out


def _transposed(table: Table) -> Table:
    """A one-row table as two columns: each header and its value."""
    out = Table(title=table.title, caption=table.caption, box=table.box, show_header=False)
    out.add_column(overflow="fold")
    out.add_column(justify="right", overflow="fold")
    for c in table.columns:
        value = next(iter(c.cells), "")
        out.add_row(c.header, value)
    return out


def fit_table(console: Console, table: Table, width: int) -> list[Table]:
    """Tables showing every cell of `table` within `width` columns (see the module)."""
    cols = len(table.columns)
    if natural_width(console, table) <= width or cols < 2:
        return [_copy(table, table.title, list(range(cols)))]
    if table.row_count == 1:
        return [_transposed(table)]
    groups: list[list[int]] = []
    current: list[int] = [0]
    for i in range(1, cols):
        trial = _copy(table, table.title, [*current, i])
        if len(current) > 1 and natural_width(console, trial) > width:
            groups.append(current)
            current = [0, i]
        else:
            current.append(i)
    groups.append(current)
    n = len(groups)
    title = str(table.title or "")
    return [_copy(table, f"{title} (part {k + 1}/{n})".strip(), g) for k, g in enumerate(groups)]


class FittingConsole(Console):
    """rich's Console, printing every Table so that it fits its width (`fit_table`)."""

    def print(self, *objects: Any, **kwargs: Any) -> None:  # noqa: A003 - rich's name
        fitted = [
            Group(*fit_table(self, o, self.width)) if isinstance(o, Table) else o for o in objects
        ]
        super().print(*fitted, **kwargs)
