"""Assistant state in the store: conversation sessions and a small cache of derived values.

The store is jobmedic's one state, so two `jobmedic ask --session s` processes, the chat UI
and the HTTP server share conversations through it. The cache holds values that are costly
to recompute on every question (the vocabulary of a large store) together with a stamp of
the data they were computed from; a changed stamp makes the entry stale.
"""
from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

from jobmedic.knowledge.db import Queries, scope_clause


class SessionQueries(Queries):
    """Conversation sessions, the derived-value cache and job references."""

    # -- sessions ----------------------------------------------------------------------------
    def load_session(self, name: str) -> dict[str, Any] | None:
        """The stored state of one conversation, or None when it has none yet."""
        row = self.conn.execute("SELECT state FROM sessions WHERE name = ?", (name,)).fetchone()
        if row is None:
            return None
        try:
            state = json.loads(row[0])
        except ValueError:
            return None
        return state if isinstance(state, dict) else None

    def save_session(self, name: str, state: dict[str, Any]) -> None:
        """Replace the state of one conversation."""
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO sessions (name, state, updated_at) VALUES (?, ?, ?) "
                "ON CONFLICT(name) DO UPDATE SET state = excluded.state, "
                "updated_at = excluded.updated_at",
                (name, json.dumps(state, default=str), int(time.time())))

    def list_sessions(self) -> list[dict[str, Any]]:
        cur = self.conn.execute("SELECT name, updated_at FROM sessions ORDER BY updated_at DESC")
        return [{"name": n, "updated_at": u} for n, u in cur]

    # -- derived-value cache -----------------------------------------------------------------
    def data_stamp(self) -> str:
        """A cheap fingerprint of the data: it changes whenever jobs, failure events or
        ingest runs are added (each is an O(1) lookup of the largest row id)."""
        parts = [self.conn.execute(sql).fetchone()[0] or 0 for sql in (
            "SELECT MAX(rowid) FROM jobs", "SELECT MAX(id) FROM failure_events",
            "SELECT MAX(id) FROM ingest_runs")]
        return ":".join(str(p) for p in parts)

    def cache_get(self, key: str, stamp: str) -> Any | None:
        """A cached value if it was stored with this stamp, else None."""
        row = self.conn.execute("SELECT stamp, value FROM agent_cache WHERE key = ?",
                                (key,)).fetchone()
        if row is None or row[0] != stamp:
            return None
        try:
            return json.loads(row[1])
        except ValueError:
            return None

    def cache_put(self, key: str, stamp: str, value: Any) -> None:
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO agent_cache (key, stamp, value) VALUES (?, ?, ?) ON CONFLICT(key) "
                "DO UPDATE SET stamp = excluded.stamp, value = excluded.value",
                (key, stamp, json.dumps(value)))

    # -- job references ----------------------------------------------------------------------
    def find_job_refs(self, tokens: Sequence[str], scope: Sequence[str] | None = None
                      ) -> dict[str, str]:
        """Which of `tokens` name a job in scope: token -> 'job_id' | 'name' | 'pod'.

        Used by the assistant to tell a job or pod name in a question from ordinary words;
        each lookup uses an index (job names) or is bounded to the few candidate tokens.
        """
        out: dict[str, str] = {}
        toks = [t for t in dict.fromkeys(tokens) if t][:20]
        if not toks:
            return out
        marks = ", ".join("?" * len(toks))
        where, params = scope_clause(scope)
        for kind, sql in (
                ("name", f"SELECT DISTINCT name FROM jobs WHERE name IN ({marks}) AND {where}"),
                ("job_id", f"SELECT DISTINCT job_id FROM jobs WHERE job_id IN ({marks}) AND {where}"),
                ("name", (f"SELECT DISTINCT job_name FROM failure_events WHERE job_name IN "
                          f"({marks}) AND {where}")),
                ("pod", (f"SELECT DISTINCT pod_name FROM failure_events WHERE pod_name IN "
                         f"({marks}) AND {where}"))):
            for (val,) in self.conn.execute(sql, [*toks, *params]):
                out.setdefault(str(val), kind)
        return out

    def top_failure_type(self, start: int, end: int, scope: Sequence[str] | None = None,
                         filters: dict[str, str] | None = None) -> str | None:
        """The most frequent failure type of failed jobs ending in [start, end) (scope and
        simple equality filters on project / user / queue / image / cluster applied)."""
        where, params = scope_clause(scope)
        sql = ("SELECT failure_type, COUNT(*) AS n FROM jobs WHERE failure_type IS NOT NULL "
               "AND failure_type != 'cancelled' AND end_time >= ? AND end_time < ? AND " + where)
        args: list[Any] = [start, end, *params]
        for col in ("project", "user", "queue", "image", "cluster"):
            if filters and filters.get(col):
                sql += f" AND {col} = ?"
                args.append(filters[col])
        row = self.conn.execute(sql + " GROUP BY failure_type ORDER BY n DESC, failure_type "
                                "LIMIT 1", args).fetchone()
        return row[0] if row else None
