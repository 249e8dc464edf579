"""The knowledge graph persisted in the store: per-project edge counts in SQLite tables, kept up
to date incrementally and queried in place, so a fresh process answers in milliseconds instead
of re-reading every failure event.

Tables (this module's own; created on the first build, never by migrations, so dropping them
only costs one rebuild):

- ``graph_edges(u, v, rel, project, n)``: failure events counted per (u, v, project), with the
  entities as text (``node:gpu-03``, ``type:oom``, ``template:12``; see graph.RELATIONS); a row
  with u = v = ``type:X`` (rel ``self``) counts the failures of type X.
- ``graph_state(key, value)``: ``event_id`` (the watermark: events up to this id are counted),
  ``format`` (this module's layout version), ``version`` (bumped on every change, for caches)
  and ``stale`` (1 after a deletion: rebuild from scratch).
- ``graph_pending``: old (-1) and new (+1) entity columns of events changed after they were
  counted, written by triggers on ``failure_events`` (re-derived events, events linked to
  their job's project); the next refresh applies them, so an update costs one small row.

fixed_by edges (type -> solution) are read from the small outcome tables at question time.
The answers are the in-memory graph's (graph.KnowledgeGraph); a test compares them.
"""
from __future__ import annotations

import heapq
import sqlite3
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jobmedic.knowledge.store import Store

Scope = Sequence[str] | None
FORMAT = 1
#: relation, (kind, column) of the source, (kind, column) of the target, over failure events
#: (both graphs: this one and graph.KnowledgeGraph).
RELATIONS = (
    ("failed_on", ("type", "failure_type"), ("node", "node_name")),
    ("ran_with", ("type", "failure_type"), ("image", "container_image")),
    ("instance_of", ("template", "template_id"), ("type", "failure_type")),
    ("failed_on", ("template", "template_id"), ("node", "node_name")),
    ("failed_on", ("image", "container_image"), ("node", "node_name")),
    ("had", ("project", "project"), ("type", "failure_type")),
    ("had", ("user", "user"), ("type", "failure_type")),
)
_ECOLS = ("failure_type", "node_name", "container_image", "template_id", "project", "user")
_WATCHED = ", ".join(_ECOLS)
_CHANGED = " OR ".join(f"old.{c} IS NOT new.{c}" for c in _ECOLS)
_WM = "(SELECT value FROM graph_state WHERE key = 'event_id')"
DDL = (
    ("CREATE TABLE IF NOT EXISTS graph_edges (u TEXT NOT NULL, v TEXT NOT NULL, rel TEXT NOT NULL, "
    "project TEXT NOT NULL, n INTEGER NOT NULL, PRIMARY KEY (u, v, project)) WITHOUT ROWID"),
    "CREATE INDEX IF NOT EXISTS graph_edges_in ON graph_edges(v, u, project, n)",
    "CREATE TABLE IF NOT EXISTS graph_state (key TEXT PRIMARY KEY, value INTEGER NOT NULL)",
    f"CREATE TABLE IF NOT EXISTS graph_pending ({', '.join(_ECOLS)}, w INTEGER NOT NULL)",
    (f"CREATE TRIGGER IF NOT EXISTS graph_events_update AFTER UPDATE OF {_WATCHED} ON failure_events "
    f"WHEN old.id <= {_WM} AND ({_CHANGED}) BEGIN "
    f"INSERT INTO graph_pending VALUES ({', '.join('old.' + c for c in _ECOLS)}, -1); "
    f"INSERT INTO graph_pending VALUES ({', '.join('new.' + c for c in _ECOLS)}, 1); END"),
    (f"CREATE TRIGGER IF NOT EXISTS graph_events_delete AFTER DELETE ON failure_events "
    f"WHEN old.id <= {_WM} BEGIN "
    "UPDATE graph_state SET value = 1 WHERE key = 'stale'; END"),
)
DROP = ("DROP TRIGGER IF EXISTS graph_events_update", "DROP TRIGGER IF EXISTS graph_events_delete",
        "DROP TABLE IF EXISTS graph_pending", "DROP TABLE IF EXISTS graph_edges",
        "DROP TABLE IF EXISTS graph_state")


def _text(kind: str, col: str) -> str:
    """The entity key of a column as SQL text (template ids as integers: 'template:7')."""
    if col == "template_id":
        return f"'{kind}:' || CAST(CAST({col} AS INTEGER) AS TEXT)"
    return f"'{kind}:' || CAST({col} AS TEXT)"


