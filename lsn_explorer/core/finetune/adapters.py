"""Finished adapters: written into the session and exported as plain peft folders (listing and
loading them is `core.model.adapters`, torch-free to import).

A fine-tune's adapter is a standard peft folder (`adapter_config.json`, `adapter_model.safetensors`)
with the neuron mask already folded into its matrices, so `PeftModel.from_pretrained` reproduces
the fine-tuned model without our package or hooks. Beside peft's files it holds `lsn_finetune.json`
(the spec and the mask summary) and `neuron_mask.safetensors` (the (layer, index) pairs). It is
written to `<session>/artifacts/adapters/<name>-<content hash>/` atomically, and only then recorded
(`session.add("adapter", ...)`, read by `core.model.adapters`): a half-written adapter is never listed.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lsn_explorer.core.finetune.checkpoints import atomic_folder, save_tensors
from lsn_explorer.core.finetune.config import RECIPES, FinetuneError, FinetuneSpec
from lsn_explorer.session.store import ARTIFACTS

if TYPE_CHECKING:
    from lsn_explorer.core.finetune.masks import NeuronMask
    from lsn_explorer.core.model.loading import ModelHandle
    from lsn_explorer.session.store import Record, Session

ADAPTERS = "adapters"  # under the session's artifacts/
SPEC_FILE = "lsn_finetune.json"
MASK_FILE = "neuron_mask.safetensors"
HASH_CHARS = 12


def save_adapter(session: Session, handle: ModelHandle, peft_model: Any, spec: FinetuneSpec, mask: NeuronMask | None,
                 summary: dict[str, Any], data: dict[str, Any]) -> Record:
    """Write the trained adapter into the session's artifacts and record it (the record last).

    Args:
        handle: the base model (its provenance is recorded; `handle.adapter` must still be None).
        peft_model: the trained peft model, its masks already folded (`masks.fold`).
        summary: the training's outcome (steps, final loss, tokens, seconds), stored in the record.
        data: where the training examples came from (`data.training_examples`).

    Raises:
        FinetuneError: the disk is full or the folder cannot be written (nothing is recorded).
    """
    import torch

    from lsn_explorer.session.provenance import provenance

    name = spec.adapter_name()
    mask_info = mask.summary() if mask is not None else {"neurons": "none", "count": 0, "per_layer": []}
    root = session.folder / ARTIFACTS / ADAPTERS
    described = {"kind": "adapter", "spec": spec.to_json(), "mask": mask_info, "base_model": handle.source}

    def write(folder: Path) -> None:
        peft_model.save_pretrained(str(folder))
        pairs = mask.pairs if mask is not None else torch.zeros((0, 2), dtype=torch.long)
        save_tensors({"pairs": pairs}, folder / MASK_FILE)
        (folder / SPEC_FILE).write_text(json.dumps(described, indent=1) + "\n", encoding="utf-8")

    try:
        root.mkdir(parents=True, exist_ok=True)
        staging = root / f".staging-{name}"
        atomic_folder(staging, write)  # written once; named by its content below
        digest = folder_hash(staging)
        target = root / f"{name}-{digest[:HASH_CHARS]}"
        if target.exists():
            shutil.rmtree(staging)  # the same adapter was stored before: content-hashed, identical
        else:
            staging.rename(target)
    except OSError as exc:
        from lsn_explorer.paths import describe_os_error

        shutil.rmtree(root / f".staging-{name}", ignore_errors=True)
        raise FinetuneError(f"could not write adapter {name!r}: {exc.strerror or exc}",
                            describe_os_error(exc).hint + "; nothing was recorded, run the fine-tune again") from None
    payload = {"folder": str(target.relative_to(session.folder)), "spec": spec.to_json(), "mask": mask_info,
               "hash": digest, "key": spec.key(), "data": data} | summary
    params = spec.to_json() | ({"recipe_source": RECIPES[spec.recipe].source} if spec.recipe else {})
    return session.add("adapter", name, payload,
                       provenance(model=handle.provenance(), corpus=data, method="masked-lora", params=params,
                                  seed=spec.seed))


def folder_hash(folder: Path) -> str:
    """SHA-256 over the folder's files (names and bytes, in name order)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(folder)).encode() + b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()


def finished_adapter(session: Session, spec: FinetuneSpec, model: dict[str, Any]) -> Record | None:
    """The stored adapter trained from exactly `spec` on the model `model` (provenance), if any."""
    for record in reversed(session.records("adapter", spec.adapter_name())):
        same_model = {k: (record.provenance.get("model") or {}).get(k) for k in model} == model
        if record.payload.get("key") == spec.key() and same_model and (session.folder / record.payload["folder"]).is_dir():
            return record
    return None


def export(session: Session, name: str, out_dir: str | Path) -> Path:
    """Copy the adapter `name` to `out_dir` as a plain peft adapter folder (written atomically:
    `out_dir` must not exist yet, or be an empty folder).

    Raises:
        LsnError: no such adapter; PathError: `out_dir` is a file or a non-empty folder, or cannot be written.
    """
    from lsn_explorer.core.model.adapters import adapter_folder, find_adapter
    from lsn_explorer.errors import PathError

    source = adapter_folder(session, find_adapter(session, name))
    out = Path(out_dir).expanduser()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise PathError(f"{out} already exists and is not an empty folder",
                        "choose a new folder for the exported adapter")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        if out.exists():
            out.rmdir()
        atomic_folder(out, lambda tmp: _copy_files(source, tmp))
    except OSError as exc:
        from lsn_explorer.paths import describe_os_error

        error = describe_os_error(exc)
        raise PathError(f"could not export adapter {name!r} to {out}: {exc.strerror or exc}", error.hint) from None
    return out


def _copy_files(source: Path, target: Path) -> None:
    for path in sorted(source.iterdir()):
        if path.is_file():
            shutil.copy2(path, target / path.name)
