"""The chat UI driven by Textual's pilot: asking, markdown answers, history, completion,
remediation outcomes, huge pastes, a concurrent ingest, resizing, and errors."""
from __future__ import annotations

import threading

import pytest
from textual.widgets import Markdown, OptionList
from textual.widgets._markdown import MarkdownTable

from jobmedic.ingest import READERS, IngestContext, run_ingest
from jobmedic.knowledge.store import Store
from jobmedic.knowledge.templates import Templates
from jobmedic.tui.widgets import ChatInput, Conversation, RemedyList, SidePanel
from jobmedic.tui.widgets.chat_input import MAX_CHARS, NEWLINE

pytestmark = pytest.mark.asyncio


async def settle(pilot, rounds: int = 3) -> None:
    for _ in range(rounds):
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()


async def ask(pilot, text: str) -> None:
    box = pilot.app.query_one(ChatInput)
    box.value = text
    await pilot.press("enter")
    await settle(pilot)


def answers(app) -> list[Markdown]:
    return list(app.query_one(Conversation).query(Markdown))


async def test_side_panel_shows_the_actions_numbers(app_factory, chat_db, taxonomy):
    from jobmedic.app import build_tool_context
    from jobmedic.settings import Settings
    from jobmedic.tools import run_action
    from tests.tui.conftest import ANCHOR

    app = app_factory()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        text = str(app.query_one("#now").render())
    with Store(chat_db) as store:
        ctx = build_tool_context(Settings(db=str(chat_db)), store, taxonomy, ANCHOR)
        res = run_action({"action": "stats", "lookback_days": 1}, ctx)
    assert f"Failed 24h: {res.data['totals']['failures']:,} of " in text


async def test_answer_renders_markdown_with_a_table(app_factory):
    app = app_factory()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await ask(pilot, "failures by node in the last 3 days")
        md = answers(app)
        assert md, "no answer was rendered"
        assert list(md[-1].query(MarkdownTable)), "the stats answer has no rendered table"
        assert app.query_one(ChatInput).value == ""


async def test_history_with_up_and_down(app_factory):
    app = app_factory(factory=None)
    async with app.run_test(size=(100, 30)) as pilot:
        for q in ("first question", "second question"):
            await ask(pilot, q)
        box = app.query_one(ChatInput)
        box.value = "draft"
        await pilot.press("up")
        assert box.value == "second question"
        await pilot.press("up", "up")
        assert box.value == "first question"
        await pilot.press("down", "down")
        assert box.value == "draft"


async def test_tab_completes_known_names(app_factory):
    app = app_factory(factory=None)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        box = app.query_one(ChatInput)
        box.focus()
        await pilot.press(*"what broke in bio-")
        await pilot.pause(0.1)
        await pilot.press("tab")
        assert box.value == "what broke in bio-sim"
        box.value = ""
        await pilot.press(*"how to fix node_f")
        await pilot.pause(0.1)
        await pilot.press("tab")
        assert box.value == "how to fix node_failure"


async def test_marking_a_fix_records_the_outcome(app_factory, chat_db):
    app = app_factory()
    async with app.run_test(size=(110, 36)) as pilot:
        await settle(pilot)
        await ask(pilot, "how do I fix oom?")
        remedies = app.query_one(RemedyList)
        assert remedies.remedies, "no fixes were listed for oom"
        assert remedies.subject == {"failure_type": "oom"}
        remedies.focus()
        await pilot.press("y")
        await settle(pilot)
        remedies.highlighted = 1
        await pilot.press("n")
        await settle(pilot)
    with Store(chat_db) as store:
        rows = store.conn.execute("SELECT success, recorded_by FROM solution_outcomes "
                                  "WHERE recorded_by = 'jobmedic chat' ORDER BY id").fetchall()
    assert rows == [(1, "jobmedic chat"), (0, "jobmedic chat")]


async def test_a_10_mb_paste_is_cut_and_the_app_goes_on(app_factory):
    from textual import events

    app = app_factory(factory=None)
    async with app.run_test(size=(80, 24)) as pilot:
        box = app.query_one(ChatInput)
        box.focus()
        huge = ("Traceback line\n" * 700_000)[:10_000_000]
        box.post_message(events.Paste(huge))
        await pilot.pause()
        assert len(box.value) == MAX_CHARS
        assert NEWLINE in box.value and "\n" in box.question()
        assert any("kept the first 100,000" in n.message for n in app._notifications)
        box.value = "still typing"
        box.cursor_position = len(box.value)
        await pilot.press("x")
        assert box.value.endswith("x")


async def test_survives_an_ingest_writing_the_store_meanwhile(app_factory, chat_db,
                                                              chat_db_template, taxonomy):
    _, sacct, _ = chat_db_template
    errors: list[BaseException] = []

    def ingest() -> None:
        try:
            with Store(chat_db) as store:
                ctx = IngestContext(taxonomy, Templates(store.load_templates()),
                                    cluster="other", batch_size=200)
                run_ingest(store, READERS["slurm"], str(sacct), ctx)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    app = app_factory()
    async with app.run_test(size=(100, 30)) as pilot:
        t = threading.Thread(target=ingest)
        t.start()
        for q in ("what failed in the last 24 hours?", "top failure types this week"):
            await ask(pilot, q)
            app.action_refresh_picture()
        t.join(60)
        await settle(pilot)
        assert len(answers(app)) == 2
        assert "refresh failed" not in str(app.query_one("#now").render())
    assert not errors


async def test_resizes_and_hides_the_panel_when_narrow(app_factory):
    app = app_factory(factory=None)
    async with app.run_test(size=(80, 24)) as pilot:
        side = app.query_one("#side")
        assert side.display and not side.has_class("-hidden")
        await pilot.resize_terminal(60, 20)
        await pilot.pause()
        assert side.has_class("-hidden")
        assert app.query_one(ChatInput).region.width > 50
        await pilot.press("f2")
        assert not side.has_class("-hidden")
        await pilot.resize_terminal(140, 40)
        await pilot.pause()
        assert not side.has_class("-hidden")


async def test_errors_are_notifications(app_factory):
    def broken(ctx):
        raise RuntimeError("model endpoint unreachable")

    app = app_factory(factory=broken)
    async with app.run_test(size=(100, 30)) as pilot:
        await ask(pilot, "what failed?")
        notes = [n for n in app._notifications if n.severity == "error"]
        assert notes and "model endpoint unreachable" in notes[-1].message
        assert app.query_one(Conversation).query(".error")
        assert app.busy == 0 and not app.query_one("#busy").has_class("-active")


async def test_progress_indicator_while_answering(app_factory):
    gate = threading.Event()

    class Slow:
        def ask(self, question, session="default"):
            gate.wait(10)
            from jobmedic.agent import AskResult
            return AskResult(answer="done")

    app = app_factory(factory=lambda ctx: Slow())
    async with app.run_test(size=(100, 30)) as pilot:
        box = app.query_one(ChatInput)
        box.value = "slow question"
        await pilot.press("enter")
        await pilot.pause()
        assert app.query_one("#busy").has_class("-active")
        box.value = "typing while it works"  # the UI is not frozen
        box.cursor_position = len(box.value)
        await pilot.press("x")
        assert box.value.endswith("x")
        gate.set()
        await settle(pilot)
        assert not app.query_one("#busy").has_class("-active")
        assert isinstance(app.query_one(RemedyList), OptionList)
        assert app.query_one(SidePanel)
