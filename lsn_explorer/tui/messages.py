"""Messages the model worker posts back to the UI thread (past tense: something happened)."""

from __future__ import annotations

from typing import Any

from textual.message import Message


class ModelLoaded(Message):
    def __init__(self, description: dict[str, Any]) -> None:
        super().__init__()
        self.description = description


class ModelProgressed(Message):
    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text


class LaneFreed(Message):
    """The model lane is free again (the task finished, failed or was cancelled)."""

    def __init__(self, label: str, cancelled: bool) -> None:
        super().__init__()
        self.label = label
        self.cancelled = cancelled


class SessionChanged(Message):
    """Records were added (a set, a generation, a score): panels showing records refresh."""
