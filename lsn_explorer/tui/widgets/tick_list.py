"""A selection list whose tick box shows its state in the glyph, not only in colour."""

from __future__ import annotations

from rich.segment import Segment
from textual.strip import Strip
from textual.widgets import SelectionList

TICKED = "X"  # the glyph Textual's toggle buttons draw inside the box


class TickList(SelectionList[str]):
    """SelectionList draws `▐X▌` for ticked and unticked rows alike and tells them apart by colour,
    which a monochrome terminal, a colour-blind reader or `tmux capture-pane -p` cannot see. Here an
    unticked row's box is empty: `▐X▌ en …` against `▐ ▌ de …`."""

    def render_line(self, y: int) -> Strip:
        line = super().render_line(y)
        index = self.scroll_offset.y + y
        if index >= self.option_count or self.get_option_at_index(index).value in self.selected:
            return line
        segments = list(line)
        # SelectionList draws [box left, glyph, box right, space, prompt...]: blank the glyph.
        if len(segments) > 1 and segments[1].text == TICKED:
            segments[1] = Segment(" ", segments[1].style)
            return Strip(segments, line.cell_length)
        return line
