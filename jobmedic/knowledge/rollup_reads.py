"""Window aggregates read from the rollups (knowledge/rollups.py) with the same results as the
raw queries of stats_queries.py: whole days (or hours) come from the rollup tables, the partial
days at the window's two ends from the jobs themselves, in one statement.

Each method returns None when the rollups cannot answer exactly (a filter they do not key, a
scoped read of the node table, rollups disabled or not writable): the caller then runs the
raw query. `tests/knowledge/test_rollups.py` compares both on random windows and scopes.
"""
from __future__ import annotations

import functools
import sqlite3
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from jobmedic.knowledge.db import Db, Queries, rows_of, scope_clause
from jobmedic.knowledge.rollups import (
    DAY,
    HOUR,
    NUL,
    TABLE_KEYS,
    Rollups,
    hour_cells,
    job_cells,
    node_cells,
    node_fail_cells,
)

#: Filters the job and hour rollups key (column -> the raw column of alias s).
JOB_FILTERS = ("project", "user", "image", "queue", "cluster")
HOUR_FILTERS = ("project", "cluster")
#: rate_by dimensions the job rollup answers (column in rollup_jobs_day).
DIMS = {"project": "project", "user": "user", "image": "image", "queue": "queue",
        "cluster": "cluster", "failure_type": "failure_type", "day": "day"}
_LOST = ("SUM(CASE WHEN failures > 0 THEN gpu_s END) / 3600.0 AS gpu_h, "
         "SUM(CASE WHEN failures > 0 THEN core_s END) / 3600.0 AS core_h")
_USERS = f"COUNT(DISTINCT CASE WHEN failures > 0 THEN NULLIF(user, {NUL}) END)"


