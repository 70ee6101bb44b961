"""A terminal that shows every table whole, at any width and in a pipe.

`FittingConsole` is rich's Console with these changes:

- a table's title and caption are printed as plain paragraphs above and below it, wrapped at the
  console's width (not squeezed into the table's own width);
- `Layouts(wide, compact)` prints the first of its layouts that fits the console: a table
  function gives a narrow terminal its own compact layout (`compact`: abbreviated headers with a
  legend under the table, no vertical rules);
- a table that still does not fit is, as a last resort, transposed (one row: one line per
  column, "field: value") or split into column groups that each repeat the first (key) column,
  titled "(part i/n)"; every column folds a word that is still too long rather than cutting it.

In a pipe rich's width is 80 columns (or $COLUMNS), so piped output reads the same as an
80-column terminal.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from rich import box
from rich.console import Console, Group, RenderableType
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

_UNBOUNDED = 10_000


def natural_width(console: Console, table: Table) -> int:
    """Columns the table takes with no cell wrapped (its title and caption not counted)."""
    options = console.options.update(width=_UNBOUNDED)
    bare = _copy(table, None, list(range(len(table.columns))), caption=False)
    return Measurement.get(console, options, bare).maximum


def _copy(table: Table, title: str | None, columns: list[int], *, caption: bool = True) -> Table:
    """A table like `table` with only the given columns (by index), all folding."""
    out = Table(
        title=title,
        caption=table.caption if caption else None,
        box=table.box,
        show_header=table.show_header,
        show_lines=table.show_lines,
        show_edge=table.show_edge,
        pad_edge=table.pad_edge,
        padding=table.padding,
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


def compact(
    table: Table,
    short: Mapping[str, str],
    legend: Mapping[str, str],
    rename: Callable[[str], str] | None = None,
) -> Table:
    """`table` for a narrow terminal: headers abbreviated (`short[header]`), the first column's
    cells shortened by `rename`, no vertical rules or outer padding, and a legend under it:
    "abbreviation: meaning" for each entry of `legend` (the abbreviations and any other marks
    the cells use)."""
    out = Table(
        title=table.title,
        caption="; ".join(f"{k}: {v}" for k, v in legend.items()) or None,
        box=box.SIMPLE_HEAD,
        show_header=table.show_header,
        show_edge=False,
        pad_edge=False,
        padding=(0, 1, 0, 0),
    )
    for c in table.columns:
        header = str(c.header)
        out.add_column(short.get(header, header), justify=c.justify, style=c.style)
    cells = [list(c.cells) for c in table.columns]
    if rename is not None and cells:
        cells[0] = [rename(str(v)) for v in cells[0]]
    for r in range(table.row_count):
        out.add_row(*(col[r] for col in cells))
    if table.caption:
        out.caption = f"{table.caption}. {out.caption}" if out.caption else table.caption
    return out


class Layouts:
    """Ways to show the same results, widest first: `FittingConsole` prints the first whose
    tables all fit its width (the last one, fitted, when none does)."""

    def __init__(self, *choices: RenderableType):
        self.choices: tuple[RenderableType, ...] = choices


def _tables(renderable: RenderableType) -> list[Table]:
    if isinstance(renderable, Table):
        return [renderable]
    if isinstance(renderable, Group):
        return [t for r in renderable.renderables for t in _tables(r)]
    return []


def _paragraph(text: object, style: str) -> Text:
    return Text.from_markup(str(text), style=style, justify="default")


class FittingConsole(Console):
    """rich's Console, printing every Table so that it fits its width (module docstring)."""

    def _fit(self, renderable: Any) -> Any:
        if isinstance(renderable, Layouts):
            for choice in renderable.choices:
                if all(natural_width(self, t) <= self.width for t in _tables(choice)):
                    return self._fit(choice)
            return self._fit(renderable.choices[-1])
        if isinstance(renderable, Group):
            return Group(*(self._fit(r) for r in renderable.renderables))
        if not isinstance(renderable, Table):
            return renderable
        parts: list[RenderableType] = []
        for t in fit_table(self, renderable, self.width):
            title, caption = t.title, t.caption
            t.title = t.caption = None
            if title:
                parts.append(_paragraph(title, "bold"))
            parts.append(t)
            if caption:
                parts.append(_paragraph(caption, "dim"))
        return Group(*parts)

    def print(self, *objects: Any, **kwargs: Any) -> None:  # noqa: A003 - rich's name
        super().print(*(self._fit(o) for o in objects), **kwargs)
