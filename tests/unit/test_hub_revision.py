"""A hub model's revision in provenance: read from the snapshot its files lie in (transformers 5
keeps no `_commit_hash` on the config), and a record without one is not refused as another model."""

from __future__ import annotations

import pytest
from tiny import tiny_model, tiny_tokenizer

from lsn_explorer.core.model.loading import load_model
from lsn_explorer.core.stats.runs import identity_differences, stats_identity
from lsn_explorer.session.provenance import hub_revision

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture()
def hub_cache(tmp_path, monkeypatch):
    """A local hub cache holding acme/tiny at COMMIT, as a download leaves it."""
    from huggingface_hub import constants

    repo = tmp_path / "hub" / "models--acme--tiny"
    snapshot = repo / "snapshots" / COMMIT
    snapshot.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(COMMIT)
    tiny_model("llama").save_pretrained(snapshot)
    tiny_tokenizer().save_pretrained(snapshot)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    return snapshot


def test_a_cached_hub_model_records_its_snapshot_commit(hub_cache):
    handle = load_model("acme/tiny")
    assert getattr(handle.model.config, "_commit_hash", None) is None  # why the cache is read
    assert handle.provenance()["revision"] == COMMIT
    assert hub_revision("acme/other") is None and hub_revision("not a repo id!") is None


def test_an_unknown_revision_is_not_a_different_model():
    old = stats_identity({"source": "acme/tiny", "revision": None, "dtype": "float32"}, "s", "consistent")
    new = stats_identity({"source": "acme/tiny", "revision": COMMIT, "dtype": "float32"}, "s", "consistent")
    other = stats_identity({"source": "acme/tiny", "revision": "f" * 40, "dtype": "float32"}, "s", "consistent")
    assert identity_differences(old, new) == []
    assert identity_differences(new, other) == [f"revision {COMMIT[:12]} vs {'f' * 12}"]
    assert identity_differences(old, {**new, "dtype": "bfloat16"}) == ["dtype float32 vs bfloat16"]
