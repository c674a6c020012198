"""A researcher's working state for interactive front ends (the TUI, a notebook): `bench` (the
Workbench and its engine calls), `state` (what is saved and restored per session) and `views`
(what front ends show). Never imports Textual.

    from lsn_explorer.workbench import SwitchRow, Workbench
"""

from lsn_explorer.workbench.bench import Workbench
from lsn_explorer.workbench.state import SwitchRow

__all__ = ["SwitchRow", "Workbench"]
