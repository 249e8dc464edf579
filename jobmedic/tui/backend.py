"""What the chat UI asks of jobmedic, kept free of widgets so it can be tested on its own:
the assistant, the side panel's picture, the vocabulary for completion, remediation
suggestions and recording their outcomes.

Everything here blocks (SQL, models), so the app calls it from thread workers. Two store
connections, each behind a lock, keep the conversation and the side panel from interleaving
their transactions while letting a panel refresh run beside a long answer.
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from jobmedic.knowledge.store import Store
from jobmedic.tools import run_action
from jobmedic.tools.base import ToolContext, ToolResult
from jobmedic.tui.picture import Picture, Remedy, picture_from, remedies_from

VOCAB_KINDS = ("project", "node", "user", "queue", "image")


class AssistantUnavailable(Exception):
    """The assistant could not be started (not installed, or its model failed to load)."""


@dataclass
class Answer:
    """One answered question: the markdown, the actions it ran, and a note when it fell back."""

    question: str
    markdown: str
    calls: list[dict[str, Any]] = field(default_factory=list)
    note: str | None = None
    remedies: list[Remedy] = field(default_factory=list)
    remedy_subject: dict[str, Any] = field(default_factory=dict)


class ChatBackend:
    """The chat's link to the store, the actions and the assistant."""

    def __init__(self, db_path: str, make_ctx: Callable[[Store], ToolContext],
                 assistant_factory: Callable[[ToolContext], Any] | None,
                 session: str = "chat", busy_timeout_ms: int = 30_000) -> None:
        self.db_path, self.session = str(db_path), session
        self._conv = Store(self.db_path, busy_timeout_ms=busy_timeout_ms)
        self._panel = Store(self.db_path, busy_timeout_ms=busy_timeout_ms, migrate=False)
        self._conv_lock, self._panel_lock = threading.Lock(), threading.Lock()
        self.conv_ctx = make_ctx(self._conv)
        self.panel_ctx = make_ctx(self._panel)
        self._factory = assistant_factory
        self._assistant: Any = None
        self._assistant_error: str | None = None

    # -- the conversation --------------------------------------------------------------------
    def ask(self, question: str) -> Answer:
        """Ask the assistant; the answer carries remediation suggestions when it found any."""
        with self._conv_lock:
            assistant = self._get_assistant()
            result = assistant.ask(question, session=self.session)
            answer = Answer(question, result.answer, list(getattr(result, "calls", []) or []),
                            getattr(result, "note", None))
            answer.remedy_subject, answer.remedies = self._remedies_for(
                answer.calls, list(getattr(result, "results", []) or []))
        return answer

    def _get_assistant(self) -> Any:
        if self._assistant is None:
            if self._factory is None:
                raise AssistantUnavailable(self._assistant_error or
                                           "the assistant is not available in this installation")
            try:
                self._assistant = self._factory(self.conv_ctx)
            except Exception as exc:
                raise AssistantUnavailable(f"the assistant could not start: {exc}") from exc
        return self._assistant

    def _remedies_for(self, calls: list[dict[str, Any]], results: list[dict[str, Any]]
                      ) -> tuple[dict[str, Any], list[Remedy]]:
        """The fixes of the answer's last remediate or diagnose call, and what they are for
        (the job, or the failure type), so the user can mark them."""
        for call, env in reversed(list(zip(calls, results))):
            if call.get("status") != "ok" or call.get("action") not in ("remediate", "diagnose"):
                continue
            args, data = dict(call.get("args") or {}), dict((env or {}).get("data") or {})
            ftype = data.get("failure_type") or args.get("failure_type")
            subject = ({"job_id": args["job_id"], **({"cluster": args["cluster"]}
                                                     if args.get("cluster") else {})}
                       if args.get("job_id") else {"failure_type": ftype} if ftype else {})
            if not subject:
                continue
            if call["action"] == "diagnose" or not data.get("fixes"):
                res = run_action({"action": "remediate", **subject}, self.conv_ctx)
                data = res.data if res.status == "ok" else {}
            remedies = remedies_from(data)
            for r in remedies:
                r.failure_type = r.failure_type or ftype
            if remedies:
                return subject, remedies
        return {}, []

    def record_outcome(self, subject: dict[str, Any], remedy: Remedy, success: bool) -> ToolResult:
        """Record that `remedy` was tried for `subject` (a job or a failure type)."""
        payload = {"action": "record_outcome", **subject, "solution": remedy.solution_ref,
                   "success": success, "recorded_by": "jobmedic chat"}
        with self._conv_lock:
            return run_action(payload, self.conv_ctx)

    # -- the side panel ----------------------------------------------------------------------
    def picture(self) -> Picture:
        """Failures in the last 24 h, the top hotspots of the week and the daily trend."""
        with self._panel_lock:
            day = run_action({"action": "stats", "lookback_days": 1,
                              "group_by": ["failure_type"], "top": 5, "trend": False}, self.panel_ctx)
            trend = run_action({"action": "stats", "lookback_days": 14, "group_by": ["day"],
                                "trend": False}, self.panel_ctx)
            week = run_action({"action": "analyze", "lookback_days": 7}, self.panel_ctx)
        return picture_from(day, trend, week)

    def running_risk(self) -> ToolResult:
        """The running jobs at risk (predict with running: true), for the side panel."""
        with self._panel_lock:
            return run_action({"action": "predict", "running": True, "top": 10}, self.panel_ctx)

    def vocabulary(self) -> list[str]:
        """Names to complete in the input: projects, nodes, users, queues, images, failure codes."""
        names: list[str] = []
        with self._panel_lock:
            for kind in VOCAB_KINDS:
                names += self._panel.known(kind, self.panel_ctx.scope, limit=20_000)
        names += list(self.panel_ctx.taxonomy.codes)
        return sorted(set(names), key=lambda n: (len(n), n))

    def close(self) -> None:
        for lock, store in ((self._conv_lock, self._conv), (self._panel_lock, self._panel)):
            with lock:
                store.close()
