"""Conversations of `POST /v1/ask`: one assistant per (caller, session), each with its own
store connection and a lock, so one session's turns run in order while sessions run side by
side. Least recently used sessions are dropped beyond a cap so memory stays bounded.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from jobmedic.knowledge.store import Store
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


@dataclass
class _Session:
    lock: threading.Lock
    store: Store
    assistant: Any


class AskSessions:
    """Keeps the assistants of live conversations (at most `max_sessions`)."""

    def __init__(self, db_path: str, make_ctx: Callable[[Store, list[str] | None], ToolContext],
                 factory: Callable[[ToolContext], Any] | None, max_sessions: int = 64,
                 busy_timeout_ms: int = 30_000) -> None:
        self.db_path, self.make_ctx, self.factory = db_path, make_ctx, factory
        self.max_sessions, self.busy_timeout_ms = max_sessions, busy_timeout_ms
        self._lock = threading.Lock()
        self._sessions: OrderedDict[tuple[str, str], _Session] = OrderedDict()

    def ask(self, caller_name: str, scope: list[str] | None, body: AskBody) -> dict[str, Any]:
        """Run one question in its session (blocking; call from a worker thread)."""
        if self.factory is None:
            raise AssistantUnavailable("the assistant is not available in this installation")
        sess = self._session((caller_name, body.session), scope)
        with sess.lock:
            result = sess.assistant.ask(body.question, session=body.session)
        return result.to_dict() if hasattr(result, "to_dict") else dict(result)

    def _session(self, key: tuple[str, str], scope: list[str] | None) -> _Session:
        with self._lock:
            sess = self._sessions.get(key)
            if sess is not None:
                self._sessions.move_to_end(key)
                return sess
            store = Store(self.db_path, busy_timeout_ms=self.busy_timeout_ms, migrate=False)
            try:
                assistant = self.factory(self.make_ctx(store, scope))  # type: ignore[misc]
            except Exception:
                store.close()
                raise
            sess = self._sessions[key] = _Session(threading.Lock(), store, assistant)
            while len(self._sessions) > self.max_sessions:
                _, old = self._sessions.popitem(last=False)
                with old.lock:
                    old.store.close()
            return sess

    def close(self) -> None:
        with self._lock:
            sessions, self._sessions = list(self._sessions.values()), OrderedDict()
        for s in sessions:
            s.store.close()
