"""lsn-explorer: find, inspect and intervene on language-specific and transfer neurons in LLMs.

The headless engine lives in `lsn_explorer.core` (never imports Textual); the terminal app in
`lsn_explorer.tui`; the command line in `lsn_explorer.cli`.
"""

__version__ = "0.1.0"
