"""Persisted specs: dataclasses stored in sessions, each with a `kind` and a `version`.

A spec validates itself on construction (`__post_init__` raises `LsnError`), writes itself as
`{"kind": ..., "version": ..., fields...}` and reads back any version up to its own: records
written before kinds and versions existed (wave 1) carry neither and read as version 1. A key
the class does not know — written by a newer release, or a typo in a hand-edited file — is
dropped with a warning rather than failing the load (as peft's configs do).
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import Any, ClassVar, TypeVar

from lsn_explorer.errors import LsnError

SpecT = TypeVar("SpecT", bound="Spec")


class Spec:
    """Mixin for persisted dataclasses: set `KIND` and `VERSION`; override `upgrade` when a
    version changes the fields."""

    KIND: ClassVar[str]
    VERSION: ClassVar[int] = 1

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.KIND, "version": self.VERSION, **dataclasses.asdict(self)}  # type: ignore[call-overload]

    @classmethod
    def upgrade(cls, data: dict[str, Any], version: int) -> dict[str, Any]:
        """Fields of an older `version` → fields of the current one (nothing changed yet)."""
        return data

    @classmethod
    def fields_from_json(cls, data: dict[str, Any], source: str = "") -> dict[str, Any]:
        """The known fields of stored `data`, checked for kind and version (see the module doc)."""
        if not isinstance(data, dict):
            raise LsnError(f"{source or cls.KIND}: expected a JSON object, got {type(data).__name__}",
                           "the record or file is damaged")
        data = dict(data)
        kind = data.pop("kind", cls.KIND)
        version = data.pop("version", 1)
        what = source or cls.KIND
        if kind != cls.KIND:
            raise LsnError(f"{what} is a {kind!r}, not a {cls.KIND!r}", "check which file or record was given")
        if not isinstance(version, int) or version > cls.VERSION:
            raise LsnError(f"{what} was written by a newer lsn-explorer (version {version} of {cls.KIND})",
                           "upgrade lsn-explorer to read it")
        data = cls.upgrade(data, version)
        known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(data) - known)
        if unknown:
            warnings.warn(f"{what}: ignoring unknown keys {', '.join(unknown)}", stacklevel=3)
        return {k: v for k, v in data.items() if k in known}

    @classmethod
    def from_json(cls: type[SpecT], data: dict[str, Any], *, source: str = "") -> SpecT:
        try:
            return cls(**cls.fields_from_json(data, source))
        except TypeError as exc:  # a required field missing: a damaged record
            raise LsnError(f"{source or cls.KIND} is incomplete: {exc}", "the record or file is damaged") from None


def one_of(what: str, value: Any, choices: tuple[Any, ...]) -> None:
    """Raise `LsnError` unless `value` is one of `choices` (validation in `__post_init__`)."""
    if value not in choices:
        raise LsnError(f"{what} {value!r} is not one of {', '.join(map(str, choices))}",
                       f"choose one of {', '.join(map(str, choices))}")