def split(start: int, end: int, step: int) -> tuple[tuple[int, int] | None, list[tuple[int, int]]]:
    """[start, end) as whole buckets of `step` seconds (or None) and the partial ends."""
    lo, hi = -(-start // step) * step, (end // step) * step
    if lo >= hi:
        return None, [(start, end)] if start < end else []
    return (lo, hi), [(a, b) for a, b in ((start, lo), (hi, end)) if a < b]


def _active(filters: dict[str, Any] | None) -> dict[str, Any]:
    return {k: v for k, v in (filters or {}).items() if v is not None}


def rollup_reads(db: Db) -> RollupReads:
    """The one RollupReads (and Rollups) of a store's Db."""
    if "_rollup_reads" not in db.__dict__:
        db.__dict__["_rollup_reads"] = RollupReads(db, Rollups(db))
    return db.__dict__["_rollup_reads"]


_F = TypeVar("_F", bound=Callable[..., Any])


def rolled(fn: _F) -> _F:
    """A StatsQueries method answered by the RollupReads method of the same name when that
    can answer exactly (not None), else by the raw query it decorates."""
    @functools.wraps(fn)
    def method(self: Queries, *args: Any, **kwargs: Any) -> Any:
        out = getattr(rollup_reads(self.db), fn.__name__)(*args, **kwargs)
        return fn(self, *args, **kwargs) if out is None else out
    return method  # type: ignore[return-value]


class RollupReads(Queries):
    """The rollup-backed versions of the window aggregates analyze and stats read most, with
    the signatures of the StatsQueries methods they stand in for."""

    def __init__(self, db: Any, rollups: Rollups) -> None:
        super().__init__(db)
        self.rollups = rollups
        self._edges: dict[tuple[Any, ...], tuple[str, tuple[int, int]]] = {}
        self._own = 0  # row changes made by this object's own temp tables
        self._seq = 0  # temp table names rollup_edge_<n>, n mod 64 (never a live entry's)

    # -- the rows of a window: rollup buckets and raw partial ends -----------------------------
    def _where(self, scope: Sequence[str] | None, filters: dict[str, Any], alias: str
               ) -> tuple[str, list[Any]]:
        where, args = scope_clause(scope, f"{alias}project")
        sql = [where]
        for k, v in filters.items():
            if isinstance(v, list):  # named entities of a breakdown
                sql.append(f"{alias}{k} IN ({', '.join('?' * len(v))})")
                args = [*args, *v]
            else:
                sql.append(f"{alias}{k} = ?")
                args = [*args, v]
        return " AND ".join(sql), list(args)

    def _union(self, table: str, bucket: str, step: int, cells: Any, cols: str, window: Any,
               scope: Sequence[str] | None, filters: dict[str, Any]) -> tuple[str, list[Any]]:
        inner, edges = split(int(window.start), int(window.end), step)
        parts: list[str] = []
        args: list[Any] = []
        if inner:
            w, a = self._where(scope, filters, "")
            parts.append(f"SELECT {cols} FROM {table} WHERE {bucket} >= ? AND {bucket} < ? AND {w}")
            args += [inner[0], inner[1], *a]
        for lo, hi in edges:
            edge = self._edge(table, cells, lo, hi)
            if edge is not None:
                w, a = self._where(scope, filters, "")
                parts.append(f"SELECT {cols} FROM {edge} WHERE {w}")
                args += a
                continue
            w, a = self._where(scope, filters, "s.")
            parts.append(f"SELECT {cols} FROM ({cells} AND s.event_time >= ? AND "
                         f"s.event_time < ? AND {w})")
            args += [lo, hi, *a]
        return " UNION ALL ".join(parts) or f"SELECT {cols} FROM {table} WHERE 0", args

    def _edge(self, table: str, cells: str, lo: int, hi: int) -> str | None:
        """A temp table of `table`'s cells for the jobs in [lo, hi) (a partial day or hour at
        a window's end), built once and read by every query of the same request while the
        store is unchanged; None inside a transaction or where temp tables cannot be made."""
        conn = self.conn
        if self.db._in_tx:
            return None
        stamp = (conn.total_changes - self._own,
                 conn.execute("PRAGMA data_version").fetchone()[0])
        hit = self._edges.get((table, lo, hi))
        if hit is not None and hit[1] == stamp:
            return hit[0]
        name = self._name()
        keys, vals = TABLE_KEYS[table]
        k = ", ".join(keys)
        before = conn.total_changes
        try:
            conn.execute(f"DROP TABLE IF EXISTS {name}")
            conn.execute(f"CREATE TABLE {name} AS SELECT {k}, "
                         f"{', '.join(f'SUM({v}) AS {v}' for v in vals)} FROM ({cells} AND "
                         f"s.event_time >= {int(lo)} AND s.event_time < {int(hi)}) GROUP BY {k}")
        except sqlite3.OperationalError:
            return None
        self._own += conn.total_changes - before
        self._edges[(table, lo, hi)] = (name, stamp)
        return name

    def _name(self) -> str:
        """A temp table name not in use by a live entry (a stale entry's table is replaced)."""
        if len(self._edges) >= 32:
            self._edges.clear()
        self._seq = (self._seq + 1) % 64
        return f"temp.rollup_edge_{self._seq}"

    def node_jobs(self, nodes: Sequence[str], lo: int, hi: int) -> str | None:
        """A temp table of the jobs with an event time in [lo, hi) that ran on any of `nodes`
        (at most 20): one row per job and node, the node as `node` and every jobs column, read
        once through the node index and shared by the named-node queries of one request
        (breakdowns, impact, failure mix, combinations, a node filter) while the store is
        unchanged; a table built for more nodes serves a subset. None when the rollups are
        off (the raw queries, as before), inside a transaction or where temp tables cannot be
        made: the caller reads job_nodes itself. Each node's history is read once per
        request instead of once per query (at 10M: ~50,000 jobs for three nodes)."""
        want = set(nodes)
        if not self.rollups.enabled or not want or len(want) > 20 or self.db._in_tx:
            return None
        conn = self.conn
        stamp = (conn.total_changes - self._own,
                 conn.execute("PRAGMA data_version").fetchone()[0])
        for key, (name, st) in self._edges.items():
            if key[:3] == ("node_jobs", lo, hi) and st == stamp and want <= key[3]:
                return name
        name = self._name()
        marks = ", ".join("?" * len(want))
        before = conn.total_changes
        try:
            conn.execute(f"DROP TABLE IF EXISTS {name}")
            conn.execute(f"CREATE TABLE {name} AS SELECT n.node AS node, j.* FROM job_nodes n "
                         f"JOIN jobs j ON n.cluster = j.cluster AND n.job_id = j.job_id WHERE "
                         f"n.node IN ({marks}) AND j.event_time >= {int(lo)} AND "
                         f"j.event_time < {int(hi)}", sorted(want))
        except sqlite3.OperationalError:
            return None
        self._own += conn.total_changes - before
        self._edges[("node_jobs", lo, hi, frozenset(want))] = (name, stamp)
        return name

    def _jobs(self, window: Any, scope: Sequence[str] | None, filters: dict[str, Any]
              ) -> tuple[str, list[Any]] | None:
        if set(filters) - set(JOB_FILTERS) or int(window.start) < 0 or not self.rollups.usable():
            return None
        cols = ("day, cluster, project, user, image, queue, failure_type, jobs, failures, "
                "gpu_s, core_s, cancelled")
        return self._union("rollup_jobs_day", "day", DAY, job_cells("jobs s", 1), cols,
                           window, scope, filters)

    # -- reads ---------------------------------------------------------------------------------
    def window_totals(self, window: Any, scope: Sequence[str] | None,
                      filters: dict[str, Any] | None = None) -> dict[str, Any] | None:
        """As StatsQueries.window_totals."""
        u = self._jobs(window, scope, _active(filters))
        if u is None:
            return None
        sql = (f"SELECT SUM(jobs) AS jobs, SUM(failures) AS failures, {_LOST}, {_USERS} AS users, "
               f"COUNT(DISTINCT CASE WHEN failures > 0 THEN NULLIF(project, {NUL}) END) AS projects, "
               f"COUNT(DISTINCT CASE WHEN failures > 0 THEN NULLIF(failure_type, {NUL}) END) "
               f"AS types, SUM(cancelled) AS cancelled FROM ({u[0]})")
        out = rows_of(self.conn.execute(sql, u[1]))[0]
        return {k: (v or 0) for k, v in out.items()}

    def window_failures(self, window: Any, scope: Sequence[str] | None,
                        filters: dict[str, Any] | None = None) -> int | None:
        """As StatsQueries.window_failures."""
        u = self._jobs(window, scope, _active(filters))
        if u is None:
            return None
        return int(self.conn.execute(f"SELECT SUM(failures) FROM ({u[0]})", u[1]).fetchone()[0] or 0)

    def _entity_combos(self, window: Any, scope: Sequence[str] | None,
                       filters: dict[str, Any] | None = None) -> list[dict[str, Any]] | None:
        """As StatsQueries._entity_combos."""
        u = self._jobs(window, scope, _active(filters))
        if u is None:
            return None
        keys = ", ".join(f"NULLIF({k}, {NUL}) AS {k}" for k in ("project", "user", "image", "queue"))
        sql = (f"SELECT {keys}, SUM(jobs) AS jobs, SUM(failures) AS failures, {_LOST} FROM ({u[0]}) "
               f"GROUP BY 1, 2, 3, 4 HAVING SUM(jobs) > 0")
        return rows_of(self.conn.execute(sql, u[1]))

    def rate_by(self, dim: str, window: Any, scope: Sequence[str] | None,
                filters: dict[str, Any] | None = None, limit: int | None = None,
                failures_only: bool = False, outcome: bool = True
                ) -> list[dict[str, Any]] | None:
        """As StatsQueries.rate_by for the dimensions the job rollup keys (outcome jobs only)."""
        if dim not in DIMS or failures_only or not outcome:
            return None
        u = self._jobs(window, scope, _active(filters))
        if u is None:
            return None
        key = DIMS[dim] if dim in ("day", "cluster") else f"NULLIF({DIMS[dim]}, {NUL})"
        order = "key" if dim == "day" else "failures DESC, jobs DESC, key"
        sql = (f"SELECT {key} AS key, SUM(jobs) AS jobs, SUM(failures) AS failures, {_LOST}, "
               f"{_USERS} AS users FROM ({u[0]}) GROUP BY key HAVING SUM(jobs) > 0 ORDER BY {order}")
        if limit:
            sql += f" LIMIT {int(limit)}"
        return rows_of(self.conn.execute(sql, u[1]))

    def breakdown(self, dim: str, values: Sequence[str], by: str, window: Any,
                  scope: Sequence[str] | None, filters: dict[str, Any] | None = None
                  ) -> list[dict[str, Any]] | None:
        """As StatsQueries.breakdown, for entities and splits the job rollup keys."""
        filters = _active(filters)
        if (dim not in JOB_FILTERS[:4] or by not in DIMS or by == "day" or not values
                or dim in filters):
            return None
        u = self._jobs(window, scope, {**filters, dim: list(values)})
        if u is None:
            return None
        key = by if by == "cluster" else f"NULLIF({by}, {NUL})"
        sql = (f"SELECT NULLIF({dim}, {NUL}) AS entity, {key} AS key, SUM(jobs) AS jobs, "
               f"SUM(failures) AS failures, SUM(failures) * 1.0 AS wfailures FROM ({u[0]}) "
               f"GROUP BY entity, key HAVING SUM(jobs) > 0")
        return rows_of(self.conn.execute(sql, u[1]))

    def binned(self, window: Any, scope: Sequence[str] | None,
               filters: dict[str, Any] | None = None, step: int = 3600, max_bins: int = 400
               ) -> list[dict[str, Any]] | None:
        """As StatsQueries.binned for hour and day bins."""
        filters = _active(filters)
        if step == DAY:
            u = self._jobs(window, scope, filters)
            bucket = "day"
        elif step == HOUR:
            if (set(filters) - set(HOUR_FILTERS) or int(window.start) < 0
                    or not self.rollups.usable()):
                return None
            u = self._union("rollup_hours", "hour", HOUR, hour_cells("jobs s", 1),
                            "hour, cluster, project, jobs, failures, gpu_s, core_s",
                            window, scope, filters)
            bucket = "hour"
        else:
            return None
        if u is None:
            return None
        sql = (f"SELECT {bucket} AS key, SUM(jobs) AS jobs, SUM(failures) AS failures, {_LOST} "
               f"FROM ({u[0]}) GROUP BY key HAVING SUM(jobs) > 0 ORDER BY key")
        return rows_of(self.conn.execute(sql, u[1]))

    def node_rates(self, window: Any, scope: Sequence[str] | None,
                   filters: dict[str, Any] | None = None, limit: int | None = None,
                   lean: bool = False) -> list[dict[str, Any]] | None:
        """As StatsQueries.node_rates: unscoped, at most a cluster filter."""
        filters = _active(filters)
        if (scope is not None or set(filters) - {"cluster"} or int(window.start) < 0
                or not self.rollups.usable()):
            return None
        u = self._union("rollup_nodes_day", "day", DAY, node_cells("jobs s", "job_nodes", 1),
                        "day, cluster, node, jobs, failures, wfailures", window, None, filters)
        if lean:
            sql = (f"SELECT node AS key, SUM(jobs) AS jobs, SUM(failures) AS failures, 0.0 AS gpu_h, "
                   f"0.0 AS core_h, 0 AS users, ROUND(SUM(wfailures), 9) AS wfailures FROM ({u[0]}) "
                   f"GROUP BY node HAVING SUM(jobs) > 0 ORDER BY failures DESC, key")
            args = u[1]
        else:  # users and hours lost from the failed jobs' cells
            f = self._union("rollup_node_fails", "day", DAY,
                            node_fail_cells("jobs s", "job_nodes", 1),
                            "day, cluster, node, user, failures, gpu_s, core_s", window, None,
                            filters)
            sql = (f"WITH n AS (SELECT node, SUM(jobs) AS jobs, SUM(failures) AS failures, "
                   f"ROUND(SUM(wfailures), 9) AS wfailures FROM ({u[0]}) GROUP BY node HAVING SUM(jobs) > 0), "
                   f"f AS (SELECT node, SUM(gpu_s) / 3600.0 AS gpu_h, SUM(core_s) / 3600.0 AS core_h, "
                   f"COUNT(DISTINCT NULLIF(user, {NUL})) AS users FROM ({f[0]}) GROUP BY node) "
                   f"SELECT n.node AS key, n.jobs AS jobs, n.failures AS failures, f.gpu_h AS gpu_h, "
                   f"f.core_h AS core_h, COALESCE(f.users, 0) AS users, n.wfailures AS wfailures "
                   f"FROM n LEFT JOIN f ON f.node = n.node ORDER BY failures DESC, key")
            args = [*u[1], *f[1]]
        if limit:
            sql += f" LIMIT {int(limit)}"
        return rows_of(self.conn.execute(sql, args))
