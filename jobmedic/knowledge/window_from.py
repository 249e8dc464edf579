"""FROM clauses of the window queries (stats_queries.py): the jobs (alias j) through the
covering window index, an entity's own index, or a node's job_nodes rows; the named-node
reads through a request's temp table of those nodes' window jobs (RollupReads.node_jobs)."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

#: Entity filters -> SQL column over the jobs alias `j` (whitelisted: never free SQL).
FILTERS = {"project": "j.project", "user": "j.user", "image": "j.image", "queue": "j.queue",
           "cluster": "j.cluster"}
#: The states an outcome scan counts (finished jobs, and pending ones that failed to
#: schedule): the leading column range of the jobs_window index.
OUTCOME_STATES_SQL = ("('completed', 'failed', 'timeout', 'oom', 'node_fail', 'preempted', "
                      "'pending')")
#: The entity columns with an (entity, end_time) index: a window of one entity's jobs is a
#: range of it (the window index leads with the state, so it cannot serve an entity).
TIMED = {"project": "j.project", "user": "j.user", "image": "j.image", "queue": "j.queue",
         "name": "j.name"}


def _named(keyed: Sequence[tuple[str, Sequence[Any]]], plus: str = "") -> tuple[str, list[Any]]:
    """`col = ?` (one value) or `col IN (...)` for each (column, values), ANDed."""
    conds: list[str] = []
    vals: list[Any] = []
    for col, values in keyed:
        values = list(values)
        conds.append(f"{plus}{col} = ?" if len(values) == 1 else
                     f"{plus}{col} IN ({', '.join('?' * len(values))})")
        vals += values
    return " AND ".join(conds), vals


def timed_window(lo: int, hi: int, keyed: Sequence[tuple[str, Sequence[Any]]],
                 drive: int | None = 0) -> tuple[str, list[Any]]:
    """The window [lo, hi) of the jobs whose TIMED columns hold the `keyed` values ((column,
    values): one value is `=`, several `IN`), read without each entity's whole history.

    `drive` None (entities with many of the window's jobs, in an outcome scan, whose state
    list leads the window index): the window's range of the covering window index, the
    entities checked on its entries (`+col`: their own indexes are not used), no table
    reads. Otherwise two ranges of the (entity, end_time) index of `keyed[drive]`:
    `event_time` is `end_time` where a job has one, so the entity's jobs are those with an
    end_time in the window plus those without one whose event_time is (a failure that never
    terminated), a MULTI-INDEX OR; the other entities are checked on the rows (`+col`).
    Either way the same rows as `entities AND event_time >= lo AND event_time < hi`."""
    if drive is None:
        ent, vals = _named(keyed, "+")
        return f"j.event_time >= ? AND j.event_time < ? AND {ent}", [lo, hi, *vals]
    ent, vals = _named(keyed[drive:drive + 1])
    sql = (f"(({ent} AND j.end_time >= ? AND j.end_time < ?) OR ({ent} AND j.end_time IS NULL "
           f"AND j.event_time >= ? AND j.event_time < ?))")
    rest = [k for i, k in enumerate(keyed) if i != drive]
    if not rest:
        return sql, [*vals, lo, hi, *vals, lo, hi]
    more, mvals = _named(rest, "+")
    return f"{sql} AND {more}", [*vals, lo, hi, *vals, lo, hi, *mvals]


def driver(conn: Any, lo: int, hi: int, keyed: Sequence[tuple[str, Sequence[Any]]],
           outcome: bool, cap: int = 20_000, ratio: int = 16) -> int | None:
    """Which of the `keyed` entities drives timed_window: the one with the fewest jobs ending
    in the window (counted on its covering (entity, end_time) range, stopped at `cap`; where
    several reach it and one must drive, counted on to 50 x `cap`), or None (the window
    index) for an outcome scan when even that one holds so many of the window's jobs that
    reading the window's index entries is cheaper than a table read per entity job (about
    `ratio` index entries each)."""
    def count(col: str, values: Sequence[Any], limit: int) -> int:
        cond, vals = _named([(col.removeprefix("j."), values)])
        return conn.execute(f"SELECT COUNT(*) FROM (SELECT 1 FROM jobs WHERE {cond} AND "
                            f"end_time >= ? AND end_time < ? LIMIT {int(limit)})",
                            [*vals, lo, hi]).fetchone()[0]

    counts = [count(col, values, cap) for col, values in keyed]
    n = min(counts)
    if outcome and (n >= cap or conn.execute(  # the entries a window-index read would pass
            "SELECT COUNT(*) FROM (SELECT 1 FROM jobs INDEXED BY jobs_window WHERE state IN "
            f"{OUTCOME_STATES_SQL} AND event_time >= ? AND event_time < ? LIMIT ?)",
            (lo, hi, ratio * n + 1)).fetchone()[0] <= ratio * n):
        return None
    if n >= cap and len(keyed) > 1:
        counts = [count(col, values, 50 * cap) for col, values in keyed]
    return counts.index(min(counts))


#: Share of a multi-node job's failure carried by each of its nodes.
NODE_WEIGHT = ("1.0 / COALESCE(NULLIF(j.n_nodes, 0), (SELECT COUNT(*) FROM job_nodes m "
               "WHERE m.cluster = j.cluster AND m.job_id = j.job_id), 1)")


def job_from(filters: dict[str, Any] | None) -> str:
    """The FROM clause of a window query: the jobs (alias j), reached through the node's
    job_nodes rows (alias fn) when a node filter is set, so the node's index drives the scan;
    with no entity filter, through the covering window index (the planner otherwise prefers
    a skip-scan of a per-project index that has to read every row from the table)."""
    filters = filters or {}
    if filters.get("node") is not None:  # CROSS JOIN: the node's rows first (never an entity's)
        return "job_nodes fn CROSS JOIN jobs j ON j.cluster = fn.cluster AND j.job_id = fn.job_id"
    if any(filters.get(k) is not None for k in TIMED):  # window_where's timed_window drives
        return "jobs j"
    return "jobs j INDEXED BY jobs_window"  # a cluster too (not its whole history by key)


def keyed_from(filters: dict[str, Any] | None) -> str:
    """FROM clause for queries restricted to named entities: the planner picks the entity's
    own index (never forced onto the window scan)."""
    return job_from(filters).replace(" INDEXED BY jobs_window", "")


def node_from(filters: dict[str, Any] | None, keys: Sequence[str] | None = None,
              table: str | None = None) -> tuple[str, str]:
    """FROM clause joining the window's jobs (j) to their nodes (n), and the expression for
    the node column: a few named nodes drive the query through the node index; all nodes (or
    many) are reached from the window scan by primary key (CROSS JOIN fixes that order, and
    `+n.node` keeps the planner off the node index, which would rescan per job)."""
    on = "n.cluster = j.cluster AND n.job_id = j.job_id"
    if table is not None and keys is not None and not (filters or {}).get("node"):
        # the window's jobs on those nodes, read once per request (RollupReads.node_jobs)
        return f"(SELECT rowid AS r, node FROM {table}) n JOIN {table} j ON j.rowid = n.r", "n.node"
    if keys is not None and len(keys) <= 20:
        frm = f"job_nodes n JOIN jobs j ON {on}"
        if filters and filters.get("node") is not None:
            frm += " JOIN job_nodes fn ON fn.cluster = j.cluster AND fn.job_id = j.job_id"
        return frm, "n.node"
    return f"{job_from(filters)} CROSS JOIN job_nodes n ON {on}", "+n.node"
