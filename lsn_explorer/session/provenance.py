"""Provenance: what every stored record carries so a result can be reproduced.

Model (source, revision or file fingerprint, dtype, quantisation), corpus (files, hashes, token
counts), method and parameters, seed, package versions and time. Plain dicts only: the model part
comes from `ModelHandle.provenance()`, so this layer never imports the engine.
"""

from __future__ import annotations

import hashlib
from importlib import metadata
from pathlib import Path
from typing import Any

from lsn_explorer.session.store import now

PACKAGES = ("lsn-explorer", "torch", "transformers", "nnsight", "bitsandbytes", "peft", "numpy", "safetensors")
_EDGE = 1 << 20  # bytes read from each end of a weight file for its fingerprint


def package_versions() -> dict[str, str]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "absent"
    return versions


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def checkpoint_fingerprint(folder: str | Path) -> str:
    """A cheap, stable identity of a local checkpoint: config.json plus, for each weight file,
    its name, size and first/last MiB (hashing all 16 GB of an 8B model would take minutes)."""
    folder = Path(folder)
    digest = hashlib.sha256((folder / "config.json").read_bytes())
    for weights in sorted(folder.glob("*.safetensors")) + sorted(folder.glob("*.bin")):
        size = weights.stat().st_size
        digest.update(f"{weights.name}:{size}".encode())
        with open(weights, "rb") as f:
            digest.update(f.read(_EDGE))
            f.seek(max(0, size - _EDGE))
            digest.update(f.read(_EDGE))
    return digest.hexdigest()


def provenance(
    *,
    model: dict[str, Any] | None = None,
    corpus: dict[str, Any] | None = None,
    method: str | None = None,
    params: dict[str, Any] | None = None,
    seed: int | None = None,
) -> dict[str, Any]:
    """The provenance block stored with a record (`model`: `ModelHandle.provenance()`)."""
    return {
        "model": model,
        "corpus": corpus,
        "method": method,
        "params": params or {},
        "seed": seed,
        "packages": package_versions(),
        "time": now(),
    }


def hub_revision(repo_id: str) -> str | None:
    """The commit of a hub model's files in the local cache (the snapshot its config lies in), or
    None when it is not cached. transformers 5 no longer keeps `_commit_hash` on the config, so
    this is where a hub id's revision is read from; no network is used."""
    from huggingface_hub import try_to_load_from_cache

    try:
        path = try_to_load_from_cache(repo_id, "config.json")
    except ValueError:  # not a valid repo id
        return None
    if not isinstance(path, str):
        return None
    snapshot = Path(path).parent.name  # …/models--org--name/snapshots/<commit>/config.json
    return snapshot if len(snapshot) == 40 and all(c in "0123456789abcdef" for c in snapshot) else None
