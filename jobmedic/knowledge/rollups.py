"""Per-day rollups of the jobs table, so a window's aggregates read thousands of rollup rows
instead of every job in the window (issue 16).

Three tables, each keyed by cluster and time bucket (UTC epoch seconds of its start):

- `rollup_jobs_day` (day, cluster, project, user, image, queue, failure_type): jobs with an
  outcome, failures, GPU- and core-seconds of the failures, cancelled jobs. Scope (project)
  and the entity filters are key columns, so scoped and filtered reads stay exact.
- `rollup_nodes_day` (day, cluster, node): jobs exposed, failures, and failures weighted
  1/n for n-node jobs (as `StatsQueries.node_rates`). Unscoped reads only.
- `rollup_node_fails` (day, cluster, node, user): failures and hours lost of the failed
  jobs on each node, for the users and hours of the per-node breakdown (stats by node).
- `rollup_hours` (hour, cluster, project): jobs, failures, hours lost, for the hourly series.

A job counts where it counts in the raw queries (stats_queries.py): at its `event_time`, the
end or, for a failure that never terminated, its failure time; with an outcome (completed or
a failure state, an unschedulable pod) or cancelled (counted apart). NULL key values are
stored as `char(0)` (a primary key cannot hold NULL); reads turn them back.

Maintenance is exact under late updates: new job rows are found by row id above a watermark
(`rollup_state`), and triggers log the *old* values of any job row updated or deleted at or
below the watermark, and node rows added to or removed from such jobs (`rollup_job_log`,
`rollup_node_log`). `refresh` then subtracts each affected job's contribution as it was at the
last refresh and adds its contribution now, all in one transaction. The tables are built on
first use (`refresh(build=True)`, a full pass) and refreshed after every ingest and before
every read; a store that cannot be written (read-only file) is read by the raw queries.
"""
from __future__ import annotations

import sqlite3
import time
from typing import Any

from jobmedic.knowledge.db import Queries
from jobmedic.knowledge.window_from import OUTCOME_STATES_SQL

#: Bump when a rollup's definition changes: the tables are rebuilt on next use.
ROLLUP_VERSION = 2
DAY, HOUR = 86400, 3600
NUL = "char(0)"

_ROW_COLS = ("cluster", "job_id", "state", "failure_type", "project", "user", "image", "queue",
             "event_time", "elapsed_s", "req_cpus", "req_gpus", "n_nodes")
#: Membership (alias s over a relation with _ROW_COLS): the same rules as stats_queries.
_WAITS = "(s.state != 'pending' OR s.failure_type = 'scheduling')"
EXPOSED = f"(s.state IN {OUTCOME_STATES_SQL} AND {_WAITS})"
FAILED = f"(s.state IN ('failed', 'timeout', 'oom', 'node_fail', 'preempted', 'pending') AND {_WAITS})"
CANCELLED = "(s.state = 'cancelled')"
JOB_KEYS = ("project", "user", "image", "queue", "failure_type")

_LOGGED = ", ".join(f"{{p}}.{c}" for c in _ROW_COLS[2:])
#: A node row change matters when its job was counted: its row is at or below the watermark,
#: or it was deleted (or updated) since the last refresh (its old values are in the log).
_COUNTED = ("(COALESCE((SELECT rowid FROM jobs WHERE cluster = {r}.cluster AND job_id = {r}.job_id)"
            " <= (SELECT watermark FROM rollup_state WHERE id = 1), 0) OR EXISTS (SELECT 1 FROM "
            "rollup_job_log l WHERE l.cluster = {r}.cluster AND l.job_id = {r}.job_id))")
