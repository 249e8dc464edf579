"""Read queries for the Parquet export (jobmedic/engines/parquet.py): per table, the (cluster,
month) partitions with a change marker each, and the rows of one partition.

A partition's month is that of the row's own time (jobs: submit time, else end time; job_nodes:
their job's; failure events: timestamp; telemetry: t), UTC, "YYYY-MM", or "unknown" when the
row has no time. The marker (row count, max rowid, a sum over mutable columns) changes whenever
rows are added to or removed from the partition, and (as a weighted checksum, not a
cryptographic one) when they are rewritten, so an incremental export
rewrites only those.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from jobmedic.knowledge.db import Queries

if TYPE_CHECKING:
    import pandas as pd

_JOB_TIME = "COALESCE(j.submit_time, j.end_time)"
#: table -> (FROM clause, time expression, cluster expression, marker of mutable columns)
TABLES: dict[str, tuple[str, str, str, str]] = {
    "jobs": ("jobs j", _JOB_TIME, "j.cluster",
             ("TOTAL((j.rowid % 9973 + 1) * (COALESCE(j.end_time, 0) % 1000003"
             " + LENGTH(COALESCE(j.state, '')) * 7919 + COALESCE(j.exit_code, 0) * 104729"
             " + LENGTH(COALESCE(j.failure_type, '')) * 1299709 + COALESCE(j.max_rss_mb, 0)))")),
    "job_nodes": ("job_nodes n LEFT JOIN jobs j ON j.cluster = n.cluster AND j.job_id = n.job_id",
                  _JOB_TIME, "n.cluster", "TOTAL(LENGTH(n.node))"),
    "failure_events": ("failure_events e", "e.timestamp", "e.cluster",
                       ("TOTAL((e.rowid % 9973 + 1) * (COALESCE(e.resolved, 0) * 7919"
                       " + LENGTH(COALESCE(e.failure_type, '')) * 104729"
                       " + LENGTH(COALESCE(e.resolution, '')) + COALESCE(e.timestamp, 0) % 1000003))")),
    "telemetry": ("telemetry t", "t.t", "t.cluster",
                  "TOTAL(COALESCE(t.value, 0) + COALESCE(t.vmax, 0) + COALESCE(t.n, 0) + t.t)"),
}
_ALIAS = {"jobs": "j", "job_nodes": "n", "failure_events": "e", "telemetry": "t"}
#: job_nodes and telemetry are WITHOUT ROWID tables: no rowid marker, ordered by their key
_ROWID = {"jobs": "j.rowid", "job_nodes": "0", "failure_events": "e.rowid", "telemetry": "0"}
_ORDER = {"jobs": "j.rowid", "job_nodes": "n.job_id, n.node", "failure_events": "e.rowid",
          "telemetry": "t.job_id, t.metric, t.node, t.device, t.t"}


def _month(expr: str) -> str:
    return (f"COALESCE(strftime('%Y-%m', CAST({expr} AS INTEGER), 'unixepoch'), 'unknown')")


class ExportQueries(Queries):
    """Partitions and partition rows of the exported tables."""

    def export_columns(self, table: str) -> list[str]:
        return [r[1] for r in self.conn.execute(f"PRAGMA table_info({_checked(table)})")]

    def export_partitions(self, table: str) -> list[dict[str, Any]]:
        """[{cluster, month, rows, max_rowid, marker}] of `table`."""
        frm, t, cl, marker = TABLES[_checked(table)]
        cur = self.conn.execute(
            f"SELECT COALESCE({cl}, ''), {_month(t)} AS m, COUNT(*), MAX({_ROWID[table]}), {marker} "
            f"FROM {frm} GROUP BY 1, 2 ORDER BY 1, 2")
        return [{"cluster": c, "month": m, "rows": n, "max_rowid": r, "marker": round(float(k), 3)}
                for c, m, n, r, k in cur.fetchall()]

    def export_rows(self, table: str, cluster: str, month: str) -> pd.DataFrame:
        """The rows of one partition (all columns of the table, in rowid order; jobs also
        carry their rowid as `_rowid`: the store's row order, which the Dask engine keeps)."""
        import pandas as pd
        return pd.concat(list(self.export_chunks(table, cluster, month, 1 << 62)), ignore_index=True)

    def export_chunks(self, table: str, cluster: str, month: str, size: int = 100_000):
        """export_rows in frames of at most `size` rows (a large partition in bounded memory);
        at least one frame, empty when the partition is."""
        import pandas as pd
        frm, t, cl, _ = TABLES[_checked(table)]
        a = _ALIAS[table]
        cols = self.export_columns(table)
        sel = ", ".join(f"{a}.{c}" for c in cols)
        if table == "jobs":
            sel += ", j.rowid AS _rowid"
            cols = [*cols, "_rowid"]
        cur = self.conn.execute(
            f"SELECT {sel} FROM {frm} WHERE COALESCE({cl}, '') = ? AND {_month(t)} = ? "
            f"ORDER BY {_ORDER[table]}", (cluster, month))
        first = True
        while True:
            rows = cur.fetchmany(size)
            if rows or first:
                yield pd.DataFrame.from_records(rows, columns=cols)
            if len(rows) < size:
                return
            first = False


def _checked(table: str) -> str:
    if table not in TABLES:
        raise ValueError(f"unknown export table {table!r}; accepted: {', '.join(TABLES)}")
    return table
