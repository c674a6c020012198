"""Which model a session's work continues with: the one its records were made with.

Interventions name neuron sets computed on one model; scoring them on another would index the
wrong neurons. So when no model is named, the newest record's provenance decides. Loading itself
stays in `loading`; this module only chooses the source and precision.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lsn_explorer.errors import LsnError, ModelLoadError

if TYPE_CHECKING:
    from lsn_explorer.core.model.loading import ModelHandle, Remote
    from lsn_explorer.session.store import Session


def session_model_source(session: Session | None) -> tuple[str, bool] | None:
    """(source, loaded in NF4) of the newest record with a model in its provenance, or None."""
    if session is None:
        return None
    for record in reversed(session.records()):
        model = (record.provenance or {}).get("model")
        if model and model.get("source"):
            return model["source"], model.get("quantization") == "nf4"
    return None


def load_session_model(session: Session | None, source: str | None = None, dtype: str = "auto",
                       four_bit: bool = False, device: str = "auto", adapter: str | None = None,
                       device_map: str | None = None, max_memory: dict[int | str, str] | None = None,
                       remote: Remote | None = None) -> ModelHandle:
    """Load `source` when given, else the model the session's records were made with, else the demo.

    Args:
        session: the session whose records decide when `source` is None (None: no session).
        source: Hugging Face id or local checkpoint folder; None defers to the session.
        dtype, device, device_map, max_memory: as for `load_model`.
        four_bit: load in NF4; a session model recorded in NF4 is loaded in NF4 either way.
        adapter: a fine-tuned adapter of the session to load onto the model (checked before the
            model loads, so a typo fails at once).
        remote: run the model's traces on NDIF ("ndif") or through the dry run ("local"); see
            `core/model/remote.py` for what that refuses.

    Raises:
        LsnError: an adapter without a session, or one the session does not have.
        ModelLoadError: with `remote`, a session model recorded in 4-bit, or what `load_remote` refuses.
    """
    from lsn_explorer.core.model.adapters import apply_adapter, find_adapter
    from lsn_explorer.core.model.loading import load_model
    from lsn_explorer.core.model.remote import check_remote, load_remote

    check_remote(remote, four_bit=four_bit, dtype=dtype, device=device, device_map=device_map,
                 max_memory=max_memory, adapter=adapter)

    if adapter is not None:
        if session is None:
            raise LsnError("--adapter needs --session", "adapters live in a session: pass --session NAME")
        find_adapter(session, adapter)
    recorded = session_model_source(session) if source is None else None
    if recorded is not None:
        source, nf4 = recorded
        if nf4 and remote is not None:
            raise ModelLoadError(f"the session's records were made with {source} in 4-bit, which --remote cannot run",
                                 "pass --model to say which model to run remotely, or leave out --remote")
        four_bit = four_bit or nf4
    if remote is not None:
        return load_remote(source, remote, dtype=dtype, device=device)
    handle = load_model(source, dtype=dtype, four_bit=four_bit, device=device, device_map=device_map,
                        max_memory=max_memory)
    if adapter is not None:
        assert session is not None  # checked above
        apply_adapter(handle, session, adapter)
    return handle
