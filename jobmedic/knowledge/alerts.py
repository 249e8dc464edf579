"""Live operation in the store: alerts and their deliveries, the watcher's cursor, the job
output evidence of failed jobs, and the windowed counts the alert rules ask for.

Alerts are scoped like everything else: a scoped caller sees only alerts of its projects; an
alert about several projects at once (a node) has no project and is seen by unscoped callers.
"""
from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

from jobmedic.knowledge.db import Queries, Scope, rows_of, scope_clause
from jobmedic.knowledge.taxonomy import FAILED_STATES

_FAILED = tuple(sorted(FAILED_STATES))
_FAILED_IN = f"state IN ({', '.join('?' * len(_FAILED))})"


def _failing(a: str = "") -> str:
    """A failure by the stats queries' rule (issue 12): a failure state, or a pod that could not
    be scheduled (pending, failure type scheduling: it failed without ever running). Takes
    `_FAILED` as parameters, like `_FAILED_IN`; `a` is the table alias with its dot. With the
    window on `event_time` a pod that never terminated counts at its failure time; the state
    list leads so the state-led window index serves the scan."""
    return (f"{a}state IN ({', '.join('?' * len(_FAILED))}, 'pending') AND "
            f"({a}state != 'pending' OR {a}failure_type = 'scheduling')")
ALERT_FIELDS = ("id", "rule", "subject", "dedup_key", "severity", "text", "job_ids",
                "failure_type", "evidence", "fix", "project", "cluster", "first_seen",
                "last_seen", "last_sent", "state", "resolved_at", "acked_at", "acked_by", "count")


def _alert(row: Sequence[Any]) -> dict[str, Any]:
    a = dict(zip(ALERT_FIELDS, row))
    try:
        a["job_ids"] = json.loads(a["job_ids"]) if a["job_ids"] else []
    except ValueError:
        a["job_ids"] = []
    return a


