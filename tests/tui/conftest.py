from __future__ import annotations

import pytest

from lsn_explorer.tui.app import LsnApp, create_app


@pytest.fixture
def make_app(demo, tmp_path):
    """An app on the demo model (already loaded, shared) with a fresh session store."""

    def make(session: str = "flow", **kwargs) -> LsnApp:
        return create_app(session=session, root=tmp_path, handle=demo, **kwargs)

    return make
