"""Terminal charts: per-layer bars and an overlap heat map for neuron sets, and a fine-tune's loss
curve in Unicode blocks (rendering only; no plotting dependency)."""

from __future__ import annotations

from typing import Sequence

from rich.table import Table
from rich.text import Text

BAR_WIDTH = 14
BLOCKS = " ▏▎▍▌▋▊▉█"
COLUMN_BLOCKS = " ▁▂▃▄▅▆▇█"
AXIS_WIDTH = 9  # "  12.345 " left of the curve


def bar(value: int, largest: int, width: int = BAR_WIDTH) -> str:
    """A horizontal bar of `width` cells, full at `largest`, with eighth-cell resolution."""
    if largest <= 0 or value <= 0:
        return ""
    eighths = max(1, round(value * width * 8 / largest))
    return "█" * (eighths // 8) + (BLOCKS[eighths % 8] if eighths % 8 else "")


def layer_chart(per_layer: dict[str, list[int]], n_layers: int, width: int = 56) -> Table:
    """Rows = layers, one bar column per language, all bars on one scale, within `width` cells."""
    largest = max((max(counts) for counts in per_layer.values() if counts), default=0)
    column = max(6, (width - 6) // max(1, len(per_layer)))
    bar_width = min(BAR_WIDTH, column - 5)
    table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
    table.add_column("layer", justify="right", min_width=5, no_wrap=True)
    for lang in per_layer:
        table.add_column(lang, width=column, no_wrap=True)
    for layer in range(n_layers):
        cells = [Text.assemble((bar(c[layer], largest, bar_width), "cyan"), f" {c[layer]}") for c in per_layer.values()]
        table.add_row(f"L{layer}", *cells)
    return table


def heat_cell(value: float) -> Text:
    """A Jaccard value on a dark-to-bright background (0 = none shared, 1 = identical sets).

    NaN (two languages with no neurons: 0/0) is shown as a dash, not as a colour.
    """
    if value != value:
        return Text("    –", style="dim")
    level = max(0, min(255, int(value * 255)))
    background = f"rgb({level // 3},{level // 2},{level})"
    foreground = "black" if level > 150 else "white"
    return Text(f"{value:5.2f}", style=f"{foreground} on {background}")


def loss_curve(points: Sequence[tuple[int, float]], width: int = 90, height: int = 6) -> Text:
    """Training loss over optimizer steps as `height` rows of column blocks (eighth-cell
    resolution), at most `width` columns: more points than columns are averaged per column.
    The axis shows the highest and lowest plotted loss and the first and last step."""
    if not points:
        return Text("no loss reported yet (the model is loading, or training has not taken a step)", style="dim")
    values = [loss for _, loss in points]
    count = len(values)
    columns = min(width, count)
    plotted = [_mean(values[i * count // columns:(i + 1) * count // columns]) for i in range(columns)]
    low, high = min(plotted), max(plotted)
    span = high - low or 1.0
    eighths = [1 + round((v - low) / span * (height * 8 - 1)) for v in plotted]  # the lowest still shows
    text = Text()
    for row in range(height - 1, -1, -1):
        label = f"{high:>8.3f} " if row == height - 1 else f"{low:>8.3f} " if row == 0 else " " * AXIS_WIDTH
        text.append(label, style="dim")
        text.append("".join(COLUMN_BLOCKS[max(0, min(8, e - row * 8))] for e in eighths), style="cyan")
        text.append("\n")
    first, last = f"step {points[0][0]}", f"step {points[-1][0]}"
    steps = first if count == 1 else first + last.rjust(max(columns - len(first), len(last) + 1))
    text.append(" " * AXIS_WIDTH + steps, style="dim")
    return text


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)
