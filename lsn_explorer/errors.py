"""User-facing failures: one line saying what went wrong, one hint saying what to do.

Every failure a user can cause (bad path, unknown language, malformed file) is raised as an
`LsnError` subclass. The CLI prints `error: <message>` and `hint: <hint>` without a traceback and
exits non-zero; the TUI shows the same text as a notification. Unexpected exceptions are not
wrapped here: they are bugs and keep their traceback.
"""

from __future__ import annotations


class LsnError(Exception):
    """A failure the user can fix. `message` says what happened, `hint` what to do next."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} (hint: {self.hint})" if self.hint else self.message


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type name when it has none): library
    messages run to paragraphs, and an `LsnError` message is one line."""
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


class ModelLoadError(LsnError):
    """The model source could not be turned into a loaded model."""


class RemoteJobError(LsnError):
    """A trace sent to NDIF (`--remote`) failed there, or on the way there or back."""


class UnsupportedArchitecture(ModelLoadError):
    """The checkpoint's model family has no row in the architecture table."""


class SiteError(LsnError):
    """A site (g | s | a) was asked for that the model does not have."""


class LanguageError(LsnError):
    """An unknown language code, or a language without the data asked for."""


class CorpusError(LsnError):
    """A corpus file is missing, empty, or not aligned with its parallel files."""


class TaskFileError(LsnError):
    """A benchmark file (XNLI / XQuAD / MKQA) is missing or malformed."""


class StatsMissing(LsnError):
    """A method or value asked for activation statistics the session does not have."""


class Cancelled(LsnError):
    """The caller's cancel event was set; the run stopped and stored nothing of its own."""


class SetInUse(LsnError):
    """Storing a neuron set would silently replace one that a switched-on intervention uses."""

    def __init__(self, message: str, hint: str, *, name: str, rows: list[str], free_name: str) -> None:
        super().__init__(message, hint)
        self.name = name
        self.rows = rows  # the switched-on specs that use the set
        self.free_name = free_name  # a name not yet taken, offered instead


class PathError(LsnError):
    """A file or folder the user named cannot be read or written."""


class JobError(LsnError):
    """A background job that does not exist, or cannot be resumed, cancelled or run as asked."""