def _aggregate_sql() -> list[str]:
    """INSERT .. SELECT statements adding the temp delta's counts onto graph_edges."""
    out = []
    upsert = " ON CONFLICT(u, v, project) DO UPDATE SET n = n + excluded.n"
    for rel, (ka, ca), (kb, cb) in RELATIONS:
        keys = ", ".join(dict.fromkeys([ca, cb, "project"]))
        out.append(
            f"INSERT INTO graph_edges (u, v, rel, project, n) SELECT {_text(ka, ca)}, "
            f"{_text(kb, cb)}, '{rel}', project, SUM(w) FROM temp.graph_delta WHERE {ca} IS NOT NULL "
            f"AND {cb} IS NOT NULL AND {ca} != '' AND {cb} != '' GROUP BY {keys} "
            f"HAVING SUM(w) != 0{upsert}")
    out.append(
        "INSERT INTO graph_edges (u, v, rel, project, n) SELECT 'type:' || failure_type, "
        "'type:' || failure_type, 'self', project, SUM(w) FROM temp.graph_delta "
        f"WHERE failure_type IS NOT NULL GROUP BY failure_type, project HAVING SUM(w) != 0{upsert}")
    return out


_AGGREGATE = _aggregate_sql()
_CHECK = ("SELECT (SELECT COALESCE(MAX(id), 0) FROM failure_events), "
          "(SELECT value FROM graph_state WHERE key = 'event_id'), "
          "(SELECT value FROM graph_state WHERE key = 'format'), "
          "(SELECT value FROM graph_state WHERE key = 'stale'), "
          "EXISTS (SELECT 1 FROM graph_pending), "
          "(SELECT value FROM graph_state WHERE key = 'version')")


class GraphQuestions:
    """The questions both graphs answer (this persisted one and graph.KnowledgeGraph, built in
    memory), over what each provides: `_edges(k, scope)` -> (u, v, rel, count, successes) at k
    within the scope, and `_failures(k, scope)`, the failures of the type node k in the scope.
    `where()` answers are cached in `_where` until the graph changes (each graph clears it)."""

    _where: dict[tuple, dict[str, Any]]

    def _edges(self, k: str, scope: Scope) -> list[tuple[str, str, str, int, int]]:
        raise NotImplementedError

    def _failures(self, k: str, scope: Scope) -> int:
        raise NotImplementedError

    @staticmethod
    def _in_scope(node: str, scope: Scope) -> bool:
        kind, _, name = node.partition(":")
        return scope is None or kind != "project" or name in set(scope)

    def related(self, kind: str, name: Any, scope: Scope = None, limit: int = 10
                ) -> list[dict[str, Any]]:
        """Entities linked to one entity (both directions), by count visible in the scope."""
        k = f"{kind}:{name}"
        if not self._in_scope(k, scope):
            return []
        out = []
        for u, v, rel, n, ok in self._edges(k, scope):
            other = v if u == k else u
            if not n or not self._in_scope(other, scope):
                continue
            kind_o, _, name_o = other.partition(":")
            out.append({"kind": kind_o, "name": name_o, "relation": rel,
                        "direction": "out" if u == k else "in", "count": n,
                        **({"successes": ok} if rel == "fixed_by" else {})})
        out.sort(key=lambda r: (-r["count"], r["kind"], r["name"]))
        return out[:limit]

    def where(self, failure_type: str, scope: Scope = None, limit: int = 5) -> dict[str, Any]:
        """Where failures of a type happen, in scope: total and the top nodes, images, projects
        and templates (cached until the graph changes)."""
        ck = (failure_type, None if scope is None else tuple(sorted(scope)), limit)
        hit = self._where.get(ck)
        if hit is not None:
            return hit
        k = f"type:{failure_type}"
        out: dict[str, Any] = {"failures": self._failures(k, scope)}
        found: dict[str, list[tuple[int, str]]] = {"node": [], "image": [], "project": [], "template": []}
        for u, v, _rel, n, _ok in self._edges(k, scope):
            other = v if u == k else u
            kind, _, name = other.partition(":")
            if n and kind in found and self._in_scope(other, scope):
                found[kind].append((n, name))
        for kind, items in found.items():
            top = heapq.nsmallest(limit, items, key=lambda x: (-x[0], x[1]))
            out[kind + "s"] = [{"name": name, "count": n} for n, name in top]
        self._where[ck] = out
        return out


