"""Fine-tuned adapters stored in a session: listed (torch-free), and loaded onto a model before it is used.

An adapter is a record of kind "adapter" whose payload names a standard peft adapter folder
(`adapter_config.json` + weights) inside the session folder (`folder`, relative to it), so a copied
session keeps its adapters. Masked-LoRA fine-tuning writes them; evaluation, scoring and
generation load them with `apply_adapter`.

peft injects its LoRA layers in place: the model's module tree keeps its paths (the MLP's
gate/up/down become LoRA-wrapped linears with the same names), so neuron sites and interventions
work unchanged on the adapted model; only the nnsight wrapper must be built again.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from lsn_explorer.errors import LsnError

if TYPE_CHECKING:
    from lsn_explorer.core.model.loading import ModelHandle
    from lsn_explorer.session.store import Record, Session


def find_adapter(session: Session, name: str) -> Record:
    """The newest adapter record called `name`, its folder present.

    Raises:
        LsnError: no such adapter, or its folder is missing from the session.
    """
    record = session.latest("adapter", name)
    if record is None:
        stored = sorted({r.name for r in session.records("adapter")})
        raise LsnError(f"session {session.name!r} has no adapter {name!r}",
                       f"its adapters: {', '.join(stored)}" if stored else
                       "it has none; fine-tune one first, or leave out --adapter")
    folder = adapter_folder(session, record)
    if not (folder / "adapter_config.json").is_file():
        raise LsnError(f"adapter {name!r} of session {session.name!r} has no adapter_config.json in {folder}",
                       "the session folder was copied incompletely; fine-tune the adapter again")
    return record


def adapter_folder(session: Session, record: Record) -> Path:
    return session.folder / str(record.payload.get("folder", ""))


def apply_adapter(handle: ModelHandle, session: Session, name: str) -> None:
    """Load the session's adapter `name` onto `handle`'s model, in place.

    Raises:
        LsnError: the adapter is missing, or does not fit this model.
    """
    from peft import PeftModel

    record = find_adapter(session, name)
    try:
        PeftModel.from_pretrained(handle.model, str(adapter_folder(session, record)), is_trainable=False)
    except (ValueError, RuntimeError, KeyError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise LsnError(f"adapter {name!r} does not fit {handle.source}: {first}",
                       "load the model the adapter was trained on (--model)") from None
    handle.model.eval()
    handle.traced = None  # the wrapper's module tree predates the LoRA layers
    handle.adapter = name


def list_adapters(session: Session) -> list[dict[str, Any]]:
    """The session's adapters, newest record per name, as plain data (oldest first)."""
    newest: dict[str, Record] = {}
    for record in session.records("adapter"):
        newest[record.name] = record
    rows = []
    for record in newest.values():
        spec = record.payload.get("spec") or {}
        folder = adapter_folder(session, record)
        rows.append({"name": record.name, "record": record.id, "created": record.created,
                     "task": spec.get("task"), "lang": spec.get("train_lang"), "neurons": spec.get("neurons"),
                     "modules": spec.get("modules"), "attention": spec.get("attention"),
                     "steps": record.payload.get("steps"), "final_loss": record.payload.get("final_loss"),
                     "folder": str(record.payload.get("folder", "")), "present": (folder / "adapter_config.json").is_file()})
    return rows
