"""Terminal plots of the latent-space analyses: line charts over depth and 2-D scatters, drawn in
Unicode braille (2 × 4 dots per cell) into a Rich Text, with y-axis labels, a depth axis and a
legend (rendering only; every value comes from `workbench.latent`'s charts; no plotting dependency).

Colour = language (matplotlib's tab10 order, as the PNG), line style = condition: solid none,
dashed intervened, dotted random. Where series cross in one cell, the last drawn colours it.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

from rich.text import Text
from textual.widget import Widget

from lsn_explorer.workbench.latent import Chart, Figure, Series

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
           "#bcbd22", "#17becf")  # tab10: C0, C1, …
LEGEND_LINES = {"solid": "──", "dashed": "╌╌", "dotted": "┈┈"}
AXIS_WIDTH = 9  # " 0.9471 ┤": y labels and the axis, left of the canvas
MIN_CHART_WIDTH = 36
MIN_CHART_HEIGHT = 10
BRAILLE = 0x2800
# The bit of each dot in a braille cell, by (column, row) within the 2 × 4 cell.
DOT_BITS = ((0x01, 0x02, 0x04, 0x40), (0x08, 0x10, 0x20, 0x80))
Scale = Callable[[float], int]  # a data value → a pixel column or row


def colour(group: int) -> str:
    return PALETTE[group % len(PALETTE)]


class Canvas:
    """`columns` × `rows` cells of braille dots; pixel (0, 0) is the top-left dot."""

    def __init__(self, columns: int, rows: int) -> None:
        self.columns, self.rows = columns, rows
        self.bits = [[0] * columns for _ in range(rows)]
        self.styles: list[list[str]] = [[""] * columns for _ in range(rows)]

    @property
    def width(self) -> int:
        return 2 * self.columns

    @property
    def height(self) -> int:
        return 4 * self.rows

    def dot(self, x: int, y: int, style: str) -> None:
        if 0 <= x < self.width and 0 <= y < self.height:
            row, column = y // 4, x // 2
            self.bits[row][column] |= DOT_BITS[x % 2][y % 4]
            self.styles[row][column] = style

    def line(self, x0: int, y0: int, x1: int, y1: int, style: str, pattern: str = "solid") -> None:
        """Bresenham's line; "dashed" draws 4 dots of every 6, "dotted" 1 of every 3."""
        dx, dy = abs(x1 - x0), -abs(y1 - y0)
        sx, sy = (1 if x0 < x1 else -1), (1 if y0 < y1 else -1)
        error, step = dx + dy, 0
        while True:
            if pattern == "solid" or (pattern == "dashed" and step % 6 < 4) or (pattern == "dotted" and step % 3 == 0):
                self.dot(x0, y0, style)
            if (x0, y0) == (x1, y1):
                return
            twice, step = 2 * error, step + 1
            if twice >= dy:
                error, x0 = error + dy, x0 + sx
            if twice <= dx:
                error, y0 = error + dx, y0 + sy

    def row_text(self, row: int) -> Text:
        text = Text()
        for bits, style in zip(self.bits[row], self.styles[row]):
            text.append(chr(BRAILLE + bits) if bits else " ", style=style or None)
        return text


def tick(value: float, span: float) -> str:
    """An axis label with as many decimals as the plotted span needs (three significant digits of it)."""
    digits = 0 if span <= 0 else max(0, min(6, 2 - math.floor(math.log10(span))))
    return f"{value:.{digits}f}"


def _range(values: Sequence[float]) -> tuple[float, float]:
    low, high = min(values), max(values)
    if high == low:  # a flat series: give it room so it is drawn in the middle
        pad = abs(high) * 0.1 or 0.5
        return low - pad, high + pad
    return low, high


