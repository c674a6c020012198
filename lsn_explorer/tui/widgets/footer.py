"""The key footer: the keys of the focused tab, drawn as one line by one widget.

Textual's Footer is a row of key widgets, one per key, each as wide as its text, and it rebuilds
the row on every `bindings_updated` signal, which fires on every focus move. Any change of a key's
text changes that widget's width, and so the whole screen is laid out again (issue 17: 2.0 screen
layouts per tab switch with that footer, 1.1 with this one, headless). Here the footer is one widget
of fixed size: a change of keys only repaints this line.

It draws what Textual's Footer draws, cell for cell and style for style (every cell of the app's
snapshots kept its character, colours and text style; only the runs of blank cells group
differently): `␣key␣description␣` per key, the command palette's key at the right edge
behind a thin bar, a hovered key highlighted, disabled keys dim. A click on a key presses it, as
on Textual's Footer; hovering shows the key's tooltip. Bindings in a group (none in this app) are
drawn as keys of their own.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.screen import Screen
from textual.widget import Widget

Shown = tuple[Binding, bool, str]  # a key the footer shows: (binding, enabled, tooltip)
BAR = "▏"  # Textual's `vkey` border: what stands left of the command palette's key


@dataclass(frozen=True)
class Key:
    """A key as drawn: the key to press, its text and its state."""

    key: str
    display: str
    description: str
    enabled: bool
    tooltip: str
    palette: bool = False  # the command palette's key, drawn at the right edge


class KeyFooter(Widget, can_focus=False):
    """One line of keys at the bottom of the main screen (see the module docstring)."""

    ALLOW_SELECT = False
    COMPONENT_CLASSES = {"footer-key--key", "footer-key--description", "footer-key--item",
                         "footer-key--hover", "footer-key--bar"}
    # The colours of Textual's Footer and FooterKey, so themes apply to both alike.
    DEFAULT_CSS = """
    KeyFooter {
        dock: bottom;
        height: 1;
        width: 1fr;
        color: $footer-foreground;
        background: $footer-background;
        .footer-key--item { background: $footer-item-background; }
        .footer-key--key { color: $footer-key-foreground; background: $footer-key-background; text-style: bold; }
        .footer-key--description { color: $footer-description-foreground; background: $footer-description-background; }
        .footer-key--hover { color: $footer-key-foreground; background: $block-hover-background; }
        .footer-key--bar { color: $foreground 20%; }
    }
    """

    def __init__(self) -> None:
        super().__init__()
        self.keys: list[Key] = []
        self._spans: list[tuple[int, int, Key]] = []  # [start, end) of each key on the line
        self._hover: Key | None = None

    def on_mount(self) -> None:
        self.screen.bindings_updated_signal.subscribe(self, self.bindings_changed)

    def on_unmount(self) -> None:
        self.screen.bindings_updated_signal.unsubscribe(self)

    def bindings_changed(self, screen: Screen) -> None:
        if not screen.app.app_focus or not self.is_attached or screen is not self.screen:
            return  # as Textual's Footer does: keys follow the focused screen only
        keys = keys_to_show(screen)
        if keys != self.keys:  # a focus move within a tab keeps the same keys: nothing to draw
            self.keys = keys
            self.refresh()  # the same size whatever the keys: no layout

    # -- drawing -------------------------------------------------------------------------------
    def render(self) -> Text:
        width = self.size.width
        line, spans = Text(no_wrap=True, overflow="crop"), []
        regular = [key for key in self.keys if not key.palette]
        palette = [key for key in self.keys if key.palette]
        for key in regular:  # positions in cells, as mouse events give them
            start = line.cell_len
            line.append_text(self._draw(key, padded=True))
            spans.append((start, line.cell_len, key))
        if palette:
            tail = self._draw(palette[0], padded=False)
            # The blank cells (that key's right padding, the gap before the bar) carry only a
            # background, as Textual's blank cells do.
            tail.append(" ", Style(bgcolor=self._base(palette[0]).bgcolor))
            start = max(0, width - tail.cell_len)
            line.truncate(max(0, start - 1))
            line.append(" " * max(0, start - 1 - line.cell_len), Style(bgcolor=self.rich_style.bgcolor))
            line.append(BAR, self.get_component_rich_style("footer-key--bar"))
            line.append_text(tail)
            spans = [(a, min(b, start - 1), key) for a, b, key in spans if a < start - 1]
            spans.append((start, start + tail.cell_len, palette[0]))
        self._spans = spans
        return line

    def _draw(self, key: Key, *, padded: bool) -> Text:
        """A key as Textual's FooterKey draws it: the key padded by a space each side, then the
        description and a space (the palette's key: no padding, a space before the description)."""
        base = self._base(key)
        key_style = base + self.get_component_rich_style("footer-key--key", partial=True)
        description_style = base + self.get_component_rich_style("footer-key--description", partial=True)
        if not key.description:
            return Text(key.display, key_style)
        if padded:
            return Text.assemble((f" {key.display} ", key_style), (f"{key.description} ", description_style))
        return Text.assemble((key.display, key_style), (f" {key.description}", description_style))

    def _base(self, key: Key) -> Style:
        base = self.get_component_rich_style("footer-key--hover" if key == self._hover else "footer-key--item")
        return base + Style(dim=True) if not key.enabled else base

    # -- the mouse -----------------------------------------------------------------------------
    def key_at(self, x: int) -> Key | None:
        """The key drawn at column `x`, if any."""
        return next((key for start, end, key in self._spans if start <= x < end), None)

    def on_mouse_move(self, event: events.MouseMove) -> None:
        self._hover_over(self.key_at(event.x))

    def on_leave(self, event: events.Leave) -> None:
        self._hover_over(None)

    def _hover_over(self, key: Key | None) -> None:
        if key == self._hover:
            return
        self._hover = key
        self.tooltip = (key.tooltip or None) if key is not None else None
        self.styles.pointer = "pointer" if key is not None else "default"
        self.refresh()

    def on_mouse_down(self, event: events.MouseDown) -> None:
        key = self.key_at(event.x)
        if key is None:
            return
        if key.enabled:
            self.app.simulate_key(key.key)
        else:
            self.app.bell()


def keys_to_show(screen: Screen) -> list[Key]:
    """The keys Textual's Footer would show, in its order: one per action (the first binding of
    each), then the command palette's key when the app has one."""
    app = screen.app
    by_action: dict[str, Shown] = {}
    active = screen.active_bindings
    for _, binding, enabled, tooltip in active.values():
        if binding.show:
            by_action.setdefault(binding.action, (binding, enabled, tooltip))
    keys = [Key(binding.key, app.get_key_display(binding), binding.description, enabled, tooltip)
            for binding, enabled, tooltip in by_action.values()]
    if app.ENABLE_COMMAND_PALETTE and app.COMMAND_PALETTE_BINDING in active:
        _, binding, enabled, tooltip = active[app.COMMAND_PALETTE_BINDING]
        keys.append(Key(binding.key, app.get_key_display(binding), binding.description, enabled,
                        binding.tooltip or binding.description, palette=True))
    return keys
