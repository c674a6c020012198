"""The workbench's saved state: languages, intervention switch rows, choices and the chosen adapter,
restored when a session is reopened (the newest "workbench" record wins), and the rule that a
switched-on row's neuron set is never replaced silently."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Sequence

from lsn_explorer.core.interventions.spec import parse_intervention
from lsn_explorer.core.specs import Spec
from lsn_explorer.errors import LsnError, SetInUse
from lsn_explorer.session.store import Session

STATE_KIND = "workbench"


@dataclass
class SwitchRow:
    """One intervention row of the switch panel: a spec and whether it is switched on."""

    spec: str
    enabled: bool = True


@dataclass
class WorkbenchState(Spec):
    """Everything restored when a session is reopened (neuron sets and history are records)."""

    KIND: ClassVar[str] = STATE_KIND

    languages: list[str] = field(default_factory=lambda: ["en", "zh"])
    rows: list[SwitchRow] = field(default_factory=list)
    prompt: str = ""
    max_new_tokens: int = 32
    temperature: float = 0.0
    seed: int = 0
    task: str = "xnli"
    task_lang: str = "en"
    sample: int = 0
    data_dir: str = ""
    adapter: str = ""  # the session adapter loaded onto the model for Generate and Score ("" = the base model)

    @classmethod
    def from_json(cls, data: dict[str, Any], *, source: str = "") -> "WorkbenchState":
        known = cls.fields_from_json(data, source or "the saved workbench state")
        known["rows"] = [SwitchRow(str(row["spec"]), bool(row.get("enabled", True)))
                         for row in known.get("rows", []) if isinstance(row, dict) and "spec" in row]
        return cls(**known)


def rows_using(rows: Sequence[SwitchRow], name: str) -> list[str]:
    """Specs of the switched-on rows whose neurons come from the stored set `name`."""
    using = []
    for row in rows:
        if row.enabled:
            try:
                source = parse_intervention(row.spec).source
            except LsnError:
                continue
            if source == name:
                using.append(row.spec)
    return using


def check_set_not_in_use(session: Session, name: str, replace: bool = False, *,
                         rows: Sequence[SwitchRow] | None = None) -> None:
    """Refuse to store a neuron set under `name` while a switched-on row uses a set of that name.

    Args:
        session: the session the set would be stored in.
        name: the name the new set would be stored under.
        replace: the user chose to replace the set anyway; nothing is checked.
        rows: the switch rows to check (default: those of the session's saved workbench state).

    Raises:
        SetInUse: a switched-on row uses `name`; it carries the rows and a free name to offer.
    """
    if replace:
        return
    if rows is None:
        latest = session.latest(STATE_KIND)
        rows = WorkbenchState.from_json(latest.payload).rows if latest else []
    using = rows_using(rows, name)
    if using:
        free = free_set_name(name, [r.name for r in session.records("neuron_set")])
        raise SetInUse(f"neuron set {name!r} is used by the switched-on row {', '.join(using)}",
                       f"save the new set as {free!r}, or switch the row off first",
                       name=name, rows=using, free_name=free)


def free_set_name(name: str, taken: Sequence[str]) -> str:
    """`name-2`, `name-3`, ...: the first not among `taken`."""
    number = 2
    while f"{name}-{number}" in taken:
        number += 1
    return f"{name}-{number}"
