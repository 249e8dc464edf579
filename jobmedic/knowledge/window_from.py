"""FROM clauses of the window queries (stats_queries.py): the jobs (alias j) through the
covering window index, an entity's own index, or a node's job_nodes rows; the named-node
reads through a request's temp table of those nodes' window jobs (RollupReads.node_jobs)."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

#: Entity filters -> SQL column over the jobs alias `j` (whitelisted: never free SQL).
FILTERS = {"project": "j.project", "user": "j.user", "image": "j.image", "queue": "j.queue",
           "cluster": "j.cluster"}
#: Share of a multi-node job's failure carried by each of its nodes.
NODE_WEIGHT = ("1.0 / COALESCE(NULLIF(j.n_nodes, 0), (SELECT COUNT(*) FROM job_nodes m "
               "WHERE m.cluster = j.cluster AND m.job_id = j.job_id), 1)")


def job_from(filters: dict[str, Any] | None) -> str:
    """The FROM clause of a window query: the jobs (alias j), reached through the node's
    job_nodes rows (alias fn) when a node filter is set, so the node's index drives the scan;
    with no entity filter, through the covering window index (the planner otherwise prefers
    a skip-scan of a per-project index that has to read every row from the table)."""
    filters = filters or {}
    if filters.get("node") is not None:
        return ("job_nodes fn JOIN jobs j ON j.cluster = fn.cluster AND j.job_id = fn.job_id")
    if any(filters.get(k) is not None for k in FILTERS):
        return "jobs j"
    return "jobs j INDEXED BY jobs_window"


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
