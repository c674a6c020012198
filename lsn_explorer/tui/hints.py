"""Error hints said the app's way: the clauses of a core hint that name the command line become
the tab and key that do the same in the app.

`lsn_explorer.core` serves the CLI and the app alike, and its errors' hints are written for the
CLI (`run lsn-explorer stats --session S --langs zh first`, `or pass --corpus with a de.txt file`).
In the app there is no command line to type them into. The table is keyed by the CLI words a clause
contains rather than by error class: one class carries several hints (a CorpusError may be about a
missing language or a bad encoding), and the words are what makes a clause wrong here.
"""

from __future__ import annotations

import re

APP_ACTIONS: tuple[tuple[str, str], ...] = (
    # (CLI words in a clause of a core hint, what does the same in the app); first match wins
    ("lsn-explorer stats", "compute statistics in the Languages tab (F2, Ctrl+T)"),
    ("lsn-explorer identify", "run a method in the Neurons tab (F3, Ctrl+T)"),
    ("--corpus", "tick a language marked ✓ in the Languages tab (F2): those have corpus text"),
    ("--langs", "tick the languages in the Languages tab (F2)"),
    ("--model", "wait for the model to load, or open one (Ctrl+P, Open model)"),
    ("--data-dir", "set the data folder in the Score tab (F6)"),
    ("--sample", "choose another sample number in the Score tab (F6)"),
    ("--name", "type another name in the Evaluate form (Ctrl+E)"),
    ("--max-new-tokens", "shorten the prompt or lower the new tokens in the Generate tab (F5)"),
)
_CLAUSES = re.compile(r"(; |, or )")  # `a; or pass --corpus ...`, `pass --data-dir ..., or another language`


def app_hint(hint: str, local: tuple[tuple[str, str], ...] = ()) -> str:
    """`hint` with each clause that tells the user to type a command replaced by the app's action;
    `local` rows (same shape as APP_ACTIONS) come first, for a form that has the field itself."""
    parts = _CLAUSES.split(hint)  # clauses at even positions, separators between them
    for i in range(0, len(parts), 2):
        clause = parts[i]
        action = next((action for words, action in (*local, *APP_ACTIONS) if words in clause), None)
        if action is not None:
            parts[i] = ("or " if clause.startswith("or ") else "") + action
    return "".join(parts)