DDL = [
    """CREATE TABLE IF NOT EXISTS rollup_jobs_day (
        day INTEGER NOT NULL, cluster TEXT NOT NULL, project TEXT NOT NULL, user TEXT NOT NULL,
        image TEXT NOT NULL, queue TEXT NOT NULL, failure_type TEXT NOT NULL,
        jobs INTEGER NOT NULL, failures INTEGER NOT NULL, gpu_s NUMERIC NOT NULL,
        core_s NUMERIC NOT NULL, cancelled INTEGER NOT NULL,
        PRIMARY KEY (day, cluster, project, user, image, queue, failure_type)) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS rollup_nodes_day (
        day INTEGER NOT NULL, cluster TEXT NOT NULL, node TEXT NOT NULL, jobs INTEGER NOT NULL,
        failures INTEGER NOT NULL, wfailures REAL NOT NULL,
        PRIMARY KEY (day, cluster, node)) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS rollup_node_fails (
        day INTEGER NOT NULL, cluster TEXT NOT NULL, node TEXT NOT NULL, user TEXT NOT NULL,
        failures INTEGER NOT NULL, gpu_s NUMERIC NOT NULL, core_s NUMERIC NOT NULL,
        PRIMARY KEY (day, cluster, node, user)) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS rollup_hours (
        hour INTEGER NOT NULL, cluster TEXT NOT NULL, project TEXT NOT NULL,
        jobs INTEGER NOT NULL, failures INTEGER NOT NULL, gpu_s NUMERIC NOT NULL,
        core_s NUMERIC NOT NULL, PRIMARY KEY (hour, cluster, project)) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS rollup_state (
        id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL,
        watermark INTEGER NOT NULL, built_at INTEGER NOT NULL, refreshed_at INTEGER NOT NULL)""",
    f"""CREATE TABLE IF NOT EXISTS rollup_job_log (
        seq INTEGER PRIMARY KEY, {', '.join(_ROW_COLS)})""",
    "CREATE INDEX IF NOT EXISTS rollup_job_log_job ON rollup_job_log(cluster, job_id)",
    """CREATE TABLE IF NOT EXISTS rollup_node_log (
        seq INTEGER PRIMARY KEY, cluster TEXT, job_id TEXT, node TEXT, sign INTEGER)""",
    # Only rows the rollups already counted (row id at or below the watermark) are logged;
    # newer rows are read in their current state at the next refresh.
    f"""CREATE TRIGGER IF NOT EXISTS rollup_jobs_update AFTER UPDATE ON jobs
        WHEN OLD.rowid <= (SELECT watermark FROM rollup_state WHERE id = 1)
        AND ({_LOGGED.format(p='OLD')}, OLD.cluster, OLD.job_id) IS NOT
            ({_LOGGED.format(p='NEW')}, NEW.cluster, NEW.job_id)
        BEGIN INSERT INTO rollup_job_log ({', '.join(_ROW_COLS)})
              VALUES ({', '.join('OLD.' + c for c in _ROW_COLS)}); END""",
    f"""CREATE TRIGGER IF NOT EXISTS rollup_jobs_delete AFTER DELETE ON jobs
        WHEN OLD.rowid <= (SELECT watermark FROM rollup_state WHERE id = 1)
        BEGIN INSERT INTO rollup_job_log ({', '.join(_ROW_COLS)})
              VALUES ({', '.join('OLD.' + c for c in _ROW_COLS)}); END""",
    f"""CREATE TRIGGER IF NOT EXISTS rollup_nodes_insert AFTER INSERT ON job_nodes
        WHEN {_COUNTED.format(r='NEW')}
        BEGIN INSERT INTO rollup_node_log (cluster, job_id, node, sign)
              VALUES (NEW.cluster, NEW.job_id, NEW.node, 1); END""",
    f"""CREATE TRIGGER IF NOT EXISTS rollup_nodes_delete AFTER DELETE ON job_nodes
        WHEN {_COUNTED.format(r='OLD')}
        BEGIN INSERT INTO rollup_node_log (cluster, job_id, node, sign)
              VALUES (OLD.cluster, OLD.job_id, OLD.node, -1); END""",
]
TABLES = ("rollup_jobs_day", "rollup_nodes_day", "rollup_node_fails", "rollup_hours")
TRIGGERS = ("rollup_jobs_update", "rollup_jobs_delete", "rollup_nodes_insert", "rollup_nodes_delete")


