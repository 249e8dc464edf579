"""The question input: history on up / down, completion of known names on Tab (or right
arrow), and pastes of any size (multi-line text is kept, huge pastes are cut and say so)."""
from __future__ import annotations

from typing import ClassVar

from textual import events
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.suggester import Suggester
from textual.widgets import Input

MAX_CHARS = 100_000  # what the assistant accepts; longer pastes are cut
NEWLINE = "\u23ce"  # shown for line breaks of pasted text, turned back into "\n" on submit


class VocabSuggester(Suggester):
    """Completes the word being typed from the store's names and the failure-type codes."""

    def __init__(self, words: list[str] | None = None) -> None:
        super().__init__(use_cache=False, case_sensitive=True)
        self.words: list[str] = list(words or [])

    async def get_suggestion(self, value: str) -> str | None:
        if not value or value[-1].isspace() or len(value) > 2000:
            return None
        token = value.split()[-1].lstrip("(\"'")
        if len(token) < 2:
            return None
        low = token.lower()
        for word in self.words:  # shortest first: the most likely completion
            if len(word) > len(token) and word.lower().startswith(low):
                return value + word[len(token):]
        return None


class ChatInput(Input):
    """An Input with history and completion."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "history(-1)", "Previous", show=False),
        Binding("down", "history(1)", "Next", show=False),
        Binding("tab", "complete", "Complete", show=True),
    ]

    class Pasted(Message):
        """A paste was cut to MAX_CHARS."""

        def __init__(self, size: int) -> None:
            super().__init__()
            self.size = size

    def __init__(self, **kw) -> None:
        super().__init__(placeholder="Ask about failures, e.g. what failed in the last 24 hours?",
                         suggester=VocabSuggester(), **kw)
        self.history: list[str] = []
        self._pos = 0
        self._draft = ""

    def set_vocabulary(self, words: list[str]) -> None:
        assert isinstance(self.suggester, VocabSuggester)
        self.suggester.words = words

    def question(self) -> str:
        """The text to ask, with pasted line breaks restored."""
        return self.value.replace(NEWLINE, "\n").strip()

    def remember(self, text: str) -> None:
        if text and (not self.history or self.history[-1] != text):
            self.history.append(text)
        self._pos = len(self.history)
        self._draft = ""

    def action_history(self, step: int) -> None:
        if not self.history:
            return
        if self._pos == len(self.history):
            self._draft = self.value
        self._pos = max(0, min(len(self.history), self._pos + step))
        self.value = self._draft if self._pos == len(self.history) else self.history[self._pos]
        self.cursor_position = len(self.value)

    def action_complete(self) -> None:
        if self._suggestion and self._suggestion != self.value:
            self.value = self._suggestion
            self.cursor_position = len(self.value)
        else:
            self.screen.focus_next()

    def _on_paste(self, event: events.Paste) -> None:
        event.stop()
        event.prevent_default()  # Input's own handler would paste the first line again
        text = event.text or ""
        room = MAX_CHARS - len(self.value)
        if len(text) > room:
            self.post_message(self.Pasted(len(text)))
            text = text[:max(room, 0)]
        text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\n", NEWLINE)
        if text:
            self.insert_text_at_cursor(text)