def render_chart(chart: Chart, width: int, height: int) -> list[Text]:
    """`chart` as `height` lines of exactly `width` cells: title, plot rows, x axis, x labels."""
    columns, rows = max(4, width - AXIS_WIDTH), max(2, height - 3)
    lines = [Text(chart.title[:width].ljust(width), style="bold")]
    points = [s for s in chart.series if s.xs]
    if not points:
        return lines + [Text(" " * width) for _ in range(height - 1)]
    x_low, x_high = _range([x for s in points for x in s.xs])
    y_low, y_high = _range([y for s in points for y in s.ys])
    canvas = Canvas(columns, rows)

    def px(x: float) -> int:
        return round((x - x_low) / (x_high - x_low) * (canvas.width - 1))

    def py(y: float) -> int:
        return round((y_high - y) / (y_high - y_low) * (canvas.height - 1))

    for series in points:
        _draw(canvas, series, px, py)
    span = y_high - y_low
    labels = {0: tick(y_high, span), rows - 1: tick(y_low, span)}
    if rows >= 5:
        labels[rows // 2] = tick(y_high - span * (rows // 2 * 4 + 1.5) / (canvas.height - 1), span)
    for row in range(rows):
        label = labels.get(row)
        line = Text(f"{label:>{AXIS_WIDTH - 2}.{AXIS_WIDTH - 2}} ┤" if label is not None else " " * (AXIS_WIDTH - 1) + "│",
                    style="dim")
        line.append_text(canvas.row_text(row))
        lines.append(line)
    lines += _x_axis(chart, columns, px, x_low, x_high)
    return [_fit(line, width) for line in lines][:height]


def _fit(line: Text, width: int) -> Text:
    """`line` cut or padded to exactly `width` cells."""
    if line.cell_len > width:
        line.truncate(width)
    else:
        line.pad_right(width - line.cell_len)
    return line


def _draw(canvas: Canvas, series: Series, px: Scale, py: Scale) -> None:
    style = colour(series.group)
    pixels = [(px(x), py(y)) for x, y in zip(series.xs, series.ys)]
    if series.style == "points":
        for x, y in pixels:
            canvas.dot(x, y, style)
        return
    for (x0, y0), (x1, y1) in zip(pixels, pixels[1:]):
        canvas.line(x0, y0, x1, y1, style, series.style)
    for x, y in pixels:  # every measured depth is drawn, whatever the line's pattern
        canvas.dot(x, y, style)


def _x_axis(chart: Chart, columns: int, px: Scale, x_low: float, x_high: float) -> list[Text]:
    """The axis line (the marked depth ▲, the middle depths ━) and the labels under it."""
    axis = [("─", "dim")] * columns
    if chart.band is not None:
        for column in range(px(chart.band[0]) // 2, px(chart.band[1]) // 2 + 1):
            axis[column] = ("━", "bold")
    if chart.marker is not None and x_low <= chart.marker <= x_high:
        axis[px(chart.marker) // 2] = ("▲", "bold cyan")
    line = Text(" " * (AXIS_WIDTH - 1) + "└", style="dim")
    for char, style in axis:
        line.append(char, style=style)
    labels = [" "] * (columns + AXIS_WIDTH)
    if chart.kind == "lines":
        places = [(px(d) // 2, str(d)) for d in range(math.ceil(x_low), math.floor(x_high) + 1)]
    else:
        span = x_high - x_low
        places = [(0, tick(x_low, span)), (columns - len(tick(x_high, span)), tick(x_high, span))]
    free = 0
    for column, label in places:
        start = AXIS_WIDTH + column - (len(label) // 2 if chart.kind == "lines" else 0)
        if start >= free and start + len(label) <= len(labels):
            labels[start:start + len(label)] = label
            free = start + len(label) + 1
    name = f"{chart.x_label[:AXIS_WIDTH - 2]:>{AXIS_WIDTH - 2}}  "
    return [line, Text(name + "".join(labels[AXIS_WIDTH:]), style="dim")]


def legend(figure: Figure, width: int) -> Text:
    """Languages by colour, then conditions by line style."""
    text = Text()
    for group, lang in enumerate(figure.groups):
        text.append("■ ", style=colour(group))
        text.append(f"{lang}  ")
    for style, label in figure.styles:
        text.append(f"  {LEGEND_LINES[style]} ", style="bold")
        text.append(label)
    text.truncate(max(1, width * 2), overflow="ellipsis")
    return text


def render_figure(figure: Figure, width: int, height: int) -> Text:
    """The figure's charts side by side (in rows when there is room), then the legend; charts
    that do not fit are left out with a note."""
    charts = figure.charts
    room = height - 2
    columns = max(1, min(len(charts), width // MIN_CHART_WIDTH))
    rows = max(1, min(math.ceil(len(charts) / columns), room // MIN_CHART_HEIGHT))
    shown = charts[:columns * rows]
    chart_width = (width - 2 * (columns - 1)) // columns
    chart_height = max(5, room // rows)
    out = Text()
    for start in range(0, len(shown), columns):
        blocks = [render_chart(chart, chart_width, chart_height) for chart in shown[start:start + columns]]
        for parts in zip(*blocks):
            out.append_text(Text("  ").join(parts))
            out.append("\n")
    out.append_text(legend(figure, width))
    if len(shown) < len(charts):
        left = len(charts) - len(shown)
        out.append(f"\n+{left} more chart{'s' if left > 1 else ''}: a larger terminal shows it, or P for the PNG",
                   style="dim")
    return out


class Plot(Widget):
    """A figure drawn to the widget's size (redrawn when it resizes)."""

    def __init__(self, empty: str = "", *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.figure: Figure | None = None
        self.empty = empty

    def show(self, figure: Figure | None, empty: str | None = None) -> None:
        self.figure = figure
        if empty is not None:
            self.empty = empty
        self.refresh()

    def render(self) -> Text:
        if self.figure is None or not self.figure.charts:
            return Text(self.empty, style="dim")
        return render_figure(self.figure, self.size.width, self.size.height)
