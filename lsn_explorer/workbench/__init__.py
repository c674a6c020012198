"""A researcher's working state for interactive front ends (the TUI, a notebook): languages, switch
rows, choices, and the engine calls they make. Never imports Textual.

    from lsn_explorer.workbench import SwitchRow, Workbench
"""

from lsn_explorer.workbench.bench import SwitchRow, Workbench

__all__ = ["SwitchRow", "Workbench"]
