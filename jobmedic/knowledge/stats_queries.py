"""Statistics queries for the analyzers and the stats action: jobs exposed and failures in a
time window, grouped by a whitelisted dimension, always inside the caller's scope.

Window membership: a job belongs to a window when its `event_time` falls in [start, end) and
its outcome is known (completed or one of the failure states). `event_time` (migration 10) is
the job's end, or for a failure that never terminated (ImagePullBackOff, CrashLoopBackOff, an
evicted or unschedulable pod, a Run:AI record without an end) the time of its failure event:
the same rule for numerator and denominator. Cancelled jobs are censored (their
outcome says nothing about whether they would have failed), so they are counted apart and kept
out of both numerator and denominator; running and pending jobs have no outcome yet. Every
aggregate is computed in SQL (the covering index of migration 2 serves the window scans).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from jobmedic.core.timeutil import Window
from jobmedic.knowledge.db import Queries, rows_of, scope_clause
from jobmedic.knowledge.orphan_queries import OrphanEventQueries
from jobmedic.knowledge.rollup_reads import rolled, rollup_reads
from jobmedic.knowledge.window_from import (
    FILTERS,
    NODE_WEIGHT,
    OUTCOME_STATES_SQL,
    TIMED,
    driver,
    job_from,
    keyed_from,
    node_from,
    timed_window,
)

FAILED_SQL = "('failed', 'timeout', 'oom', 'node_fail', 'preempted')"
#: Besides the failure states, an unschedulable pod (pending, failure type scheduling: it
#: failed to start and has no end) is a failure. Written as one state list plus a check, so
#: the state-led window index still serves the scan (pending rows without a failure time have
#: no event_time and fall outside every window range).
_NOT_WAITING = "(j.state != 'pending' OR j.failure_type = 'scheduling')"
#: Grouping dimension -> SQL expression over the jobs alias `j` (whitelisted: never free SQL).
DIMENSIONS = {
    "project": "j.project", "user": "j.user", "image": "j.image", "queue": "j.queue",
    "cluster": "j.cluster", "failure_type": "j.failure_type", "blame": "j.blame",
    "state": "j.state", "name": "j.name",
    "day": "(j.event_time / 86400) * 86400", "hour": "(j.event_time / 3600) % 24",
    "dow": "((j.event_time / 86400) + 3) % 7",  # 0 = Monday (1970-01-01 was a Thursday)
}
_F = (f"(j.state IN ('failed', 'timeout', 'oom', 'node_fail', 'preempted', 'pending') "
      f"AND {_NOT_WAITING})")
#: One row of aggregates shared by every grouped query: jobs, failures, impact.
AGG = (f"COUNT(*) AS jobs, SUM({_F}) AS failures, "
       f"SUM(CASE WHEN {_F} THEN COALESCE(j.elapsed_s, 0) * COALESCE(j.req_gpus, 0) END) / 3600.0 AS gpu_h, "
       f"SUM(CASE WHEN {_F} THEN COALESCE(j.elapsed_s, 0) * COALESCE(j.req_cpus, 1) END) / 3600.0 AS core_h, "
       f"COUNT(DISTINCT CASE WHEN {_F} THEN j.user END) AS users")
#: The same without the per-group distinct count (for wide groupings: users come later).
AGG_LEAN = (f"COUNT(*) AS jobs, SUM({_F}) AS failures, "
            f"SUM(CASE WHEN {_F} THEN COALESCE(j.elapsed_s, 0) * COALESCE(j.req_gpus, 0) END) / 3600.0 AS gpu_h, "
            f"SUM(CASE WHEN {_F} THEN COALESCE(j.elapsed_s, 0) * COALESCE(j.req_cpus, 1) END) / 3600.0 AS core_h")
#: Among the rows of an outcome scan (`window_where(outcome=True)`: completed, a failure state,
#: or an unschedulable pending pod) a failure is simply not completed: the same rows as `_F`
#: for a fraction of its per-row cost (it is evaluated three times a row, and the longer test
#: of failure-time counting cost stats about 20 % more CPU; issue 12). Where the query keeps
#: the failures only, `AND {_F}` stays: its state list lets the planner skip the completed rows.
_F_OUT = "(j.state != 'completed')"
AGG_OUT = AGG.replace(_F, _F_OUT)
AGG_LEAN_OUT = AGG_LEAN.replace(_F, _F_OUT)


class StatsQueries(OrphanEventQueries, Queries):
    """Window aggregates: totals, rates by dimension and by node, breakdowns, orphan events.
    Those marked @rolled read the per-day rollups when exact (knowledge/rollups.py)."""


    # -- the job selection -----------------------------------------------------------------
    def _node_table(self, nodes: Sequence[str], window: Any) -> str | None:
        """The shared temp table of the window's jobs on `nodes` (RollupReads.node_jobs)."""
        return rollup_reads(self.db).node_jobs(nodes, int(window.start), int(window.end))

    def _driver(self, lo: int, hi: int, keyed: list[tuple[str, Sequence[Any]]], outcome: bool
                ) -> int | None:
        """window_from.driver, remembered for the request's windows (a stale answer only
        picks the slower of two plans for the same rows)."""
        key = (lo, hi, outcome, tuple((c, tuple(v)) for c, v in keyed))
        cache = self.__dict__.setdefault("_driver_cache", {})
        if key not in cache:
            if len(cache) >= 512:
                cache.clear()
            cache[key] = driver(self.conn, lo, hi, keyed, outcome)
        return cache[key]

    def _from(self, filters: dict[str, Any] | None, window: Any) -> str:
        """job_from, or with a node filter the request's temp table of the node's window jobs
        (a row per job on fn.node): its history read once a request, not once an hourly bin."""
        node = (filters or {}).get("node")
        table = self._node_table([node], window) if node is not None else None
        if table is None:
            return job_from(filters)
        return f"(SELECT rowid AS r, node FROM {table}) fn JOIN {table} j ON j.rowid = fn.r"

    def _keyed(self, dim: str, values: Sequence[str], window: Any, scope: Sequence[str] | None,
               filters: dict[str, Any] | None) -> tuple[str, str, str, list[Any]]:
        """FROM clause, entity expression, WHERE clause (the entities named in it) and its
        arguments of a query restricted to the named `values` of `dim`."""
        if dim == "node":
            frm, ent = node_from(filters, values, self._node_table(values, window))
            where, args = self.window_where(window, scope, filters)
            return frm, ent, f"{where} AND {ent} IN ({', '.join('?' * len(values))})", [
                *args, *values]
        where, args = self.window_where(window, scope, filters, within=(dim, values))
        return keyed_from(filters), DIMENSIONS[dim], where, args

    def window_where(self, window: Any, scope: Sequence[str] | None,
                     filters: dict[str, Any] | None = None, outcome: bool = True,
                     within: tuple[str, Sequence[Any]] | None = None) -> tuple[str, list[Any]]:
        """WHERE clause (alias j) for the jobs of a window, scope and filters (and `within`:
        (dimension, values), the named entities of a keyed query). With an entity filter
        the window is two ranges of that entity's (entity, end_time) index (timed_window),
        the named entities in each arm too; with a node filter the node's rows drive."""
        filters = {k: v for k, v in (filters or {}).items() if v is not None}
        where, params = scope_clause(scope, "j.project")
        lo, hi = int(window.start), int(window.end)
        keyed = [(TIMED[k], [v]) for k, v in filters.items() if k in TIMED]
        if keyed and "node" not in filters:
            if within is not None and within[0] in TIMED:
                keyed.append((TIMED[within[0]], within[1]))
                within = None
            if scope:  # the tenant's projects in each arm too (never its whole history)
                keyed.append(("j.project", list(scope)))
                where, params = "1", []
            first, args = timed_window(lo, hi, keyed, self._driver(lo, hi, keyed, outcome))
            filters = {k: v for k, v in filters.items() if k not in TIMED}
        else:
            first, args = "j.event_time >= ? AND j.event_time < ?", [lo, hi]
        sql = [first, where]
        args += params
        if outcome:
            sql.append(f"j.state IN {OUTCOME_STATES_SQL} AND {_NOT_WAITING}")
        for key, value in filters.items():
            if key in FILTERS:
                sql.append(f"{FILTERS[key]} = ?")
                args.append(value)
            elif key == "node":  # joined by job_from(): drive the query from the node's jobs
                sql.append("fn.node = ?")
                args.append(value)
            elif key == "failure_type":
                sql.append(f"(j.failure_type = ? OR NOT {_F})")
                args.append(value)
            elif key in DIMENSIONS:  # an entity of a breakdown (hour, day, ...)
                sql.append(f"{DIMENSIONS[key]} = ?")
                args.append(value)
            else:
                raise ValueError(f"unknown filter {key!r}")
        if within is not None:
            sql.append(f"{DIMENSIONS[within[0]]} IN ({', '.join('?' * len(within[1]))})")
            args += list(within[1])
        return " AND ".join(sql), args

    # -- totals ----------------------------------------------------------------------------
    @rolled
    def window_totals(self, window: Any, scope: Sequence[str] | None,
                      filters: dict[str, Any] | None = None) -> dict[str, Any]:
        """Jobs with an outcome, failures, impact, and the censored (cancelled) count.

        Sums over the window need no sort; the distinct counts (users, projects, types
        affected) run over the failures only."""
        where, args = self.window_where(window, scope, filters)
        frm = job_from(filters)
        out = rows_of(self.conn.execute(f"SELECT {AGG_LEAN_OUT} FROM {frm} WHERE {where}", args))[0]
        out.update(rows_of(self.conn.execute(
            f"SELECT COUNT(DISTINCT j.user) AS users, COUNT(DISTINCT j.project) AS projects, "
            f"COUNT(DISTINCT j.failure_type) AS types FROM {frm} WHERE {where} AND {_F}", args))[0])
        where, args = self.window_where(window, scope, filters, outcome=False)
        out["cancelled"] = self.conn.execute(
            f"SELECT COUNT(*) FROM {frm} WHERE {where} AND j.state = 'cancelled'", args).fetchone()[0]
        return {k: (v or 0) for k, v in out.items()}

    def open_work(self, window: Any, scope: Sequence[str] | None,
                  filters: dict[str, Any] | None = None) -> dict[str, int]:
        """Work not finished: jobs pending (array tasks of a pending range each count) or
        running, submitted before the window's end, with no outcome (no event_time) yet."""
        where, args = scope_clause(scope, "j.project")
        sql = ["j.state IN ('pending', 'running')", "j.event_time IS NULL",
               "(j.submit_time IS NULL OR j.submit_time < ?)", where]
        args = [int(window.end), *args]
        for key, value in (filters or {}).items():
            if value is not None and key in FILTERS:
                sql.append(f"{FILTERS[key]} = ?")
                args.append(value)
        frm = "jobs j"
        if (filters or {}).get("node") is not None:
            frm = keyed_from(filters)
            sql.append("fn.node = ?")
            args.append(filters["node"])
        out = {"pending": 0, "running": 0}
        out.update({str(k): int(n) for k, n in self.conn.execute(
            f"SELECT j.state, COUNT(*) FROM {frm} WHERE {' AND '.join(sql)} GROUP BY j.state",
            args)})
        return out

    @rolled
    def window_failures(self, window: Any, scope: Sequence[str] | None,
                        filters: dict[str, Any] | None = None) -> int:
        """The number of failed jobs in the window (failure rows only: cheap)."""
        where, args = self.window_where(window, scope, filters)
        return int(self.conn.execute(
            f"SELECT COUNT(*) FROM {job_from(filters)} WHERE {where} AND {_F}", args).fetchone()[0])

    def entity_combos(self, window: Any, scope: Sequence[str] | None,
                      filters: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Jobs, failures and impact per (project, user, image, queue) combination: one scan
        from which every per-entity rate of those four dimensions is summed in memory (and
        the attribution model's groups too). Memoised while the store is unchanged (the key
        holds this connection's change count and SQLite's data_version for other writers)."""
        key = (int(window.start), int(window.end), tuple(scope) if scope is not None else None,
               tuple(sorted((k, str(v)) for k, v in (filters or {}).items() if v is not None)),
               self.conn.total_changes,
               self.conn.execute("PRAGMA data_version").fetchone()[0])
        cache = self.__dict__.setdefault("_combos_cache", {})
        if key not in cache:
            if len(cache) >= 2:  # the window and one more (the hotspots' first half; issue 12)
                cache.pop(next(iter(cache)))
            cache[key] = self._entity_combos(window, scope, filters)
        return [dict(r) for r in cache[key]]

    @rolled
    def _entity_combos(self, window: Any, scope: Sequence[str] | None,
                       filters: dict[str, Any] | None) -> list[dict[str, Any]]:
        where, args = self.window_where(window, scope, filters)
        sql = (f"SELECT j.project AS project, j.user AS user, j.image AS image, j.queue AS queue, "
               f"{AGG_LEAN_OUT} FROM {job_from(filters)} WHERE {where} GROUP BY 1, 2, 3, 4")
        return rows_of(self.conn.execute(sql, args))

    @rolled
    def binned(self, window: Any, scope: Sequence[str] | None,
               filters: dict[str, Any] | None = None, step: int = 3600,
               max_bins: int = 400) -> list[dict[str, Any]]:
        """Jobs, failures and hours lost per time bin of `step` seconds (bins aligned to UTC
        multiples of step; key = bin start). Up to `max_bins` bins, one range query per bin
        over the state-led covering index (no sort of the window's rows); more, one GROUP BY."""
        where, args = self.window_where(window, scope, filters)
        frm = self._from(filters, window)
        first = (int(window.start) // step) * step
        edges = list(range(first, int(window.end), step))
        if len(edges) > max_bins:
            sql = (f"SELECT (j.event_time / {int(step)}) * {int(step)} AS key, {AGG_LEAN_OUT} FROM {frm} "
                   f"WHERE {where} GROUP BY key ORDER BY key")
            return rows_of(self.conn.execute(sql, args))
        out = []
        for t in edges:  # the bin itself is the range (two ranges would leave one unindexed)
            where, args = self.window_where(
                Window(max(t, int(window.start)), min(t + step, int(window.end))), scope, filters)
            r = rows_of(self.conn.execute(f"SELECT {AGG_LEAN_OUT} FROM {frm} WHERE {where}",
                                          args))[0]
            if r["jobs"]:
                out.append({"key": t, **r})
        return out

    def hourly(self, window: Any, scope: Sequence[str] | None,
               filters: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Per clock hour of the window: hour-of-day, weekday and daily series sum from it."""
        return self.binned(window, scope, filters, 3600, max_bins=24 * 62)

    def failure_detail(self, window: Any, scope: Sequence[str] | None,
                       filters: dict[str, Any] | None = None, limit: int = 200_000
                       ) -> list[dict[str, Any]]:
        """Failures grouped by project, user, image, type, template and job name (failure rows
        only, through the state-led index): the patterns analyzer's one query."""
        where, args = self.window_where(window, scope, filters)
        sql = (f"SELECT j.project AS project, j.user AS user, j.image AS image, "
               f"j.failure_type AS failure_type, j.template_id AS template, j.name AS name, "
               f"COUNT(*) AS failures, MIN(j.event_time) AS first, MAX(j.event_time) AS last, "
               f"SUM(COALESCE(j.elapsed_s, 0) * COALESCE(j.req_gpus, 0)) / 3600.0 AS gpu_h, "
               f"SUM(COALESCE(j.elapsed_s, 0) * COALESCE(j.req_cpus, 1)) / 3600.0 AS core_h "
               f"FROM {job_from(filters)} WHERE {where} AND {_F} GROUP BY 1, 2, 3, 4, 5, 6 "
               f"LIMIT {int(limit)}")
        return rows_of(self.conn.execute(sql, args))

    @rolled
    def rate_by(self, dim: str, window: Any, scope: Sequence[str] | None,
                filters: dict[str, Any] | None = None, limit: int | None = None,
                failures_only: bool = False, outcome: bool = True) -> list[dict[str, Any]]:
        """Jobs, failures and impact per value of a whitelisted dimension (node included);
        `outcome=False` also counts cancelled jobs (for a breakdown by state)."""
        if dim == "node":
            return self.node_rates(window, scope, filters, limit)
        if dim not in DIMENSIONS:
            raise ValueError(f"unknown dimension {dim!r}; accepted: {', '.join(DIMENSIONS)}, node")
        where, args = self.window_where(window, scope, filters, outcome=outcome)
        agg = AGG_OUT if outcome else AGG
        if failures_only:  # the failure states' index ranges only (not the completed rows)
            where += f" AND {_F}"
        order = "failures DESC, jobs DESC" if dim not in ("day", "hour", "dow") else "key"
        frm = self._from(filters, window)
        sql = (f"SELECT {DIMENSIONS[dim]} AS key, {agg} FROM {frm} WHERE {where} "
               f"GROUP BY key ORDER BY {order}")
        if limit:
            sql += f" LIMIT {int(limit)}"
        return rows_of(self.conn.execute(sql, args))

    @rolled
    def node_rates(self, window: Any, scope: Sequence[str] | None,
                   filters: dict[str, Any] | None = None, limit: int | None = None,
                   lean: bool = False) -> list[dict[str, Any]]:
        """Per node: jobs exposed, failures, and failures weighted 1/n for n-node jobs
        (`lean`: without users and hours lost, which `impact_of` adds for the few that matter)."""
        where, args = self.window_where(window, scope, filters)
        frm, _ = node_from(filters)
        agg = (f"COUNT(*) AS jobs, SUM({_F}) AS failures, 0.0 AS gpu_h, 0.0 AS core_h, 0 AS users"
               if lean else AGG)
        sql = (f"SELECT n.node AS key, {agg}, ROUND(SUM(CASE WHEN {_F} THEN {NODE_WEIGHT} ELSE 0 "
               f"END), 9) AS wfailures FROM {frm} WHERE {where} GROUP BY n.node "
               f"ORDER BY failures DESC, key")  # rounded: the same sum in any order (rollups)
        if limit:
            sql += f" LIMIT {int(limit)}"
        return rows_of(self.conn.execute(sql, args))

    def impact_of(self, dim: str, values: Sequence[str], window: Any,
                  scope: Sequence[str] | None, filters: dict[str, Any] | None = None
                  ) -> dict[str, dict[str, Any]]:
        """Failed jobs, users affected and GPU / core hours lost for named entities."""
        if not values or (dim not in DIMENSIONS and dim != "node"):
            return {}
        frm, ent, where, args = self._keyed(dim, values, window, scope, filters)
        sql = (f"SELECT {ent.lstrip('+')} AS entity, {AGG} FROM {frm} WHERE {where} AND {_F} "
               f"GROUP BY entity")
        return {str(r["entity"]): r for r in rows_of(self.conn.execute(sql, args))}

    def name_runs(self, names: Sequence[str], window: Any, scope: Sequence[str] | None,
                  filters: dict[str, Any] | None = None) -> dict[str, int]:
        """Jobs per job name ending in the window, any outcome (cancelled included): the
        denominator of "most runs of this name fail". Unscoped and unfiltered, a covering
        (name, end_time) index answers it without reading the table (a failure without an end
        counts at its failure time: event_time)."""
        if not names:
            return {}
        marks = ", ".join("?" * len(names))
        if scope is None and not any(v is not None for v in (filters or {}).values()):
            # event_time is end_time where there is one: the ended jobs are a range of the
            # index (not each name's whole history), the unended ones are read by (name, NULL)
            lo, hi = int(window.start), int(window.end)
            sql = (f"SELECT name, SUM(c) FROM (SELECT name, COUNT(*) AS c FROM jobs WHERE name IN "
                   f"({marks}) AND end_time >= ? AND end_time < ? GROUP BY name UNION ALL "
                   f"SELECT name, COUNT(*) AS c FROM jobs WHERE name IN ({marks}) AND end_time "
                   f"IS NULL AND event_time >= ? AND event_time < ? GROUP BY name) GROUP BY name")
            args: list[Any] = [*names, lo, hi, *names, lo, hi]
        else:
            where, args = self.window_where(window, scope, filters, outcome=False,
                                            within=("name", names))
            sql = f"SELECT j.name, COUNT(*) FROM {keyed_from(filters)} WHERE {where} GROUP BY j.name"
        return {str(a): int(b) for a, b in self.conn.execute(sql, args)}

    @rolled
    def breakdown(self, dim: str, values: Sequence[str], by: str, window: Any,
                  scope: Sequence[str] | None, filters: dict[str, Any] | None = None
                  ) -> list[dict[str, Any]]:
        """For each of `values` of `dim`: jobs and failures split by `by` (user, name, ...)."""
        if by not in DIMENSIONS or (dim not in DIMENSIONS and dim != "node") or not values:
            return []
        frm, ent, where, args = self._keyed(dim, values, window, scope, filters)
        w = NODE_WEIGHT if dim == "node" else "1.0"
        sql = (f"SELECT {ent.lstrip('+')} AS entity, {DIMENSIONS[by]} AS key, COUNT(*) AS jobs, "
               f"SUM({_F}) AS failures, SUM(CASE WHEN {_F} THEN {w} ELSE 0 END) AS wfailures "
               f"FROM {frm} WHERE {where} GROUP BY entity, key")
        return rows_of(self.conn.execute(sql, args))

    def failure_mix(self, dim: str, values: Sequence[str], window: Any,
                    scope: Sequence[str] | None, filters: dict[str, Any] | None = None
                    ) -> list[dict[str, Any]]:
        """For each entity: failures by type and blame, with distinct users, images, projects."""
        if not values or (dim not in DIMENSIONS and dim != "node"):
            return []
        frm, ent, where, args = self._keyed(dim, values, window, scope, filters)
        sql = (f"SELECT {ent.lstrip('+')} AS entity, j.failure_type AS failure_type, j.blame AS blame, "
               f"COUNT(*) AS failures, COUNT(DISTINCT j.user) AS users, "
               f"COUNT(DISTINCT j.image) AS images FROM {frm} WHERE {where} AND {_F} "
               f"GROUP BY entity, failure_type, blame")
        return rows_of(self.conn.execute(sql, args))

    def node_combos(self, nodes: Sequence[str], window: Any, scope: Sequence[str] | None,
                    filters: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Jobs and failures of the window's jobs that ran on any of `nodes`, by (first such
        node, project, user, image, queue): read through the node index, never the window."""
        if not nodes:
            return []
        where, args = self.window_where(window, scope, filters)
        marks = ", ".join("?" * len(nodes))
        frm = keyed_from(filters)
        table = None if (filters or {}).get("node") else self._node_table(nodes, window)
        if table is not None:  # the job's row on its first such node (every jobs column)
            sql = (f"WITH nn AS (SELECT MIN(node) AS node, cluster, job_id FROM {table} "
                   f"WHERE node IN ({marks}) GROUP BY cluster, job_id) "
                   f"SELECT nn.node AS node, j.project AS project, j.user AS user, j.image AS image, "
                   f"j.queue AS queue, COUNT(*) AS jobs, SUM({_F}) AS failures FROM nn JOIN "
                   f"{table} j ON j.cluster = nn.cluster AND j.job_id = nn.job_id AND "
                   f"j.node = nn.node WHERE {where} GROUP BY 1, 2, 3, 4, 5")
            return rows_of(self.conn.execute(sql, [*nodes, *args]))
        sql = (f"WITH nn AS (SELECT cluster, job_id, MIN(node) AS node FROM job_nodes "
               f"WHERE node IN ({marks}) GROUP BY cluster, job_id) "
               f"SELECT nn.node AS node, j.project AS project, j.user AS user, j.image AS image, "
               f"j.queue AS queue, COUNT(*) AS jobs, SUM({_F}) AS failures FROM nn, {frm} "
               f"WHERE j.cluster = nn.cluster AND j.job_id = nn.job_id AND {where} "
               f"GROUP BY 1, 2, 3, 4, 5")
        return rows_of(self.conn.execute(sql, [*nodes, *args]))

    # -- patterns --------------------------------------------------------------------------
    def template_texts(self, ids: Sequence[int]) -> dict[int, str]:
        ids = [int(i) for i in ids if i is not None]
        if not ids:
            return {}
        cur = self.conn.execute(f"SELECT template_id, template FROM templates WHERE template_id "
                                f"IN ({', '.join('?' * len(ids))})", ids)
        return {int(a): b for a, b in cur}

    def types_seen_before(self, types: Sequence[str], before: int, scope: Sequence[str] | None
                          ) -> set[str]:
        """Which of these failure types occurred (jobs or events) before `before`, in scope."""
        seen = set()
        where, params = scope_clause(scope, "project")
        for t in types:
            hit = self.conn.execute(
                f"SELECT 1 FROM jobs WHERE failure_type = ? AND submit_time < ? AND state IN "
                f"{FAILED_SQL} AND {where} LIMIT 1", [t, int(before), *params]).fetchone()
            hit = hit or self.conn.execute(
                f"SELECT 1 FROM failure_events WHERE failure_type = ? AND timestamp < ? AND "
                f"{where} LIMIT 1", [t, int(before), *params]).fetchone()
            if hit:
                seen.add(t)
        return seen

    def history_before(self, before: int, scope: Sequence[str] | None, cap: int = 10_000
                       ) -> dict[str, Any]:
        """What the store holds before `before`, in scope: the earliest time (a job's submit
        or event time, a failure event's timestamp) and how many finished jobs and failure
        events (each count capped at `cap`: enough to say whether there is history)."""
        where, params = scope_clause(scope, "project")
        b = int(before)
        first = [self.conn.execute(f"SELECT MIN(submit_time) FROM jobs WHERE {where}",
                                   params).fetchone()[0],
                 self.conn.execute(f"SELECT MIN(event_time) FROM jobs WHERE {where}",
                                   params).fetchone()[0],
                 self.conn.execute(f"SELECT MIN(timestamp) FROM failure_events WHERE {where}",
                                   params).fetchone()[0]]
        first = [t for t in first if t is not None]
        jobs = self.conn.execute(
            f"SELECT COUNT(*) FROM (SELECT 1 FROM jobs WHERE event_time < ? AND {where} "
            f"LIMIT {int(cap)})", [b, *params]).fetchone()[0]
        events = self.conn.execute(
            f"SELECT COUNT(*) FROM (SELECT 1 FROM failure_events WHERE timestamp < ? AND {where} "
            f"LIMIT {int(cap)})", [b, *params]).fetchone()[0]
        return {"first": min(first) if first else None, "jobs": int(jobs), "events": int(events)}
