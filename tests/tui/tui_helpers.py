"""Shared steps of the Pilot tests."""

from __future__ import annotations

from lsn_explorer.tui.app import LsnApp

SIZE = (120, 40)


async def settle(app: LsnApp, pilot) -> None:
    """Wait for the model worker and for the messages it posted to be handled."""
    await app.workers.wait_for_complete()
    await pilot.pause()
    await pilot.pause()


def notifications(app: LsnApp) -> list[str]:
    return [n.message for n in app._notifications]


async def type_into(pilot, selector: str, text: str) -> None:
    """Click a field, clear it and type like a person."""
    widget = pilot.app.query_one(selector)
    widget.focus()
    widget.value = ""
    await pilot.press(*list(text))