class PersistedGraph(GraphQuestions):
    """Questions about failure entities answered from the store's graph tables."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.builds = 0  # refreshes that aggregated events in this process (tests)
        self.version: int | None = None
        self._where: dict[tuple, dict[str, Any]] = {}

    # -- building ----------------------------------------------------------------------------
    def _state(self) -> tuple | None:
        conn = self.store.conn
        if conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'graph_state'"
                        ).fetchone() is None:
            return None
        return conn.execute(_CHECK).fetchone()

    @staticmethod
    def _current(st: tuple | None) -> bool:
        if st is None:
            return False
        hi, wm, fmt, stale, pending, _ver = st
        return fmt == FORMAT and not stale and not pending and wm is not None and hi <= wm

    def refresh(self) -> PersistedGraph:
        """Count the events added (and apply those changed) since the last refresh, in one
        write transaction; a no-op read of five values when the tables are current. Raises
        sqlite3.OperationalError on a read-only store."""
        st = self._state()
        if not self._current(st):
            with self.store.transaction() as conn:
                st = self._state()  # another process may have refreshed meanwhile
                if not self._current(st):
                    self._apply(conn, st)
                    self.builds += 1
                    st = self._state()
        assert st is not None
        if st[5] != self.version:
            self.version = st[5]
            self._where.clear()
        return self

    def _apply(self, conn: sqlite3.Connection, st: tuple | None) -> None:
        version = (st[5] or 0) if st is not None else 0  # never goes back (answer caches)
        if st is not None and (st[2] != FORMAT or st[3] or st[0] < (st[1] or 0)):
            for sql in DROP:  # another layout, a deletion, or ids gone below the watermark
                conn.execute(sql)
            st = None
        for sql in DDL:
            conn.execute(sql)
        if st is None:
            conn.executemany("INSERT OR REPLACE INTO graph_state VALUES (?, ?)",
                             [("format", FORMAT), ("event_id", 0), ("stale", 0), ("version", version)])
        wm = (st[1] or 0) if st is not None else 0
        hi = conn.execute("SELECT COALESCE(MAX(id), 0) FROM failure_events").fetchone()[0]
        conn.execute("DROP TABLE IF EXISTS temp.graph_delta")
        conn.execute(
            f"CREATE TEMP TABLE graph_delta AS SELECT {', '.join(_ECOLS[:4])}, "
            "COALESCE(project, '') AS project, user, 1 AS w FROM failure_events "
            "WHERE id > ? AND id <= ? UNION ALL SELECT "
            f"{', '.join(_ECOLS[:4])}, COALESCE(project, ''), user, w FROM graph_pending",
            (wm, hi))
        for sql in _AGGREGATE:
            conn.execute(sql)
        if st is not None and st[4]:  # changed events may have emptied rows
            conn.execute("DELETE FROM graph_edges WHERE n <= 0")
        conn.execute("DELETE FROM graph_pending")
        conn.execute("DROP TABLE temp.graph_delta")
        conn.execute("UPDATE graph_state SET value = ? WHERE key = 'event_id'", (hi,))
        conn.execute("UPDATE graph_state SET value = value + 1 WHERE key = 'version'")

    # -- reading -----------------------------------------------------------------------------
    def _edges(self, k: str, scope: Scope) -> list[tuple[str, str, str, int, int]]:
        """(u, v, rel, count, successes) of the edges at k, counted within the scope."""
        conn = self.store.conn
        args: list[Any] = []
        filt = ""
        if scope is not None:
            projects = sorted(set(scope))
            filt = f" AND project IN ({', '.join('?' * len(projects))})"
            args = projects
        rows = conn.execute(
            f"SELECT u, v, rel, SUM(n) FROM graph_edges WHERE u = ? AND v != ?{filt} GROUP BY v "
            f"UNION ALL SELECT u, v, rel, SUM(n) FROM graph_edges WHERE v = ? AND u != ?{filt} "
            "GROUP BY u", [k, k, *args, k, k, *args]).fetchall()
        out = [(u, v, rel, int(n), 0) for u, v, rel, n in rows]
        kind, _, name = k.partition(":")
        if kind in ("type", "solution"):
            col = "s.failure_type" if kind == "type" else "s.solution"
            pf = "" if scope is None else f" AND COALESCE(o.project, '') IN ({', '.join('?' * len(args))})"
            for t, s, n, ok in conn.execute(
                    "SELECT s.failure_type, s.solution, COUNT(*), COALESCE(SUM(o.success), 0) FROM "
                    "solution_outcomes o JOIN failure_solutions s ON s.id = o.solution_id "
                    f"WHERE {col} = ?{pf} GROUP BY 1, 2", [name, *args]):
                out.append((f"type:{t}", f"solution:{s}", "fixed_by", int(n), int(ok)))
        return out

    def _failures(self, k: str, scope: Scope) -> int:
        sql = "SELECT COALESCE(SUM(n), 0) FROM graph_edges WHERE u = ? AND v = ?"
        args: list[Any] = [k, k]
        if scope is not None:
            projects = sorted(set(scope))
            sql += f" AND project IN ({', '.join('?' * len(projects))})"
            args += projects
        return int(self.store.conn.execute(sql, args).fetchone()[0])

    def count(self, kind_a: str, a: Any, kind_b: str, b: Any, scope: Scope = None) -> int:
        u, v = f"{kind_a}:{a}", f"{kind_b}:{b}"
        return sum(n for eu, ev, _r, n, _ok in self._edges(u, scope) if eu == u and ev == v)
