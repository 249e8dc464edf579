"""The conversation pane: questions and answers as Markdown (tables included)."""
from __future__ import annotations

from textual.containers import VerticalScroll
from textual.widgets import Markdown, Static

ECHO_CHARS = 2_000  # a pasted wall of text is echoed in short


class Conversation(VerticalScroll):
    """A scrolling list of turns; answers render as Markdown."""

    can_focus = True

    def on_mount(self) -> None:
        self.mount(Static(
            "Ask about failures in plain words: \"what failed in the last 24 hours?\", "
            "\"how do I fix oom?\", \"why did job 4242 fail?\". Up/down recall earlier "
            "questions, Tab completes names, F2 shows or hides the panel.", classes="hint",
            markup=False))

    async def add_question(self, text: str) -> None:
        shown = text if len(text) <= ECHO_CHARS else (
            text[:ECHO_CHARS] + f"… ({len(text):,} characters in all)")
        await self.mount(Static(f"> {shown}", classes="question", markup=False))
        self.scroll_end(animate=False)

    async def add_answer(self, markdown: str, note: str | None = None) -> None:
        if note:
            await self.mount(Static(note, classes="note", markup=False))
        await self.mount(Markdown(markdown or "_(no answer)_", classes="answer"))
        self.scroll_end(animate=False)

    async def add_error(self, message: str) -> None:
        await self.mount(Static(message, classes="error", markup=False))
        self.scroll_end(animate=False)

    async def clear_turns(self) -> None:
        await self.remove_children(".question, .answer, .note, .error")