class LiveQueries(Queries):
    """Alerts, deliveries, the watcher's state and the rules' windowed counts."""

    # -- the watcher's state (cursor) --------------------------------------------------------
    def live_get(self, key: str) -> Any:
        row = self.conn.execute("SELECT value FROM live_state WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def live_put(self, key: str, value: Any) -> None:
        with self.transaction() as conn:
            conn.execute("INSERT INTO live_state (key, value, updated_at) VALUES (?, ?, ?) "
                         "ON CONFLICT(key) DO UPDATE SET value = excluded.value, "
                         "updated_at = excluded.updated_at",
                         (key, json.dumps(value), int(time.time())))

    # -- alerts ------------------------------------------------------------------------------
    def open_alerts(self, rule: str | None = None) -> list[dict[str, Any]]:
        """Alerts not resolved (open or acknowledged), unscoped: the watcher's own view."""
        sql = f"SELECT {', '.join(ALERT_FIELDS)} FROM alerts WHERE state != 'resolved'"
        args: list[Any] = []
        if rule:
            sql += " AND rule = ?"
            args.append(rule)
        return [_alert(r) for r in self.conn.execute(sql, args)]

    def last_sent_for(self, dedup_key: str) -> int | None:
        """When any alert with this key was last notified (cooldown across firings)."""
        row = self.conn.execute("SELECT MAX(last_sent) FROM alerts WHERE dedup_key = ?",
                                (dedup_key,)).fetchone()
        return row[0] if row else None

    def add_alert(self, a: dict[str, Any]) -> int:
        cols = [c for c in ALERT_FIELDS if c != "id" and c in a]
        vals = [json.dumps(a[c]) if c == "job_ids" else a[c] for c in cols]
        with self.transaction() as conn:
            cur = conn.execute(f"INSERT INTO alerts ({', '.join(cols)}) VALUES "
                               f"({', '.join('?' * len(cols))})", vals)
            return int(cur.lastrowid)

    def update_alert(self, alert_id: int, **fields: Any) -> None:
        if not fields:
            return
        cols = list(fields)
        vals = [json.dumps(fields[c]) if c == "job_ids" else fields[c] for c in cols]
        with self.transaction() as conn:
            conn.execute(f"UPDATE alerts SET {', '.join(c + ' = ?' for c in cols)} WHERE id = ?",
                         [*vals, alert_id])

    def touch_alerts(self, ids: Sequence[int], now: int) -> None:
        """Mark open alerts whose condition still holds, unchanged, as seen now (one
        transaction for all of them: a watcher refreshes every open alert on every poll)."""
        if not ids:
            return
        with self.transaction() as conn:
            conn.executemany("UPDATE alerts SET last_seen = ? WHERE id = ?",
                             [(now, i) for i in ids])

    def list_alerts(self, scope: Scope = None, state: str | None = None,
                    limit: int = 100) -> list[dict[str, Any]]:
        """Alerts, newest first, in the caller's scope (state: open, acked, resolved)."""
        where, args = scope_clause(scope)
        sql = f"SELECT {', '.join(ALERT_FIELDS)} FROM alerts WHERE {where}"
        if state:
            sql += " AND state = ?"
            args = [*args, state]
        sql += " ORDER BY last_seen DESC, id DESC LIMIT ?"
        return [_alert(r) for r in self.conn.execute(sql, [*args, limit])]

    def get_alert(self, alert_id: int, scope: Scope = None) -> dict[str, Any] | None:
        where, args = scope_clause(scope)
        row = self.conn.execute(f"SELECT {', '.join(ALERT_FIELDS)} FROM alerts WHERE id = ? "
                                f"AND {where}", [alert_id, *args]).fetchone()
        return _alert(row) if row else None

    # -- deliveries --------------------------------------------------------------------------
    def add_delivery(self, alert_id: int, sink: str, event: str) -> int:
        with self.transaction() as conn:
            cur = conn.execute("INSERT INTO alert_deliveries (alert_id, sink, event, status, "
                               "created_at) VALUES (?, ?, ?, 'pending', ?)",
                               (alert_id, sink, event, int(time.time())))
            return int(cur.lastrowid)

    def finish_delivery(self, delivery_id: int, ok: bool, attempts: int,
                        error: str | None = None) -> None:
        with self.transaction() as conn:
            conn.execute("UPDATE alert_deliveries SET status = ?, attempts = ?, last_error = ?, "
                         "sent_at = ? WHERE id = ?",
                         ("sent" if ok else "failed", attempts, error,
                          int(time.time()) if ok else None, delivery_id))

    def deliveries(self, status: str | None = None) -> list[dict[str, Any]]:
        cols = ("id", "alert_id", "sink", "event", "status", "attempts", "last_error",
                "created_at", "sent_at")
        sql = f"SELECT {', '.join(cols)} FROM alert_deliveries"
        args: list[Any] = []
        if status:
            sql += " WHERE status = ?"
            args.append(status)
        return [dict(zip(cols, r)) for r in self.conn.execute(sql + " ORDER BY id", args)]

    # -- what the rules count ----------------------------------------------------------------
    def name_failures(self, since: int, until: int, min_count: int) -> list[dict[str, Any]]:
        """Job names with at least `min_count` failures that ended in [since, until]."""
        rows = self.conn.execute(
            f"SELECT cluster, project, name, COUNT(*), MAX(event_time) FROM jobs "
            f"WHERE {_failing()} AND event_time BETWEEN ? AND ? AND name IS NOT NULL "
            f"GROUP BY cluster, project, name HAVING COUNT(*) >= ?",
            [*_FAILED, since, until, min_count]).fetchall()
        return [{"cluster": r[0], "project": r[1], "name": r[2], "count": r[3], "last": r[4]}
                for r in rows]

    def failed_jobs_named(self, cluster: str, project: str | None, name: str, since: int,
                          until: int, limit: int = 50) -> list[dict[str, Any]]:
        rows = self.conn.execute(
            f"SELECT job_id, failure_type, event_time FROM jobs INDEXED BY jobs_window "
            f"WHERE name = ? AND event_time BETWEEN ? AND ? AND cluster = ? AND project IS ? "
            f"AND {_failing()} ORDER BY event_time, job_id LIMIT ?",
            [name, since, until, cluster, project, *_FAILED, limit]).fetchall()
        return [{"job_id": r[0], "failure_type": r[1], "event_time": r[2]} for r in rows]

    def node_failure_users(self, since: int, until: int, min_users: int
                           ) -> list[dict[str, Any]]:
        """Nodes where failures blamed on the cluster or unclear came from several users."""
        rows = self.conn.execute(
            f"SELECT n.cluster, n.node, COUNT(DISTINCT j.user), COUNT(*), "
            f"GROUP_CONCAT(DISTINCT j.project), MAX(j.event_time) FROM jobs j "
            f"JOIN job_nodes n ON n.cluster = j.cluster AND n.job_id = j.job_id "
            f"WHERE {_failing('j.')} AND j.event_time BETWEEN ? AND ? AND j.blame != 'job' "
            f"GROUP BY n.cluster, n.node HAVING COUNT(DISTINCT j.user) >= ?",
            [*_FAILED, since, until, min_users]).fetchall()
        return [{"cluster": r[0], "node": r[1], "users": r[2], "count": r[3],
                 "projects": sorted((r[4] or "").split(",")) if r[4] else [], "last": r[5]}
                for r in rows]

    def failed_jobs_on_node(self, cluster: str, node: str, since: int, until: int,
                            limit: int = 50) -> list[dict[str, Any]]:
        rows = self.conn.execute(
            f"SELECT j.job_id, j.failure_type, j.user FROM job_nodes n JOIN jobs j ON "
            f"j.cluster = n.cluster AND j.job_id = n.job_id WHERE n.cluster = ? AND n.node = ? "
            f"AND {_failing('j.')} AND j.event_time BETWEEN ? AND ? AND j.blame != 'job' "
            f"ORDER BY j.event_time LIMIT ?", [cluster, node, *_FAILED, since, until, limit]
        ).fetchall()
        return [{"job_id": r[0], "failure_type": r[1], "user": r[2]} for r in rows]

    def type_failures(self, since: int, until: int) -> list[dict[str, Any]]:
        """Failures in [since, until] by (project, failure type), with their job ids."""
        rows = self.conn.execute(
            f"SELECT cluster, project, failure_type, COUNT(*), GROUP_CONCAT(job_id) FROM jobs "
            f"WHERE {_failing()} AND event_time BETWEEN ? AND ? AND failure_type IS NOT NULL "
            f"GROUP BY cluster, project, failure_type", [*_FAILED, since, until]).fetchall()
        return [{"cluster": r[0], "project": r[1], "failure_type": r[2], "count": r[3],
                 "job_ids": (r[4] or "").split(",")[:50]} for r in rows]

    def failure_series(self, since: int, until: int, bucket_s: int, by: str = "cluster"
                       ) -> list[tuple[str, str | None, int, int, int]]:
        """Jobs with an outcome and failures per `bucket_s` bucket of [since, until), per
        cluster (`by="cluster"`) or per (cluster, project) (`by="project"`): rows of
        (cluster, project or None, bucket index, jobs, failures). The window rule of the stats
        queries: a job counts at its event_time, cancelled jobs are left out of both counts,
        an unschedulable pod is a failure; read from the covering window index alone."""
        from jobmedic.knowledge.stats_queries import FAILED_SQL
        from jobmedic.knowledge.window_from import OUTCOME_STATES_SQL

        proj = "project" if by == "project" else "NULL"
        failed = (f"(state IN {FAILED_SQL} OR (state = 'pending' "
                  f"AND failure_type = 'scheduling'))")
        rows = self.conn.execute(
            f"SELECT cluster, {proj}, (event_time - ?) / ?, COUNT(*), SUM({failed}) "
            f"FROM jobs WHERE state IN {OUTCOME_STATES_SQL} AND (state != 'pending' OR "
            f"failure_type = 'scheduling') AND event_time >= ? AND event_time < ? "
            f"GROUP BY 1, 2, 3", (since, max(int(bucket_s), 1), since, until)).fetchall()
        return [(r[0], r[1], int(r[2]), int(r[3]), int(r[4] or 0)) for r in rows]

    def failed_jobs_between(self, cluster: str, project: str | None, since: int, until: int,
                            limit: int = 50) -> list[dict[str, Any]]:
        """The latest failed jobs of a cluster (and project, when given) with event_time in
        [since, until), newest first."""
        sql = (f"SELECT job_id, failure_type FROM jobs INDEXED BY jobs_window WHERE "
               f"{_failing()} AND event_time >= ? AND event_time < ? AND cluster = ?")
        args: list[Any] = [*_FAILED, since, until, cluster]
        if project is not None:
            sql += " AND project = ?"
            args.append(project)
        rows = self.conn.execute(sql + " ORDER BY event_time DESC, job_id DESC LIMIT ?",
                                 [*args, limit]).fetchall()
        return [{"job_id": r[0], "failure_type": r[1]} for r in rows]

    def resubmission_frame_for(self, users: Sequence[str], since: int) -> Any:
        """The outcome-inference frame of a few users' jobs submitted since `since` (the
        incremental form of `resubmission_frame`, read through jobs_user_submit)."""
        import pandas as pd

        from jobmedic.knowledge.remedies import JOB_FRAME_COLUMNS

        users = sorted({u for u in users if u})
        rows: list[Any] = []
        for i in range(0, len(users), 500):
            chunk = users[i:i + 500]
            rows += self.conn.execute(
                f"SELECT {', '.join(JOB_FRAME_COLUMNS)} FROM jobs WHERE user IN "
                f"({', '.join('?' * len(chunk))}) AND submit_time >= ?", [*chunk, since]
            ).fetchall()
        return pd.DataFrame.from_records(rows, columns=list(JOB_FRAME_COLUMNS))

    def resubmission_frame_of(self, jobs: Sequence[dict[str, Any]], cutoff: int) -> Any:
        """The outcome-inference frame around a few new jobs: every job in one of their
        resubmission groups (same cluster, user and job name; for an unnamed job, the same
        user's unnamed jobs with an image) that ended at `cutoff` or later, or has no end and
        was submitted at `cutoff` or later. Read group by group through the name / user
        indexes, so it costs what the groups hold, not what their users ran."""
        import pandas as pd

        from jobmedic.knowledge.remedies import JOB_FRAME_COLUMNS

        cols = ", ".join(JOB_FRAME_COLUMNS)
        named = sorted({(j["cluster"], j["user"], j["name"]) for j in jobs
                        if j.get("user") and j.get("name")})
        unnamed = sorted({(j["cluster"], j["user"]) for j in jobs
                          if j.get("user") and not j.get("name") and j.get("image")})
        ended = f"SELECT {cols} FROM jobs WHERE name = ? AND end_time >= ? AND user = ? " \
            "AND cluster = ?"
        open_ = f"SELECT {cols} FROM jobs WHERE name = ? AND end_time IS NULL AND " \
            "submit_time >= ? AND user = ? AND cluster = ?"
        bare = f"SELECT {cols} FROM jobs WHERE user = ? AND cluster = ? AND name IS NULL AND " \
            "image IS NOT NULL AND (end_time >= ? OR (end_time IS NULL AND submit_time >= ?))"
        queries: list[tuple[str, tuple]] = []
        for c, u, n in named:
            queries += [(ended, (n, cutoff, u, c)), (open_, (n, cutoff, u, c))]
        queries += [(bare, (u, c, cutoff, cutoff)) for c, u in unnamed]
        rows: dict[int, Any] = {}
        for sql, args in queries:
            for r in self.conn.execute(sql, args):
                rows.setdefault(r[0], r)
        return pd.DataFrame.from_records(list(rows.values()), columns=list(JOB_FRAME_COLUMNS))

    def latest_evidence(self, cluster: str | None, job_ids: Sequence[str]) -> str | None:
        """The evidence line of the latest failure event among these jobs."""
        ids = list(job_ids)[:500]
        if not ids:
            return None
        row = self.conn.execute(
            f"SELECT evidence FROM failure_events WHERE cluster IS ? AND job_id IN "
            f"({', '.join('?' * len(ids))}) AND evidence IS NOT NULL "
            f"ORDER BY timestamp DESC, id DESC LIMIT 1", [cluster, *ids]).fetchone()
        return row[0] if row else None

    # -- job output evidence -----------------------------------------------------------------
    def jobs_by_ids(self, cluster: str, job_ids: Sequence[str]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        ids = list(job_ids)
        for i in range(0, len(ids), 500):
            chunk = ids[i:i + 500]
            cur = self.conn.execute(
                f"SELECT * FROM jobs WHERE cluster = ? AND job_id IN "
                f"({', '.join('?' * len(chunk))})", [cluster, *chunk])
            out += rows_of(cur)
        return out

    def failed_jobs_without_output(self, since: int, limit: int = 1000) -> list[dict[str, Any]]:
        """Failed jobs ended since `since` whose failure event has no job output yet."""
        cur = self.conn.execute(
            f"SELECT j.* FROM jobs j JOIN failure_events f ON f.cluster = j.cluster "
            f"AND f.job_id = j.job_id WHERE j.{_FAILED_IN} AND j.event_time >= ? "
            f"AND f.logs_snippet IS NULL ORDER BY j.event_time LIMIT ?", [*_FAILED, since, limit])
        return rows_of(cur)

    def set_job_output(self, cluster: str, job_id: str, snippet: str, evidence: str | None,
                       failure_type: str | None = None, blame: str | None = None) -> int:
        """Store what the job printed (redacted tail and deciding line) on its failure event;
        a more specific type read from the output replaces a generic stored one
        (app_error, unknown)."""
        return self.set_job_outputs([(cluster, job_id, snippet, evidence, failure_type, blame)])

    def set_job_outputs(self, rows: Sequence[tuple]) -> int:
        """`set_job_output` for many jobs, in one transaction: rows of (cluster, job_id,
        snippet, evidence, failure_type, blame)."""
        n = 0
        with self.transaction() as conn:
            for cluster, job_id, snippet, evidence, failure_type, blame in rows:
                n += conn.execute(
                    "UPDATE failure_events SET logs_snippet = ?, "
                    "evidence = COALESCE(?, evidence) WHERE cluster = ? AND job_id = ?",
                    (snippet, evidence, cluster, job_id)).rowcount
                if failure_type and blame:
                    for table in ("jobs", "failure_events"):
                        conn.execute(
                            f"UPDATE {table} SET failure_type = ?, blame = ? WHERE cluster = ? "
                            f"AND job_id = ? AND failure_type IN ('app_error', 'unknown')",
                            (failure_type, blame, cluster, job_id))
        return n

    # -- the gauges of /metrics ---------------------------------------------------------------
    def live_metrics(self, now: int, windows: Sequence[int] = (3600, 86400)) -> dict[str, Any]:
        """Alert counts by (rule, severity, state), deliveries by (sink, status) and, per
        cluster and window (seconds before `now`), failed and ended jobs at their event_time
        (a failure without an end at its failure time; unschedulable pods are failures and
        counted among the jobs; cancelled jobs stay among the ended, as the metric's name says)."""
        alerts = self.conn.execute("SELECT rule, severity, state, COUNT(*) FROM alerts "
                                   "GROUP BY rule, severity, state").fetchall()
        deliveries = self.conn.execute("SELECT sink, status, COUNT(*) FROM alert_deliveries "
                                       "GROUP BY sink, status").fetchall()
        ended = ("completed", "cancelled", *_FAILED)
        rates = []
        for w in windows:  # ended jobs and unschedulable pods (failures that never ran)
            for cluster, failed, total in self.conn.execute(
                    f"SELECT cluster, SUM(state NOT IN ('completed', 'cancelled')), COUNT(*) "
                    f"FROM jobs WHERE state IN ({', '.join('?' * len(ended))}, 'pending') AND "
                    f"(state != 'pending' OR failure_type = 'scheduling') AND event_time > ? "
                    f"AND event_time <= ? GROUP BY cluster", [*ended, now - w, now]):
                rates.append((cluster, w, int(failed or 0), int(total)))
        return {"alerts": [tuple(r) for r in alerts],
                "deliveries": [tuple(r) for r in deliveries], "rates": rates}
