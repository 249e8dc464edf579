"""Store-wide facts: row counts, the time ranges held (per cluster and source, in scope),
recent rejects and the size of the file."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from jobmedic.knowledge.db import Queries, Scope, scope_clause


class StoreFacts(Queries):
    """What the store holds, for `db info` and `no_data` answers."""

    def table_counts(self) -> dict[str, int]:
        names = ["jobs", "job_nodes", "failure_events", "failure_solutions",
                 "solution_outcomes", "rejects", "templates"]
        return {n: int(self.conn.execute(f"SELECT COUNT(*) FROM {n}").fetchone()[0]) for n in names}

    def time_ranges(self, scope: Scope = None) -> list[dict[str, Any]]:
        """Per cluster and source: job count and the first and last submit times."""
        where, params = scope_clause(scope)
        rows = self.conn.execute(
            f"SELECT cluster, source, COUNT(*), MIN(submit_time), MAX(COALESCE(end_time, "
            f"submit_time)) FROM jobs WHERE {where} GROUP BY cluster, source "
            f"ORDER BY cluster, source", params).fetchall()
        out = [dict(zip(("cluster", "source", "jobs", "first", "last"), r)) for r in rows]
        where, params = scope_clause(scope)
        ev = self.conn.execute(
            f"SELECT cluster, source, COUNT(*), MIN(timestamp), MAX(timestamp) FROM failure_events "
            f"WHERE {where} AND (job_id IS NULL OR NOT EXISTS (SELECT 1 FROM jobs j WHERE "
            f"j.cluster = failure_events.cluster AND j.job_id = failure_events.job_id)) "
            f"GROUP BY cluster, source", params).fetchall()
        out += [dict(zip(("cluster", "source", "events", "first", "last"), r)) for r in ev]
        return out

    def data_range(self, scope: Scope = None) -> tuple[int | None, int | None]:
        """The earliest and latest time the store holds jobs or failure events for (in scope)."""
        where, params = scope_clause(scope)
        # MAX(COALESCE(end_time, submit_time)) as three single-aggregate queries, each an index
        # seek (jobs_submit, jobs_end; the unfinished jobs' submit times), never a table scan.
        j = [self.conn.execute(f"SELECT {agg} FROM jobs WHERE {cond}{where}", params).fetchone()[0]
             for agg, cond in (("MIN(submit_time)", ""), ("MAX(end_time)", ""),
                               ("MAX(submit_time)", "end_time IS NULL AND "))]
        j = (j[0], max((x for x in j[1:] if x is not None), default=None))
        e = self.conn.execute(
            f"SELECT MIN(timestamp), MAX(timestamp) FROM failure_events WHERE {where}",
            params).fetchone()
        lows = [x for x in (j[0], e[0]) if x is not None]
        highs = [x for x in (j[1], e[1]) if x is not None]
        return (min(lows) if lows else None, max(highs) if highs else None)

    def recent_rejects(self, limit: int = 20) -> list[dict[str, Any]]:
        cur = self.conn.execute(
            "SELECT source, file, line, reason, raw FROM rejects ORDER BY id DESC LIMIT ?", (limit,))
        return [dict(zip(("source", "file", "line", "reason", "raw"), r)) for r in cur]

    def file_size_bytes(self) -> int | None:
        if self.db.path == ":memory:":
            return None
        p = Path(self.db.path)
        return sum(q.stat().st_size for q in (p, Path(self.db.path + "-wal")) if q.exists())
