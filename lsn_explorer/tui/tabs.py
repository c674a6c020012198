"""The app's tabs: ids, titles, keys and panels, in the order the tab bar shows them.

Only the first tab's panel is built before the first paint; the others mount right after it
(Textual's `Lazy`), which keeps the first paint at one panel's cost. `later_panels_mounted`
says when they all have: the app waits for it before quitting, because a quit while they mount
tears them down half-built and Textual prints the errors of their mounts as it exits.
"""

from __future__ import annotations

from textual.lazy import Lazy
from textual.widgets import TabbedContent, TabPane

from lsn_explorer.tui.panels.analysis import AnalysisPanel
from lsn_explorer.tui.panels.base import Panel
from lsn_explorer.tui.panels.generate import GeneratePanel
from lsn_explorer.tui.panels.history import HistoryPanel
from lsn_explorer.tui.panels.interventions import InterventionsPanel
from lsn_explorer.tui.panels.jobs import JobsPanel
from lsn_explorer.tui.panels.languages import LanguagesPanel
from lsn_explorer.tui.panels.neurons import NeuronsPanel
from lsn_explorer.tui.panels.results import ResultsPanel
from lsn_explorer.tui.panels.score import ScorePanel

TABS: tuple[tuple[str, str, str, type[Panel]], ...] = (
    # (id, title, key, panel)
    ("languages", "Languages", "f2", LanguagesPanel),
    ("neurons", "Neurons", "f3", NeuronsPanel),
    ("interventions", "Interventions", "f4", InterventionsPanel),
    ("generate", "Generate", "f5", GeneratePanel),
    ("score", "Score", "f6", ScorePanel),
    ("history", "History", "f7", HistoryPanel),
    ("jobs", "Jobs", "f8", JobsPanel),
    ("results", "Results", "f9", ResultsPanel),
    ("analysis", "Analysis", "f10", AnalysisPanel),
)


class Tabs(TabbedContent):
    """Every tab with its panel, the first one shown."""

    def __init__(self) -> None:
        super().__init__(initial=TABS[0][0])
        self.later_panels: list[Panel] = []
        for index, (tab, title, _key, panel_type) in enumerate(TABS):
            panel = panel_type()
            if index:
                self.later_panels.append(panel)
            # What `with TabbedContent(): yield TabPane(...)` in a compose does.
            self.compose_add_child(TabPane(title, Lazy(panel) if index else panel, id=tab))

    def later_panels_mounted(self) -> bool:
        return all(panel.is_mounted for panel in self.later_panels)
