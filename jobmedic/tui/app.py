"""`jobmedic chat`: the Textual app. Questions go to the assistant in a worker thread (with a
visible progress bar, so the UI never freezes); the side panel refreshes on a timer; fixes
suggested by an answer can be marked as having worked or not, which records the outcome.
"""
from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Footer, Input, Label, ProgressBar

from jobmedic.tui.backend import Answer, AssistantUnavailable, ChatBackend
from jobmedic.tui.picture import Picture
from jobmedic.tui.widgets import AtRisk, ChatInput, Conversation, RemedyList, SidePanel
from jobmedic.tui.widgets.at_risk import RiskView, risk_from

NARROW = 72  # below this width the side panel hides itself (F2 shows it again)


class ChatApp(App[None]):
    """The jobmedic terminal chat."""

    CSS_PATH = Path(__file__).with_name("chat.tcss")
    TITLE = "jobmedic chat"
    BINDINGS: ClassVar[list[Binding]] = [
        Binding("ctrl+q", "quit", "Quit", priority=True),
        Binding("f2", "toggle_panel", "Panel"),
        Binding("f5", "refresh_picture", "Refresh"),
        Binding("ctrl+l", "clear", "Clear"),
        Binding("escape", "focus_input", "Input", show=False),
    ]

    def __init__(self, backend: ChatBackend, refresh_s: float = 60.0,
                 clock: Any = None) -> None:
        super().__init__()
        self.backend, self.refresh_s = backend, refresh_s
        self._clock = clock or (lambda: datetime.now(UTC).strftime("%H:%M:%S UTC"))
        self._panel_forced: bool | None = None
        self.busy = 0

    @classmethod
    def from_app(cls, app: Any, session: str = "chat", refresh_s: float = 60.0) -> ChatApp:
        """The chat for a set-up jobmedic.app.App: its store, scope, time and assistant model."""
        from jobmedic.agent import Assistant

        a = app.settings.agent

        def factory(ctx):
            return Assistant(ctx, model=a.model, base_url=a.base_url, timeout_s=a.timeout_s)

        backend = ChatBackend(str(app.settings.db_path), app.tool_context, factory,
                              session=session)
        return cls(backend, refresh_s=refresh_s)

    @classmethod
    def from_settings(cls, settings: Any, taxonomy: Any = None, session: str = "chat",
                      refresh_s: float = 60.0) -> ChatApp:
        """The chat for these Settings (set up through jobmedic.app)."""
        from jobmedic.app import App

        return cls.from_app(App(settings, taxonomy=taxonomy), session=session,
                            refresh_s=refresh_s)

    def compose(self) -> ComposeResult:
        with Horizontal(id="body"):
            with Vertical(id="main"):
                yield Conversation(id="conversation")
                with Horizontal(id="busy"):
                    yield Label("working…", id="busy-label")
                    yield ProgressBar(total=None, show_eta=False, show_percentage=False)
                yield ChatInput(id="input")
            with Vertical(id="side"):
                yield SidePanel(id="panel")
                yield AtRisk(id="at-risk")
                yield RemedyList(id="remedies")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(ChatInput).focus()
        self.action_refresh_picture()
        self.load_vocabulary()
        if self.refresh_s > 0:
            self.set_interval(self.refresh_s, self.action_refresh_picture)
        self._fit(self.size.width)

    def on_unmount(self) -> None:
        self.backend.close()

    # -- layout ------------------------------------------------------------------------------
    def on_resize(self, event: Any) -> None:
        self._fit(event.size.width)

    def _fit(self, width: int) -> None:
        show = self._panel_forced if self._panel_forced is not None else width >= NARROW
        self.query_one("#side").set_class(not show, "-hidden")

    def action_toggle_panel(self) -> None:
        hidden = self.query_one("#side").has_class("-hidden")
        self._panel_forced = hidden
        self._fit(self.size.width)

    def action_focus_input(self) -> None:
        self.query_one(ChatInput).focus()

    async def action_clear(self) -> None:
        await self.query_one(Conversation).clear_turns()

    def _busy(self, delta: int, label: str = "working…") -> None:
        self.busy = max(0, self.busy + delta)
        self.query_one("#busy-label", Label).update(label)
        self.query_one("#busy").set_class(self.busy > 0, "-active")

    # -- asking ------------------------------------------------------------------------------
    @on(Input.Submitted, "#input")
    async def submit(self, event: Input.Submitted) -> None:
        box = self.query_one(ChatInput)
        question = box.question()
        if not question:
            return
        box.remember(box.value)
        box.value = ""
        await self.query_one(Conversation).add_question(question)
        self._busy(+1, "thinking…")
        self.ask(question)

    @work(thread=True, exclusive=False, group="ask")
    def ask(self, question: str) -> None:
        try:
            answer = self.backend.ask(question)
        except AssistantUnavailable as exc:
            self.call_from_thread(self._failed, str(exc))
        except Exception as exc:  # noqa: BLE001 - shown as a notification, the app goes on
            self.call_from_thread(self._failed, f"{type(exc).__name__}: {exc}")
        else:
            self.call_from_thread(self._answered, answer)

    async def _answered(self, answer: Answer) -> None:
        self._busy(-1)
        await self.query_one(Conversation).add_answer(answer.markdown, answer.note)
        if answer.remedies:
            self.query_one(RemedyList).show(answer.remedy_subject, answer.remedies)
        self.action_refresh_picture()

    async def _failed(self, message: str) -> None:
        self._busy(-1)
        await self.query_one(Conversation).add_error(f"error: {message}")
        self.notify(message, title="Could not answer", severity="error", timeout=8)

    @on(ChatInput.Pasted)
    def pasted(self, event: ChatInput.Pasted) -> None:
        self.notify(f"The paste had {event.size:,} characters; kept the first 100,000.",
                    severity="warning")

    # -- outcomes ----------------------------------------------------------------------------
    @on(RemedyList.Marked)
    def marked(self, event: RemedyList.Marked) -> None:
        self._busy(+1, "recording…")
        self.record(event.subject, event.remedy, event.success)

    @work(thread=True, group="record")
    def record(self, subject: dict, remedy: Any, success: bool) -> None:
        try:
            res = self.backend.record_outcome(subject, remedy, success)
        except Exception as exc:  # noqa: BLE001
            self.call_from_thread(self._recorded, False, f"{type(exc).__name__}: {exc}")
            return
        if res.status == "error":
            self.call_from_thread(self._recorded, False, res.error.message if res.error else "error")
        else:
            verdict = "fixed it" if success else "did not help"
            self.call_from_thread(self._recorded, True, f"Recorded: '{remedy.title}' {verdict}.")

    def _recorded(self, ok: bool, message: str) -> None:
        self._busy(-1)
        self.notify(message, severity="information" if ok else "error",
                    title="Outcome recorded" if ok else "Could not record")

    # -- side panel and vocabulary -----------------------------------------------------------
    def action_refresh_picture(self) -> None:
        self.picture()

    @work(thread=True, exclusive=True, group="picture")
    def picture(self) -> None:
        try:
            pic = self.backend.picture()
        except Exception as exc:  # noqa: BLE001 - e.g. the store is locked by an ingest
            pic = Picture(notes=[f"refresh failed: {type(exc).__name__}: {exc}"])
        self.call_from_thread(self.query_one(SidePanel).show, pic, self._clock())
        try:
            view = risk_from(self.backend.running_risk())
        except Exception as exc:  # noqa: BLE001 - as above
            view = RiskView(note=f"refresh failed: {type(exc).__name__}")
        self.call_from_thread(self.query_one(AtRisk).show, view)

    @work(thread=True, exclusive=True, group="vocab")
    def load_vocabulary(self) -> None:
        try:
            words = self.backend.vocabulary()
        except Exception as exc:  # noqa: BLE001
            self.call_from_thread(self.notify, f"completion unavailable: {exc}", severity="warning")
            return
        self.call_from_thread(self.query_one(ChatInput).set_vocabulary, words)