def job_cells(src: str, sign: int) -> str:
    """Contribution rows of rollup_jobs_day for the jobs of relation `src` (alias s)."""
    keys = ", ".join(f"IFNULL(s.{k}, {NUL}) AS {k}" for k in JOB_KEYS)
    return (f"SELECT (CAST(s.event_time AS INTEGER) / {DAY}) * {DAY} AS day, s.cluster AS cluster, "
            f"{keys}, {sign} * (CASE WHEN {EXPOSED} THEN 1 ELSE 0 END) AS jobs, "
            f"{sign} * (CASE WHEN {FAILED} THEN 1 ELSE 0 END) AS failures, "
            f"{sign} * (CASE WHEN {FAILED} THEN COALESCE(s.elapsed_s, 0) * COALESCE(s.req_gpus, 0) "
            f"ELSE 0 END) AS gpu_s, "
            f"{sign} * (CASE WHEN {FAILED} THEN COALESCE(s.elapsed_s, 0) * COALESCE(s.req_cpus, 1) "
            f"ELSE 0 END) AS core_s, {sign} * (CASE WHEN {CANCELLED} THEN 1 ELSE 0 END) AS cancelled "
            f"FROM {src} WHERE s.event_time IS NOT NULL AND ({EXPOSED} OR {CANCELLED})")


def hour_cells(src: str, sign: int) -> str:
    """Contribution rows of rollup_hours for the jobs of relation `src` (alias s)."""
    return (f"SELECT (CAST(s.event_time AS INTEGER) / {HOUR}) * {HOUR} AS hour, s.cluster AS cluster, "
            f"IFNULL(s.project, {NUL}) AS project, {sign} AS jobs, "
            f"{sign} * (CASE WHEN {FAILED} THEN 1 ELSE 0 END) AS failures, "
            f"{sign} * (CASE WHEN {FAILED} THEN COALESCE(s.elapsed_s, 0) * COALESCE(s.req_gpus, 0) "
            f"ELSE 0 END) AS gpu_s, "
            f"{sign} * (CASE WHEN {FAILED} THEN COALESCE(s.elapsed_s, 0) * COALESCE(s.req_cpus, 1) "
            f"ELSE 0 END) AS core_s FROM {src} WHERE s.event_time IS NOT NULL AND {EXPOSED}")


def node_cells(src: str, nodes: str, sign: int) -> str:
    """Contribution rows of rollup_nodes_day: the jobs of `src` (alias s) on their nodes in
    relation `nodes` (a failure of an n-node job weighs 1/n on each, n from n_nodes or else
    the job's node count in that same relation)."""
    weight = (f"1.0 / COALESCE(NULLIF(s.n_nodes, 0), (SELECT COUNT(*) FROM {nodes} m "
              f"WHERE m.cluster = s.cluster AND m.job_id = s.job_id), 1)")
    return (f"SELECT (CAST(s.event_time AS INTEGER) / {DAY}) * {DAY} AS day, s.cluster AS cluster, "
            f"n.node AS node, {sign} AS jobs, {sign} * (CASE WHEN {FAILED} THEN 1 ELSE 0 END) "
            f"AS failures, {sign} * (CASE WHEN {FAILED} THEN {weight} ELSE 0 END) AS wfailures "
            f"FROM {src} CROSS JOIN {nodes} n ON n.cluster = s.cluster AND n.job_id = s.job_id "
            f"WHERE s.event_time IS NOT NULL AND {EXPOSED}")


