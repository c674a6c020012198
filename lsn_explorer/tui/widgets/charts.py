"""Terminal charts for neuron sets: per-layer bars and an overlap heat map (rendering only)."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text

BAR_WIDTH = 14
BLOCKS = " ▏▎▍▌▋▊▉█"


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
