"""Conversation state per session name, kept in the store so that the chat UI, the HTTP
server and successive `jobmedic ask --session NAME` processes share it.

A session is the list of its last turns: the question, and for each action it ran the
arguments, the status and the few facts a follow-up needs (the job it was about, the top
failure type it found). Sessions are keyed by name *and* scope, so callers with different
scopes never see each other's conversation.
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jobmedic.knowledge.store import Store

MAX_TURNS = 10
_COUNT_KEYS = ("count", "failures", "n_failures", "n", "jobs", "events", "failed", "total")


def session_key(name: str, scope: Sequence[str] | None) -> str:
    tag = "*" if scope is None else ",".join(sorted(scope))
    return f"{name}|{hashlib.sha256(tag.encode()).hexdigest()[:12]}"


def load_turns(store: Store, name: str, scope: Sequence[str] | None) -> list[dict[str, Any]]:
    try:
        state = store.load_session(session_key(name, scope)) or {}
    except Exception:  # noqa: BLE001 - a store without the sessions table: no history
        return []
    turns = state.get("turns", [])
    return [t for t in turns if isinstance(t, dict)][-MAX_TURNS:]


def save_turns(store: Store, name: str, scope: Sequence[str] | None,
               turns: list[dict[str, Any]]) -> bool:
    try:
        store.save_session(session_key(name, scope), {"turns": turns[-MAX_TURNS:]})
        return True
    except Exception:  # noqa: BLE001 - read-only store: the conversation is just not kept
        return False


def turn_record(question: str, calls: list[dict[str, Any]], results: list[dict[str, Any]],
                codes: Iterable[str]) -> dict[str, Any]:
    """What the next question may refer to: the calls and the facts of their results."""
    codes = set(codes)
    out = []
    for call, env in zip(calls, results):
        out.append({"action": call["action"], "args": call["args"], "status": call["status"],
                    "facts": facts_of(env, codes)})
    return {"question": question[:500], "calls": out}


def facts_of(envelope: dict[str, Any], codes: set[str]) -> dict[str, Any]:
    """The job id and the most frequent failure type an envelope's data mentions."""
    from jobmedic.knowledge.taxonomy import NOT_FAILURES

    codes = set(codes) - set(NOT_FAILURES)
    data = envelope.get("data") or {}
    facts: dict[str, Any] = {}
    job = data.get("job_id") or (data.get("job") or {}).get("job_id") if isinstance(data, dict) else None
    if job:
        facts["job_id"] = str(job)
    best: tuple[float, str] | None = None
    for code, count in _failure_counts(data, codes, 0, ""):
        if best is None or count > best[0]:
            best = (count, code)
    if best:
        facts["failure_type"] = best[1]
    return facts


def _failure_counts(node: Any, codes: set[str], depth: int, parent: str
                    ) -> Iterable[tuple[str, float]]:
    """(code, count) pairs found anywhere in the data: rows with a failure_type and a count,
    rows of a table grouped by failure_type, tables keyed by code, subjects like
    'failure_type:oom', a 'top_failure_type'."""
    if depth > 6:
        return
    if isinstance(node, dict):
        if node.get("by") == "failure_type" and isinstance(node.get("rows"), list):
            for row in node["rows"]:
                if isinstance(row, dict) and row.get("key") in codes:
                    num = next((row[k] for k in _COUNT_KEYS if isinstance(row.get(k), (int, float))), 0)
                    yield row["key"], float(num)
        for key in ("top_failure_type", "failure_type"):
            val = node.get(key)
            if isinstance(val, str) and val in codes:
                num = next((node[k] for k in _COUNT_KEYS if isinstance(node.get(k), (int, float))), None)
                yield val, float(num if num is not None else (1e9 if key == "top_failure_type" else 0.5))
        subj = node.get("subject")
        if isinstance(subj, str) and subj.startswith("failure_type:") and subj[13:] in codes:
            num = next((v for k, v in (node.get("evidence") or {}).items()
                        if k in _COUNT_KEYS and isinstance(v, (int, float))), 0.5)
            yield subj[13:], float(num)
        typed = "type" in parent
        for k, v in node.items():
            if typed and k in codes and isinstance(v, (int, float)) and not isinstance(v, bool):
                yield k, float(v)
            elif isinstance(v, (dict, list)):
                yield from _failure_counts(v, codes, depth + 1, str(k))
    elif isinstance(node, list):
        for item in node[:200]:
            yield from _failure_counts(item, codes, depth + 1, parent)
