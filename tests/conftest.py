from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

# Tests never reach the network: model and dataset loads must come from disk.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

sys.path.insert(0, str(Path(__file__).parent))

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def demo():
    """The bundled demo model, loaded once for every test that uses it (fp32, CPU)."""
    from lsn_explorer.core.model.loading import load_model

    return load_model(device="cpu")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real benchmark files beside the project; tests using it skip when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not present")
    return SHARED_DATA


@pytest.fixture(scope="session")
def tiny_checkpoints(tmp_path_factory):
    """One saved tiny checkpoint per architecture family, built once per test session."""
    from tiny import FAMILY_CONFIGS, save_tiny_checkpoint

    root = tmp_path_factory.mktemp("tiny")
    return {family: save_tiny_checkpoint(family, root / family) for family in FAMILY_CONFIGS}