def node_fail_cells(src: str, nodes: str, sign: int) -> str:
    """Contribution rows of rollup_node_fails: the failed jobs of `src` on their nodes."""
    return (f"SELECT (CAST(s.event_time AS INTEGER) / {DAY}) * {DAY} AS day, s.cluster AS cluster, "
            f"n.node AS node, IFNULL(s.user, {NUL}) AS user, {sign} AS failures, "
            f"{sign} * COALESCE(s.elapsed_s, 0) * COALESCE(s.req_gpus, 0) AS gpu_s, "
            f"{sign} * COALESCE(s.elapsed_s, 0) * COALESCE(s.req_cpus, 1) AS core_s "
            f"FROM {src} CROSS JOIN {nodes} n ON n.cluster = s.cluster AND n.job_id = s.job_id "
            f"WHERE s.event_time IS NOT NULL AND {EXPOSED} AND {FAILED}")


#: table -> contribution rows of relation src (alias s) on node relation `nodes`, with a sign.
CELLS = {
    "rollup_jobs_day": lambda src, nodes, sign: job_cells(src, sign),
    "rollup_hours": lambda src, nodes, sign: hour_cells(src, sign),
    "rollup_nodes_day": node_cells,
    "rollup_node_fails": node_fail_cells,
}
#: table -> (key columns, value columns); the first value column counts the cell's rows.
TABLE_KEYS = {
    "rollup_jobs_day": (("day", "cluster", *JOB_KEYS), ("jobs", "failures", "gpu_s", "core_s",
                                                         "cancelled")),
    "rollup_nodes_day": (("day", "cluster", "node"), ("jobs", "failures", "wfailures")),
    "rollup_hours": (("hour", "cluster", "project"), ("jobs", "failures", "gpu_s", "core_s")),
    "rollup_node_fails": (("day", "cluster", "node", "user"), ("failures", "gpu_s", "core_s")),
}


