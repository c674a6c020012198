"""The key footer: Textual's Footer, brought up to date in place instead of rebuilt.

Textual's Footer recomposes on every `bindings_updated` signal — removes each key widget, mounts
new ones and styles each of them twice — and the signal fires on every focus move, several times
per tab switch (issue 17: 0.56 s of 10 tab switches, an extra layout and frame each time). Here
the keys to show are compared with those shown and, when they differ, the key widgets there take
the new keys' text; keys beyond those shown are hidden, and only more keys than ever shown mount
new ones.
"""

from __future__ import annotations

from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer
from textual.widgets._footer import FooterKey

Shown = tuple[Binding, bool, str]  # a key the footer shows: (binding, enabled, tooltip)


class KeyFooter(Footer):
    """Looks and acts like Textual's Footer (same key widgets, same clicks and hover); only the way
    it follows binding changes differs. Grouped bindings (none in this app) fall back to a rebuild."""

    def __init__(self) -> None:
        super().__init__()
        self._shown: list[Shown] | None = None

    def bindings_changed(self, screen: Screen) -> None:
        self._bindings_ready = True
        if not screen.app.app_focus or not self.is_attached or screen is not self.screen:
            return  # as Textual's Footer does
        shown = _keys_to_show(screen)
        if shown == self._shown:
            return  # a focus move within a tab: same keys, nothing to do
        first, self._shown = self._shown is None, shown
        if first or any(binding.group is not None for binding, _, _ in shown):
            self.call_after_refresh(self.recompose)
            return
        keys = [key for key in self.query_children(FooterKey) if not key.has_class("-command-palette")]
        for widget, (binding, enabled, tooltip) in zip(keys, shown):
            text = (binding.key, binding.action, self.app.get_key_display(binding), binding.description)
            if (widget.key, widget.action, widget.key_display, widget.description) != text:
                widget.key, widget.action, widget.key_display, widget.description = text
                widget.refresh(layout=True)
            if widget._disabled == enabled:
                widget._disabled = not enabled
                widget.set_class(not enabled, "-disabled")
            widget.tooltip = tooltip or None
            widget.display = True
        # Keys beyond those shown are hidden, not removed: the next tab with more keys shows them
        # again instead of mounting new ones (a mount and a removal per tab switch otherwise).
        for widget in keys[len(shown):]:
            widget.display = False
        extra = [FooterKey(binding.key, self.app.get_key_display(binding), binding.description, binding.action,
                         disabled=not enabled, tooltip=tooltip).data_bind(compact=Footer.compact)
                 for binding, enabled, tooltip in shown[len(keys):]]
        if extra:
            palette = self.query_children(".-command-palette")
            self.mount_all(extra, before=palette.first() if palette else None)


def _keys_to_show(screen: Screen) -> list[Shown]:
    """The keys Footer.compose would show, in its order: one per action, the first binding of each."""
    by_action: dict[str, Shown] = {}
    for _, binding, enabled, tooltip in screen.active_bindings.values():
        if binding.show:
            by_action.setdefault(binding.action, (binding, enabled, tooltip))
    return list(by_action.values())
