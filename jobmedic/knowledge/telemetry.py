"""Telemetry: per-job and per-node samples (cluster, job, metric, node, device, t, value).

Readers (sstat, Prometheus exposition text, the Philly windows) write `SAMPLE_COLUMNS`
tuples; a sample without a job, node or device stores '' there (the primary key needs
values). Metric names carry their unit (`mem_used_bytes`, `gpu_util_pct`, `cpu_time_s`), so
the readers normalise units before a sample reaches the store.

Scope: a job's samples are visible to a caller whose scope holds the job's project (the
query joins `jobs`); samples of no job (node-level series) only to an unrestricted caller.

Retention is bounded without configuration: `downsample(older_than, step_s)` replaces the
raw samples before a time by one row per `step_s` bucket (value = mean weighted by the raw
count, vmax = maximum, n = count), and `prune(before)` deletes what is older still;
`apply_retention(now)` does both with the defaults below.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from jobmedic.knowledge.db import Queries, Scope, rows_of, scope_clause

SAMPLE_COLUMNS = ("cluster", "job_id", "node", "device", "metric", "t", "value", "source")
RAW_KEEP_S = 7 * 86400  # raw samples kept this long
STEP_S = 300  # ... then one row per 5 minutes
KEEP_S = 180 * 86400  # ... and nothing older than this

_INSERT = (
    "INSERT INTO telemetry (cluster, job_id, node, device, metric, t, value, vmax, n, source) "
    "VALUES (?, COALESCE(?, ''), COALESCE(?, ''), COALESCE(?, ''), ?, ?, ?, NULL, 1, ?) "
    "ON CONFLICT(cluster, job_id, metric, node, device, t) DO UPDATE SET "
    "value = excluded.value, vmax = NULL, n = 1, source = excluded.source "
    "WHERE telemetry.value IS NOT excluded.value OR telemetry.n != 1"
)


class TelemetryQueries(Queries):
    """Writes, scoped reads and the retention of the telemetry table."""

    # -- writes ------------------------------------------------------------------------------
    def add_samples(self, rows: Iterable[Sequence[Any]]) -> int:
        """Insert samples (`SAMPLE_COLUMNS` order); a sample already stored for the same
        series and time is replaced. Returns the rows written (re-ingest writes none)."""
        with self.transaction() as conn:
            before = conn.total_changes
            conn.executemany(_INSERT, rows)
            return conn.total_changes - before

    # -- reads -------------------------------------------------------------------------------
    def _job_visible(self, scope: Scope) -> tuple[str, list[Any]]:
        """WHERE fragment on alias `s` (telemetry) limiting to samples the scope may see."""
        if scope is None:
            return "1", []
        where, params = scope_clause(scope, "j.project")
        return ("s.job_id != '' AND EXISTS (SELECT 1 FROM jobs j WHERE j.cluster = s.cluster "
                f"AND j.job_id = s.job_id AND {where})"), params

    def _where(self, first: str, value: Any, scope: Scope,
               optional: tuple[tuple[str, Any], ...]) -> tuple[str, list[Any]]:
        """`first` AND the scope's visibility AND each optional condition whose value is set."""
        vis, params = self._job_visible(scope)
        where, args = [first, vis], [value, *params]
        for cond, val in optional:
            if val is not None:
                where.append(cond)
                args.append(val)
        return " AND ".join(where), args

    def job_samples(self, job_id: str, cluster: str | None = None, metric: str | None = None,
                    scope: Scope = None, since: int | None = None, until: int | None = None
                    ) -> list[dict[str, Any]]:
        """The samples of one job in time order (all clusters unless `cluster` is given)."""
        where, args = self._where("s.job_id = ?", job_id, scope, (
            ("s.cluster = ?", cluster), ("s.metric = ?", metric), ("s.t >= ?", since),
            ("s.t < ?", until)))
        cur = self.conn.execute(
            "SELECT s.cluster, s.job_id, s.metric, s.node, s.device, s.t, s.value, s.vmax, s.n, "
            f"s.source FROM telemetry s WHERE {where} ORDER BY s.metric, s.node, "
            "s.device, s.t", args)
        return rows_of(cur)

    def job_telemetry_summary(self, job_id: str, cluster: str | None = None,
                              scope: Scope = None) -> list[dict[str, Any]]:
        """Per metric of one job: series, samples, first/last time, min, mean, max, last."""
        where, args = self._where("s.job_id = ?", job_id, scope, (("s.cluster = ?", cluster),))
        cur = self.conn.execute(
            "SELECT s.cluster, s.metric, COUNT(DISTINCT s.node || '|' || s.device) AS series, "
            "SUM(s.n) AS samples, MIN(s.t) AS first_t, MAX(s.t) AS last_t, MIN(s.value) AS min, "
            "SUM(s.value * s.n) / SUM(s.n) AS mean, MAX(COALESCE(s.vmax, s.value)) AS max "
            f"FROM telemetry s WHERE {where} GROUP BY s.cluster, s.metric "
            "ORDER BY s.cluster, s.metric", args)
        return rows_of(cur)

    def node_samples(self, node: str, metric: str | None = None, cluster: str | None = None,
                     since: int | None = None, until: int | None = None, scope: Scope = None
                     ) -> list[dict[str, Any]]:
        """A node's samples in time order (node-level ones need an unrestricted scope)."""
        where, args = self._where("s.node = ?", node, scope, (
            ("s.cluster = ?", cluster), ("s.metric = ?", metric), ("s.t >= ?", since),
            ("s.t < ?", until)))
        cur = self.conn.execute(
            "SELECT s.cluster, s.job_id, s.metric, s.device, s.t, s.value, s.vmax, s.n "
            f"FROM telemetry s WHERE {where} ORDER BY s.metric, s.device, s.t",
            args)
        return rows_of(cur)

    def running_jobs(self, cluster: str | None = None, scope: Scope = None,
                     sampled_since: int | None = None) -> list[dict[str, Any]]:
        """Running jobs (cluster, job_id, user, project, name, req_mem_mb, start_time) the scope
        may see; with `sampled_since`, only those with a sample at or after that time."""
        where, args = ["j.state = 'running'"], []
        if scope is not None:
            w, p = scope_clause(scope, "j.project")
            where.append(w)
            args += p
        if cluster is not None:
            where.append("j.cluster = ?")
            args.append(cluster)
        if sampled_since is not None:
            where.append("EXISTS (SELECT 1 FROM telemetry s WHERE s.cluster = j.cluster AND "
                         "s.job_id = j.job_id AND s.t >= ?)")
            args.append(int(sampled_since))
        # `+` keeps the planner from walking the whole primary key to skip the sort (on an
        # analysed million-job store it did: 0.8 s a poll); the running jobs come from the
        # window index's state prefix and are few, so sorting them is nothing.
        cur = self.conn.execute(
            "SELECT j.cluster, j.job_id, j.user, j.project, j.name, j.req_mem_mb, j.start_time "
            f"FROM jobs j WHERE {' AND '.join(where)} ORDER BY +j.cluster, +j.job_id", args)
        return rows_of(cur)

    def jobs_samples(self, cluster: str | None = None, metrics: Sequence[str] | None = None,
                     scope: Scope = None) -> list[tuple]:
        """Every job sample (cluster, job_id, metric, device, t, value) the scope may see, in
        bulk for model training (one query instead of one per job)."""
        vis, args = self._job_visible(scope)
        where = ["s.job_id != ''", vis]
        if cluster is not None:
            where.append("s.cluster = ?")
            args.append(cluster)
        if metrics:
            where.append(f"s.metric IN ({','.join('?' * len(metrics))})")
            args += list(metrics)
        return self.conn.execute(
            "SELECT s.cluster, s.job_id, s.metric, s.device, s.t, s.value FROM telemetry s "
            f"WHERE {' AND '.join(where)}", args).fetchall()

    def telemetry_counts(self, scope: Scope = None) -> dict[str, Any]:
        """Rows, jobs with samples, metrics and the time range the scope may see."""
        vis, params = self._job_visible(scope)
        rows, jobs, metrics, t0, t1 = self.conn.execute(
            "SELECT COUNT(*), COUNT(DISTINCT CASE WHEN s.job_id != '' THEN s.cluster || '|' || "
            "s.job_id END), COUNT(DISTINCT s.metric), MIN(s.t), MAX(s.t) FROM telemetry s "
            f"WHERE {vis}", params).fetchone()
        return {"rows": rows, "jobs": jobs, "metrics": metrics, "first_t": t0, "last_t": t1}

    # -- retention ---------------------------------------------------------------------------
    def downsample(self, older_than: int, step_s: int = STEP_S) -> dict[str, int]:
        """Replace the samples before `older_than` by one row per series and `step_s` bucket
        (mean weighted by count, max, count). Idempotent: a second run changes nothing."""
        step_s = max(int(step_s), 1)
        with self.transaction() as conn:
            conn.execute("DROP TABLE IF EXISTS temp.tel_ds")
            conn.execute(
                "CREATE TEMP TABLE tel_ds AS SELECT cluster, job_id, metric, node, device, "
                "(t / ?) * ? AS t, SUM(value * n) / SUM(n) AS value, "
                "MAX(COALESCE(vmax, value)) AS vmax, SUM(n) AS n, MIN(source) AS source, "
                "COUNT(*) AS rows FROM telemetry WHERE t < ? "
                "GROUP BY cluster, job_id, metric, node, device, t / ? HAVING COUNT(*) > 1 "
                "OR MIN(t) % ? != 0", (step_s, step_s, int(older_than), step_s, step_s))
            before = int(conn.execute("SELECT COALESCE(SUM(rows), 0) FROM tel_ds").fetchone()[0])
            conn.execute(
                "DELETE FROM telemetry WHERE t < ? AND (cluster, job_id, metric, node, device, "
                "t / ?) IN (SELECT cluster, job_id, metric, node, device, t / ? FROM tel_ds)",
                (int(older_than), step_s, step_s))
            conn.execute("INSERT INTO telemetry (cluster, job_id, metric, node, device, t, value, "
                         "vmax, n, source) SELECT cluster, job_id, metric, node, device, t, value, "
                         "vmax, n, source FROM tel_ds")
            after = int(conn.execute("SELECT COUNT(*) FROM tel_ds").fetchone()[0])
            conn.execute("DROP TABLE temp.tel_ds")
        return {"rows_before": before, "rows_after": after}

    def prune(self, before: int) -> int:
        """Delete every sample older than `before`; returns the rows deleted."""
        with self.transaction() as conn:
            return conn.execute("DELETE FROM telemetry WHERE t < ?", (int(before),)).rowcount

    def apply_retention(self, now: int, raw_keep_s: int = RAW_KEEP_S, step_s: int = STEP_S,
                        keep_s: int = KEEP_S) -> dict[str, int]:
        """Bounded telemetry: raw samples for `raw_keep_s`, `step_s` buckets up to `keep_s`,
        nothing older."""
        pruned = self.prune(int(now) - keep_s)
        ds = self.downsample(int(now) - raw_keep_s, step_s)
        return {"pruned": pruned, **ds}
