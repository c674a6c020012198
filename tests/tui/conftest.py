from __future__ import annotations

import shutil

import pytest

from lsn_explorer.tui.app import LsnApp, create_app
from lsn_explorer.workbench.state import SwitchRow


@pytest.fixture
def make_app(demo, tmp_path):
    """An app on the demo model (already loaded, shared) with a fresh session store."""

    def make(session: str = "flow", **kwargs) -> LsnApp:
        return create_app(session=session, root=tmp_path, handle=demo, **kwargs)

    return make


@pytest.fixture(scope="module")
def lape_template(demo, tmp_path_factory):
    """Session "flow" with en/zh statistics (600 tokens each), a LAPE set and a switched-on row,
    built once; each test gets a copy."""
    from lsn_explorer.workbench.bench import Workbench

    root = tmp_path_factory.mktemp("lape")
    workbench = Workbench.open("flow", root)
    workbench.handle = demo
    workbench.compute_stats(["en", "zh"], max_tokens=600)
    workbench.identify("lape", {"top_rate": 0.05})
    workbench.set_rows([SwitchRow("lape:zh=zero", True)])
    workbench.close()
    return root / "flow"


@pytest.fixture
def lape_session(lape_template, tmp_path):
    shutil.copytree(lape_template, tmp_path / "flow")
    return tmp_path