class Rollups(Queries):
    """Builds and refreshes the rollup tables; `usable()` says whether reads may use them."""

    #: False: every read goes to the raw queries (the exactness tests compare the two).
    enabled = True

    def exists(self) -> bool:
        return self.conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND "
                                 "name = 'rollup_state'").fetchone() is not None

    def state(self) -> dict[str, Any] | None:
        """version, watermark, built_at, refreshed_at of the rollups (None: never built)."""
        if not self.exists():
            return None
        row = self.conn.execute("SELECT version, watermark, built_at, refreshed_at FROM "
                                "rollup_state WHERE id = 1").fetchone()
        return None if row is None else dict(zip(("version", "watermark", "built_at",
                                                  "refreshed_at"), row))

    def stale(self) -> bool:
        """Whether jobs or nodes changed since the last refresh (or the rollups are not built)."""
        st = self.state()
        if st is None or st["version"] != ROLLUP_VERSION:
            return True
        hi = self.conn.execute("SELECT COALESCE(MAX(rowid), 0) FROM jobs").fetchone()[0]
        return bool(hi > st["watermark"]
                    or self.conn.execute("SELECT 1 FROM rollup_job_log LIMIT 1").fetchone()
                    or self.conn.execute("SELECT 1 FROM rollup_node_log LIMIT 1").fetchone())

    def usable(self) -> bool:
        """Whether reads may use the rollups now: enabled, built and up to date (refreshed or
        built here when needed). False on a store that cannot be written: raw queries then."""
        if not self.enabled:
            return False
        try:
            if self.stale():
                self.refresh(build=True)
            return True
        except sqlite3.OperationalError:  # read-only file, or a writer holding the lock
            return False

    def refresh(self, build: bool = False) -> dict[str, Any]:
        """Bring the rollups up to date with the jobs and their nodes; with `build`, build them
        first when they are missing or of another version (a full pass over the jobs).
        Returns what was done: {"built": bool, "new": rows read, "changed": jobs re-counted}."""
        st = self.state()
        if st is None or st["version"] != ROLLUP_VERSION:
            if not build:
                return {"built": False, "new": 0, "changed": 0}
            return self._build()
        if not self.stale():  # nothing to do: no write lock taken
            return {"built": False, "new": 0, "changed": 0}
        with self.transaction() as conn:
            wm = int(conn.execute("SELECT watermark FROM rollup_state WHERE id = 1").fetchone()[0])
            hi = int(conn.execute("SELECT COALESCE(MAX(rowid), 0) FROM jobs").fetchone()[0])
            changed = self._affected(conn)
            if hi <= wm and not changed:
                return {"built": False, "new": 0, "changed": 0}
            self._apply(conn, wm, changed)
            conn.execute("DELETE FROM rollup_job_log")
            conn.execute("DELETE FROM rollup_node_log")
            conn.execute("UPDATE rollup_state SET watermark = ?, refreshed_at = ? WHERE id = 1",
                         (hi, int(time.time())))
        return {"built": False, "new": max(hi - wm, 0), "changed": changed}

    def drop(self) -> None:
        """Remove the rollups, their logs and triggers (the next window read builds them)."""
        with self.transaction() as conn:
            for trig in TRIGGERS:
                conn.execute(f"DROP TRIGGER IF EXISTS {trig}")
            for t in (*TABLES, "rollup_state", "rollup_job_log", "rollup_node_log"):
                conn.execute(f"DROP TABLE IF EXISTS {t}")

    # -- internals ---------------------------------------------------------------------------
    def _build(self) -> dict[str, Any]:
        with self.transaction() as conn:
            for sql in DDL:
                conn.execute(sql)
            for t in TABLES:
                conn.execute(f"DELETE FROM {t}")
            conn.execute("DELETE FROM rollup_job_log")
            conn.execute("DELETE FROM rollup_node_log")
            hi = int(conn.execute("SELECT COALESCE(MAX(rowid), 0) FROM jobs").fetchone()[0])
            for table, cells in CELLS.items():
                sql = cells("jobs s", "job_nodes", 1)
                keys, vals = TABLE_KEYS[table]
                conn.execute(f"INSERT INTO {table} ({', '.join(keys + vals)}) SELECT "
                             f"{', '.join(keys)}, {', '.join(f'SUM({v})' for v in vals)} "
                             f"FROM ({sql}) GROUP BY {', '.join(keys)}")
            now = int(time.time())
            conn.execute("INSERT OR REPLACE INTO rollup_state (id, version, watermark, built_at, "
                         "refreshed_at) VALUES (1, ?, ?, ?, ?)", (ROLLUP_VERSION, hi, now, now))
        return {"built": True, "new": hi, "changed": 0}

    def _affected(self, conn: sqlite3.Connection) -> int:
        """Fill temp.rollup_aff with the jobs counted before whose row or nodes changed."""
        conn.execute("CREATE TEMP TABLE IF NOT EXISTS rollup_aff (cluster TEXT, job_id TEXT, "
                     "PRIMARY KEY (cluster, job_id)) WITHOUT ROWID")
        conn.execute("DELETE FROM temp.rollup_aff")
        conn.execute("INSERT OR IGNORE INTO temp.rollup_aff SELECT cluster, job_id FROM "
                     "rollup_job_log UNION SELECT cluster, job_id FROM rollup_node_log")
        return int(conn.execute("SELECT COUNT(*) FROM temp.rollup_aff").fetchone()[0])

    def _apply(self, conn: sqlite3.Connection, wm: int, changed: int) -> None:
        """Add the new rows (row id above `wm`) and, for the affected jobs, subtract what they
        counted at the last refresh and add what they count now."""
        cols = ", ".join(f"j.{c}" for c in _ROW_COLS)
        # the rows as they are now, read once (by row id, then by key: CROSS JOIN keeps the
        # few affected keys outside) for the four tables' deltas
        conn.execute("DROP TABLE IF EXISTS temp.rollup_new")
        conn.execute(f"CREATE TEMP TABLE rollup_new AS SELECT {cols} FROM jobs j NOT INDEXED "
                     f"WHERE j.rowid > {int(wm)} UNION ALL SELECT {cols} FROM temp.rollup_aff a "
                     f"CROSS JOIN jobs j ON j.cluster = a.cluster AND j.job_id = a.job_id "
                     f"WHERE j.rowid <= {int(wm)}")
        parts = {t: [cells("temp.rollup_new s", "job_nodes", 1)] for t, cells in CELLS.items()}
        if changed:
            self._old_state(conn)
            for t, cells in CELLS.items():
                parts[t].append(cells("temp.rollup_old s", "temp.rollup_old_nodes", -1))
        for table, sqls in parts.items():
            keys, vals = TABLE_KEYS[table]
            k, sums = ", ".join(keys), ", ".join(f"SUM({v}) AS {v}" for v in vals)
            nonzero = " OR ".join(f"ABS(SUM({v})) > 1e-9" if v == "wfailures" else f"SUM({v}) != 0"
                                  for v in vals)
            conn.execute("DROP TABLE IF EXISTS temp.rollup_delta")
            conn.execute(f"CREATE TEMP TABLE rollup_delta AS SELECT {k}, {sums} FROM "
                         f"({' UNION ALL '.join(sqls)}) GROUP BY {k} HAVING {nonzero}")
            upd = ", ".join(f"{v} = {table}.{v} + excluded.{v}" for v in vals)
            conn.execute(f"INSERT INTO {table} ({k}, {', '.join(vals)}) SELECT {k}, "
                         f"{', '.join(vals)} FROM temp.rollup_delta WHERE true "
                         f"ON CONFLICT ({k}) DO UPDATE SET {upd}")
            if changed:  # cells emptied by the moves go away
                conn.execute(f"DELETE FROM {table} WHERE {vals[0]} = 0 "
                             f"{'AND cancelled = 0 ' if 'cancelled' in vals else ''}"
                             f"AND ({k}) IN (SELECT {k} FROM temp.rollup_delta)")
            conn.execute("DROP TABLE temp.rollup_delta")

    def _old_state(self, conn: sqlite3.Connection) -> None:
        """temp.rollup_old: each affected job's row as of the last refresh (its first logged
        old values, else its current row); temp.rollup_old_nodes: its nodes then (the current
        ones, less those added since, plus those removed since)."""
        cols = ", ".join(_ROW_COLS)
        conn.execute("DROP TABLE IF EXISTS temp.rollup_old")
        conn.execute(
            f"CREATE TEMP TABLE rollup_old AS SELECT {cols} FROM rollup_job_log WHERE seq IN "
            f"(SELECT MIN(seq) FROM rollup_job_log GROUP BY cluster, job_id) UNION ALL "
            f"SELECT {', '.join('j.' + c for c in _ROW_COLS)} FROM temp.rollup_aff a CROSS JOIN jobs j "
            f"ON j.cluster = a.cluster AND j.job_id = a.job_id WHERE NOT EXISTS (SELECT 1 FROM "
            f"rollup_job_log l WHERE l.cluster = a.cluster AND l.job_id = a.job_id)")
        conn.execute("DROP TABLE IF EXISTS temp.rollup_old_nodes")
        conn.execute(
            "CREATE TEMP TABLE rollup_old_nodes AS "
            "WITH net AS (SELECT cluster, job_id, node, SUM(sign) AS net FROM rollup_node_log "
            "GROUP BY cluster, job_id, node) "
            "SELECT n.cluster, n.job_id, n.node FROM temp.rollup_aff a CROSS JOIN job_nodes n "
            "ON n.cluster = a.cluster AND n.job_id = a.job_id WHERE NOT EXISTS (SELECT 1 FROM net "
            "WHERE net.cluster = n.cluster AND net.job_id = n.job_id AND net.node = n.node "
            "AND net.net > 0) UNION SELECT cluster, job_id, node FROM net WHERE net < 0")
        conn.execute("CREATE INDEX temp.rollup_old_nodes_job ON rollup_old_nodes(cluster, job_id)")
