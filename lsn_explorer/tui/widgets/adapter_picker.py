"""The adapter picker: which of the session's fine-tuned adapters Generate and Score run on.

It shows the workbench's choice (`WorkbenchState.adapter`) and posts `AdapterChosen` when the
user picks another; the app loads it in the model lane, and every picker follows on `sync`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.widgets import Select

from lsn_explorer.tui.messages import AdapterChosen

if TYPE_CHECKING:
    from lsn_explorer.workbench.bench import Workbench

BASE = ""  # the option value of the base model
BASE_LABEL = "(base model)"


class AdapterPicker(Select[str]):
    """A compact Select of "(base model)" and the session's adapters."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__([(BASE_LABEL, BASE)], value=BASE, allow_blank=False, compact=True, id=id,
                         classes="adapter-picker")
        self.shown = BASE  # the choice `sync` showed: a Changed carrying it is Select's own echo, not the user's

    def sync(self, workbench: Workbench) -> None:
        """Show the session's adapters and the one in use, without announcing a choice."""
        rows = workbench.adapters()
        chosen = workbench.state.adapter
        options = [(BASE_LABEL, BASE)] + [(row.label, row.name) for row in rows]
        if chosen and chosen not in {row.name for row in rows}:
            options.append((f"{chosen} (missing)", chosen))
        self.shown = chosen or BASE
        with self.prevent(Select.Changed):
            self.set_options(options)
            self.value = self.shown

    def on_select_changed(self, event: Select.Changed) -> None:
        if event.select is not self:
            return
        event.stop()
        value = str(event.value) if event.value != Select.NULL else BASE
        if value != self.shown:
            self.shown = value
            self.post_message(AdapterChosen(value))
