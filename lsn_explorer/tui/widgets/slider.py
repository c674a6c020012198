"""A focusable integer slider (Textual has none): ←/→ or −/+ move it, Home/End jump to the ends,
a click on the track puts it there. It posts `LayerSlider.Changed` when its value changes."""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.message import Message
from textual.reactive import reactive
from textual.widget import Widget

PREFIX_WIDTH = 12  # "depth  3 / 6 " left of the track


class LayerSlider(Widget, can_focus=True):
    """A value between 0 and `maximum` (a layer: 0 = embeddings)."""

    BINDINGS = [
        Binding("left,minus", "move(-1)", "Layer −", show=False),
        Binding("right,plus,equals_sign", "move(1)", "Layer +", show=False),
        Binding("home", "jump(0)", show=False),
        Binding("end", "jump(-1)", show=False),
    ]
    value: reactive[int] = reactive(0)

    @dataclass
    class Changed(Message):
        slider: LayerSlider
        value: int

    def __init__(self, label: str = "depth", *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.label = label
        self.maximum = 0

    def set_range(self, maximum: int, value: int) -> None:
        """Set the range 0…`maximum` and the value, without posting `Changed`."""
        self.maximum = max(0, maximum)
        with self.prevent(LayerSlider.Changed):
            self.value = min(max(0, value), self.maximum)
        self.refresh()

    def validate_value(self, value: int) -> int:
        return min(max(0, value), self.maximum)

    def watch_value(self, value: int) -> None:
        self.post_message(self.Changed(self, value))

    def action_move(self, step: int) -> None:
        if not self.disabled:
            self.value += step

    def action_jump(self, where: int) -> None:
        if not self.disabled:
            self.value = self.maximum if where < 0 else where

    def on_click(self, event: events.Click) -> None:
        track = self.size.width - PREFIX_WIDTH - 2
        if not self.disabled and track > 0 and self.maximum > 0 and event.x >= PREFIX_WIDTH:
            self.value = round((event.x - PREFIX_WIDTH - 1) / max(1, track - 1) * self.maximum)

    def render(self) -> Text:
        prefix = f"{self.label} {self.value:>2} / {self.maximum}".ljust(PREFIX_WIDTH)
        track = max(2, self.size.width - PREFIX_WIDTH - 2)
        knob = round(self.value / self.maximum * (track - 1)) if self.maximum else 0
        style = "bold reverse" if self.has_focus else "bold"
        text = Text(prefix, style="dim" if self.disabled else "")
        text.append("◀" + "─" * knob, style="dim")
        text.append("●", style="dim" if self.disabled else style)
        text.append("─" * (track - 1 - knob) + "▶", style="dim")
        return text
