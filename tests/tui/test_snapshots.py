"""Snapshot tests (pytest-textual-snapshot) of the chat at 80x24 and after an answer.
Update them with `pytest tests/tui/test_snapshots.py --snapshot-update` after a deliberate
change of the layout or of the reports, and look at the SVGs before committing."""
from __future__ import annotations

from tests.tui.conftest import make_app


async def _settle(pilot) -> None:
    pilot.app.query_one("#input").cursor_blink = False  # a blinking cursor is not a layout
    for _ in range(3):
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()


def test_start_screen_80x24(snap_compare, chat_db, taxonomy):
    app = make_app(chat_db, taxonomy, factory=None)
    assert snap_compare(app, terminal_size=(80, 24), run_before=_settle)


def test_after_an_answer_100x32(snap_compare, chat_db, taxonomy):
    app = make_app(chat_db, taxonomy)

    async def run_before(pilot) -> None:
        await _settle(pilot)
        box = pilot.app.query_one("#input")
        box.value = "how do I fix oom?"
        await pilot.press("enter")
        await _settle(pilot)

    assert snap_compare(app, terminal_size=(100, 32), run_before=run_before)
