"""`POST /v1/ask`: the request body and the conversations' bookkeeping."""
from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from jobmedic.tools.base import ToolContext

MAX_QUESTION_CHARS = 100_000


class AskBody(BaseModel):
    """A question for the assistant, in a named conversation."""

    model_config = ConfigDict(extra="forbid")

    question: str = Field(..., max_length=MAX_QUESTION_CHARS,
                          description="The question, in plain language (or pasted error text).")
    session: str = Field("default", min_length=1, max_length=128, pattern=r"^[\w.\-:@]+$",
                         description="Conversation name: follow-up questions use its history.")


class AssistantUnavailable(Exception):
    """The assistant package is not installed or failed to start."""


def default_assistant_factory(model: str, base_url: str | None, timeout_s: float
                              ) -> Callable[[ToolContext], Any]:
    """A factory building `jobmedic.agent.Assistant`s for a context."""
    try:
        from jobmedic.agent import Assistant  # type: ignore[attr-defined]
    except ImportError as exc:
        raise AssistantUnavailable(f"the assistant is not available: {exc}") from exc

    def make(ctx: ToolContext) -> Any:
        return Assistant(ctx, model=model, base_url=base_url, timeout_s=timeout_s)
    return make


class AskSessions:
    """Runs questions: the assistant keeps each conversation in the store (per session name
    and scope), so a request needs only this thread's store; a lock per conversation keeps
    one session's turns in order while different sessions run side by side."""

    def __init__(self, make_ctx: Callable[[list[str] | None], ToolContext],
                 factory: Callable[[ToolContext], Any] | None, max_locks: int = 4096) -> None:
        self.make_ctx, self.factory, self.max_locks = make_ctx, factory, max_locks
        self._lock = threading.Lock()
        self._locks: OrderedDict[str, threading.Lock] = OrderedDict()

    @staticmethod
    def session_name(caller_name: str, session: str, tokens: bool) -> str:
        """Token callers get their own namespace of sessions; local mode shares the CLI's."""
        return f"{caller_name}:{session}" if tokens else session

    def ask(self, session: str, scope: list[str] | None, question: str) -> dict[str, Any]:
        """Run one question (blocking; call from a worker thread)."""
        if self.factory is None:
            raise AssistantUnavailable("the assistant is not available in this installation")
        with self._session_lock(session):
            result = self.factory(self.make_ctx(scope)).ask(question, session=session)
        return result.to_dict() if hasattr(result, "to_dict") else dict(result)

    def _session_lock(self, session: str) -> threading.Lock:
        with self._lock:
            lock = self._locks.get(session)
            if lock is None:
                lock = self._locks[session] = threading.Lock()
                while len(self._locks) > self.max_locks:
                    self._locks.popitem(last=False)
            self._locks.move_to_end(session)
            return lock
