"""Filling a DataTable whose columns are all known at once.

Textual sizes auto-width columns on a later idle event, and lines it painted before that event
stay in its line cache under the same key: a paint in between (a worker's result arriving, a busy
machine) left the columns at their headers' width — "1.  0." for "1.000  0.936" — until the table
next changed. Giving every column its width up front leaves nothing to measure later.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.cells import cell_len
from rich.text import Text
from textual.widgets import DataTable

Cell = str | Text


def width(cell: Cell) -> int:
    return max((cell_len(line) for line in (cell.plain if isinstance(cell, Text) else cell).split("\n")), default=0)


def fill(grid: DataTable, columns: Sequence[str], rows: Sequence[Sequence[Cell]],
         keys: Sequence[str] | None = None) -> None:
    """Replace the table's columns and rows, each column as wide as its widest cell or header;
    `keys` names the rows (for a cursor kept on the same row across refills)."""
    grid.clear(columns=True)
    for index, header in enumerate(columns):
        grid.add_column(header, width=max(width(cell) for cell in [header, *(row[index] for row in rows)]))
    for row, key in zip(rows, keys if keys is not None else [None] * len(rows)):
        grid.add_row(*row, key=key)
