"""The app's side of the bad-input catalogue (issue 16): a bad value typed into a field, then the
field's action, gives an error notification; the app keeps running and answers the next key; the
session gets no result record and no artifact from it (demo model, Pilot, a fresh session each).
The statistics tab is not here: its token field takes digits only, so there is nothing bad to type."""

from __future__ import annotations

from collections import Counter

import pytest
from tui.tui_helpers import SIZE, settle, type_into  # tests/ is on sys.path (tests/conftest.py)

from lsn_explorer.tui.app import create_app

# (tab key, [(field, typed text)], key or #button that acts, a piece of the error notification)
CASES = [
    pytest.param("f3", [("#method-params", "top_rate=2")], "ctrl+t", "top_rate", id="lape-top-rate-out-of-range"),
    pytest.param("f3", [("#method-params", "nonsense")], "ctrl+t", "nonsense", id="method-params-without-equals"),
    pytest.param("f3", [("#method-params", "topp_rate=0.1")], "ctrl+t", "topp_rate", id="method-params-unknown-key",
                 marks=pytest.mark.slow),
    pytest.param("f3", [("#inspect", "99.3")], "enter", "out of range", id="inspect-layer-beyond-depth"),
    pytest.param("f4", [("#iv-spec", "lape:zh=zero@middle")], "enter", "positions", id="spec-bad-positions"),
    pytest.param("f4", [("#iv-spec", "lape:zh=zero/q")], "enter", "modifier", id="spec-bad-site", marks=pytest.mark.slow),
    pytest.param("f5", [("#prompt", "Hello"), ("#max-new-tokens", "many")], "ctrl+g", "tokens",
                 id="generate-max-new-tokens-not-a-number"),
    pytest.param("f5", [("#prompt", "Hello"), ("#temperature", "-1")], "ctrl+g", "temperature",
                 id="generate-negative-temperature"),
    pytest.param("f6", [("#sample", "99999")], "ctrl+r", "sample", id="score-sample-out-of-range"),
    pytest.param("f6", [("#data-dir", "/no/such/benchmarks")], "ctrl+r", "/no/such/benchmarks",
                 id="score-missing-data-dir"),
]


@pytest.fixture
def make_app(demo, tmp_path):
    """An app on the demo model (loaded once, shared) with a fresh session store."""
    return lambda session: create_app(session=session, root=tmp_path, handle=demo)


def stored(app) -> tuple[Counter, list[str]]:
    """Records per kind and artifact files; not the `workbench` record, the app's own working state
    (typed prompt, ticked languages), which it saves on every change by design."""
    session = app.workbench.session
    kinds = Counter(r.kind for r in session.records() if r.kind != "workbench")
    return kinds, sorted(p.name for p in (session.folder / "artifacts").iterdir())


@pytest.mark.parametrize(("tab", "fields", "action", "fragment"), CASES)
async def test_bad_input_in_a_field_is_an_error_notification_and_stores_nothing(make_app, tab, fields, action,
                                                                                fragment):
    app = make_app("bad")
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        before = stored(app)
        await pilot.press(tab)
        await pilot.pause()
        for selector, text in fields:
            await type_into(pilot, selector, text)
        if action.startswith("#"):
            await pilot.click(action)
        else:
            await pilot.press(action)
        await settle(app, pilot)
        errors = [n.message for n in app._notifications if n.severity == "error"]
        assert errors and any(fragment in m for m in errors), [(n.severity, n.message) for n in app._notifications]
        assert stored(app) == before
        # Still alive: the next key switches tabs and the model lane is free again.
        await pilot.press("f7")
        await pilot.pause()
        assert app.is_running and not app.workers._workers or all(w.is_finished for w in app.workers)
