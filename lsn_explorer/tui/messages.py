"""The app's messages, as dataclasses with past-tense names (something happened).

The model worker posts them back to the UI thread; panels post them to ask for something beyond
themselves. A message bubbles from the panel that posts it up to the app, which routes it (to the
panels, or to the one sibling panel it concerns): a panel never calls a sibling panel directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from textual.message import Message

from lsn_explorer.workbench.jobs import JobRow
from lsn_explorer.workbench.views import HistoryEntry


@dataclass
class ModelLoaded(Message):
    """A model finished loading; `description` is `ModelHandle.describe()`."""

    description: dict[str, Any]


@dataclass
class ModelProgressed(Message):
    """A step of loading the model (shown in the status line)."""

    text: str


@dataclass
class LaneFreed(Message):
    """The model lane is free again (the task finished, failed or was cancelled)."""

    label: str
    cancelled: bool


@dataclass
class SessionChanged(Message):
    """Records were added (a set, a generation, a score): panels showing records refresh."""


@dataclass
class RerunRequested(Message):
    """History asks to run `entry` again with the current interventions; the app sends it to the
    tab that made it (Generate or Score), which records it as a new entry."""

    entry: HistoryEntry


@dataclass
class JobEnded(Message):
    """A background job the Jobs tab saw queued or running has finished, failed, been cancelled
    or been interrupted (`row.state` says which); the app notifies, whichever tab is in front."""

    row: JobRow


@dataclass
class ResultsRequested(Message):
    """The Jobs tab asks to show an evaluation's table; the app brings the Results tab."""

    eval_name: str


@dataclass
class AdapterChosen(Message):
    """An adapter picker chose the adapter Generate and Score use ("" = the base model); the app
    loads it in the model lane."""

    name: str
