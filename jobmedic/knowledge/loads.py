"""Bulk loads: the writes of ingest (jobs, nodes, failure events, rejects, ingest runs) and
the log templates the miner keeps, each batch in one transaction."""
from __future__ import annotations

import os
import socket
import sqlite3
import time
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Any

from jobmedic.knowledge.db import Queries, Scope, expected_indexes
from jobmedic.knowledge.errors import StoreError
from jobmedic.knowledge.migrations import FAILURE_EVENT_COLUMNS, JOB_COLUMNS
from jobmedic.knowledge.ownership import check_event_rows

_NOT_NULL_JOB_COLUMNS = ("cluster", "job_id", "state", "source")
#: WAL pages between automatic checkpoints during a bulk load (256 MB of 4 KB pages; the
#: default is 1,000): bounded, so a load of any size keeps the log to about this much.
BULK_CHECKPOINT_PAGES = 65_536


@lru_cache(maxsize=64)
def _upsert_jobs_sql(columns: tuple[str, ...]) -> str:
    """INSERT .. ON CONFLICT(cluster, job_id) DO UPDATE for these columns: a NULL keeps the
    known value, and a row that would not change is not written (so re-ingest is a no-op)."""
    unknown = [c for c in columns if c not in JOB_COLUMNS]
    missing = [c for c in _NOT_NULL_JOB_COLUMNS if c not in columns]
    if unknown or missing or len(set(columns)) != len(columns):
        raise StoreError(f"upsert_jobs: bad column list (unknown {unknown}, missing {missing})")
    upd = [c for c in columns if c not in ("cluster", "job_id")]
    return (
        f"INSERT INTO jobs ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))}) "
        "ON CONFLICT(cluster, job_id) DO UPDATE SET "
        + ", ".join(f"{c} = COALESCE(excluded.{c}, jobs.{c})" for c in upd)
        + " WHERE (" + ", ".join(f"jobs.{c}" for c in upd) + ") IS NOT ("
        + ", ".join(f"COALESCE(excluded.{c}, jobs.{c})" for c in upd) + ")"
    )


@lru_cache(maxsize=64)
def _insert_jobs_sql(columns: tuple[str, ...]) -> str:
    return f"INSERT INTO jobs ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"


_FE_COLS = FAILURE_EVENT_COLUMNS + ("dedup_key",)
#: A job's own failure event (dedup key `job:<cluster>:<job_id>`) follows its job: when a
#: later record of the job (its final state, its steps) classifies it anew, the event is
#: re-derived (type, blame, template, text, evidence, time, node); its resolution is kept.
#: Other events (Kubernetes, Run:AI, recorded ones) are facts of their time: never rewritten.
_REDERIVED = ("failure_type", "blame", "phase", "timestamp", "node_name", "error_message",
              "template_id", "evidence")
_INSERT_EVENT_SQL = (
    f"INSERT INTO failure_events ({', '.join(_FE_COLS)}) VALUES ({', '.join('?' * len(_FE_COLS))}) "
    "ON CONFLICT(dedup_key) DO UPDATE SET "
    + ", ".join(f"{c} = COALESCE(excluded.{c}, failure_events.{c})" for c in _REDERIVED)
    + " WHERE failure_events.dedup_key LIKE 'job:%' AND ("
    + ", ".join(f"failure_events.{c}" for c in _REDERIVED) + ") IS NOT ("
    + ", ".join(f"COALESCE(excluded.{c}, failure_events.{c})" for c in _REDERIVED) + ")"
)


class BulkLoads(Queries):
    """Ingest's writes."""

    #: A bulk load into an empty jobs table is on (see `_insert_fresh`).
    _fresh_jobs = False
    #: The connection's checkpoint interval before a bulk load raised it (None: not raised).
    _checkpoint_pages: int | None = None

    def upsert_jobs(self, rows: Iterable[Sequence[Any]],
                    columns: Sequence[str] = JOB_COLUMNS) -> tuple[int, int]:
        """Insert or update jobs given as tuples in `columns` order (default `JOB_COLUMNS`).

        Keyed on (cluster, job_id): identical re-ingests change nothing, a running job that has
        ended is replaced with its final state, and missing (None) values, like columns left
        out of `columns`, keep what was known. Naming only the columns a source fills is the
        fast path (fewer values to bind per row). Returns (inserted, updated). Call inside
        `transaction()` for one atomic batch.
        """
        columns = tuple(columns)
        sql = _upsert_jobs_sql(columns)
        with self.transaction() as conn:
            before_rowid = conn.execute("SELECT COALESCE(MAX(rowid), 0) FROM jobs").fetchone()[0]
            # the statements' own changes (rowcount: sqlite3_changes summed), not the rows
            # triggers on jobs write elsewhere (total_changes counts those too)
            changed = None
            if self._fresh_jobs:
                rows = rows if isinstance(rows, list) else list(rows)
                changed = self._insert_fresh(conn, rows, columns)
            if changed is None:
                changed = conn.executemany(sql, rows).rowcount
            after_rowid = conn.execute("SELECT COALESCE(MAX(rowid), 0) FROM jobs").fetchone()[0]
        inserted = after_rowid - before_rowid
        return inserted, changed - inserted

    def _insert_fresh(self, conn: sqlite3.Connection, rows: list[Sequence[Any]],
                      columns: tuple[str, ...]) -> int | None:
        """A batch of a bulk load into an empty jobs table, as a plain INSERT: it skips the
        upsert's conflict clause (about a fifth of the write's CPU on the Google table).

        While no job of the load repeats, every row is new, and then the INSERT writes what
        the upsert would (the same values and rowids; no UPDATE for triggers to see). A key
        seen before (in this batch, an earlier one, or written meanwhile by another process),
        or any other error, rolls the attempt back to a savepoint and returns None: the caller
        runs the upsert, and the rest of the load goes through the upsert as well. Returns
        the rows inserted."""
        conn.execute("SAVEPOINT jobs_fresh")
        try:
            n = conn.executemany(_insert_jobs_sql(columns), rows).rowcount
        except Exception:  # noqa: BLE001 - the upsert runs the batch again (and raises its own)
            conn.execute("ROLLBACK TO jobs_fresh")
            conn.execute("RELEASE jobs_fresh")
            self._fresh_jobs = False
            return None
        conn.execute("RELEASE jobs_fresh")
        return n

    def drop_array_ranges(self, arrays: Iterable[tuple[str, str]]) -> int:
        """Remove stored rows of pending array *ranges* (`123_[1-3]`, kept as one job before
        ingest expanded ranges into tasks) of these (cluster, array_id) arrays, with their
        nodes and failure events: an ingest that brings the array's tasks replaces them, so no
        job is counted twice. Ingest never writes a range row itself any more, so any such row
        is an old one. A primary-key range per array (`123_[` up to `123_\\`). Returns the
        jobs removed."""
        removed = 0
        with self.transaction() as conn:
            for cluster, array_id in arrays:
                lo, hi = f"{array_id}_[", f"{array_id}_\\"  # '\\' sorts right after '['
                ids = [r[0] for r in conn.execute(
                    "SELECT job_id FROM jobs WHERE cluster = ? AND job_id >= ? AND job_id < ?",
                    (cluster, lo, hi))]
                if not ids:
                    continue
                for table in ("failure_events", "job_nodes", "jobs"):
                    conn.executemany(f"DELETE FROM {table} WHERE cluster = ? AND job_id = ?",
                                     [(cluster, j) for j in ids])
                removed += len(ids)
        return removed

    # -- bulk loads --------------------------------------------------------------------------
    BULK_TABLES = ("jobs", "job_nodes", "failure_events")

    def drop_indexes_of_empty_tables(self, tables: Sequence[str] = BULK_TABLES) -> list[str]:
        """Before a bulk load: drop the secondary (non-unique) indexes of those `tables` that are
        empty, so rows go in without index upkeep; `ensure_indexes` builds them back in one sort
        each (and runs on every open, so a killed load cannot leave them missing).
        Returns the names dropped."""
        want = expected_indexes(self.db.schema_version)
        dropped = []
        with self.transaction() as conn:
            for table in tables:
                if conn.execute(f"SELECT 1 FROM {table} LIMIT 1").fetchone() is not None:
                    continue
                if table == "jobs":
                    self._fresh_jobs = True  # until rebuild_indexes, or a repeated key
                for name, (tab, _sql) in want.items():
                    if tab == table:
                        conn.execute(f"DROP INDEX IF EXISTS {name}")
                        dropped.append(name)
        if dropped and self.db.path != ":memory:" and self._checkpoint_pages is None:
            # fewer WAL checkpoints while the load runs: each one syncs the log and the file
            # (62 syncs on the Google table with the default 1,000 pages); commits go to the
            # log as before, under the same synchronous setting, so a crash loses or breaks
            # nothing that it would not have before
            self._checkpoint_pages = self.conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0]
            self.conn.execute(f"PRAGMA wal_autocheckpoint = {BULK_CHECKPOINT_PAGES}")
        return dropped

    def rebuild_indexes(self) -> list[str]:
        """After a bulk load: build the dropped indexes back (sorting with worker threads)."""
        self._fresh_jobs = False
        if self._checkpoint_pages is not None:  # the index build's commit checkpoints the load
            self.conn.execute(f"PRAGMA wal_autocheckpoint = {int(self._checkpoint_pages)}")
            self._checkpoint_pages = None
        self.conn.execute("PRAGMA threads = 2")
        try:
            return self.db.ensure_indexes()
        finally:
            self.conn.execute("PRAGMA threads = 0")

    def add_job_nodes(self, rows: Iterable[tuple[str, str, str]]) -> int:
        """Record (cluster, job_id, node) rows; duplicates are ignored."""
        with self.transaction() as conn:
            before = conn.total_changes
            conn.executemany(
                "INSERT OR IGNORE INTO job_nodes (cluster, job_id, node) VALUES (?, ?, ?)", rows)
            return conn.total_changes - before

    def add_failure_events(self, rows: Iterable[Sequence[Any]], scope: Scope = None) -> int:
        """Insert failure events given as tuples in FAILURE_EVENT_COLUMNS order + dedup_key.

        The dedup key (source-specific, e.g. cluster/job/timestamp/type) makes re-ingest a no-op.
        A scoped caller's rows are checked first (ownership.check_event_rows: ScopeError for
        another project's job), in the same transaction. A job's own event is re-derived when
        its job is (see _REDERIVED). Returns the number of events added or re-derived.
        """
        with self.transaction() as conn:
            if scope is not None:
                rows = list(rows)
                check_event_rows(conn, rows, scope)
            # the statement's own changes, not rows triggers on failure_events write elsewhere
            return conn.executemany(_INSERT_EVENT_SQL, rows).rowcount

    def link_events_to_jobs(self) -> int:
        """Give failure events that lack a project or job name (and user) those of their job.

        Sources such as raw task events name the job but not its owner; once the job is in
        `jobs` (ingested before or after), its project makes the event visible to scoped
        queries. Returns the number of events updated.
        """
        with self.transaction() as conn:
            before = conn.total_changes
            conn.execute(
                "UPDATE failure_events SET project = COALESCE(failure_events.project, j.project), "
                "user = COALESCE(failure_events.user, j.user), "
                "job_name = COALESCE(failure_events.job_name, j.name) "
                "FROM jobs j WHERE (failure_events.project IS NULL OR failure_events.job_name IS NULL) "
                "AND j.cluster = failure_events.cluster AND j.job_id = failure_events.job_id "
                "AND ((failure_events.project IS NULL AND j.project IS NOT NULL) "
                "OR (failure_events.job_name IS NULL AND j.name IS NOT NULL))")
            return conn.total_changes - before

    def add_rejects(self, rows: Iterable[tuple[str, str | None, int | None, str, str | None]]) -> int:
        """Record input that could not be ingested: (source, file, line, reason, raw)."""
        now = int(time.time())
        rows = [(s, f, ln, reason, (raw or "")[:2000], now) for s, f, ln, reason, raw in rows]
        with self.transaction() as conn:
            conn.executemany(
                "INSERT INTO rejects (source, file, line, reason, raw, recorded_at) "
                "VALUES (?, ?, ?, ?, ?, ?)", rows)
        return len(rows)

    def clear_rejects(self, source: str, file: str) -> None:
        """Forget earlier rejects of one file, so re-ingesting it does not duplicate them."""
        with self.transaction() as conn:
            conn.execute("DELETE FROM rejects WHERE source = ? AND file = ?", (source, file))

    def start_ingest_run(self, source: str, file: str) -> int:
        with self.transaction() as conn:
            cur = conn.execute(
                "INSERT INTO ingest_runs (source, file, started_at, status, pid, host) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (source, file, int(time.time()), "running", os.getpid(), socket.gethostname()))
            return int(cur.lastrowid)

    def mark_interrupted_runs(self) -> int:
        """Runs left `running` by a process that no longer exists (killed, or the machine went
        down) become `interrupted`; a run of a live process, or of another host whose
        processes cannot be seen from here, is left alone. Returns how many were marked."""
        rows = self.conn.execute(
            "SELECT id, pid, host FROM ingest_runs WHERE status = 'running'").fetchall()
        here = socket.gethostname()
        dead = [i for i, pid, host in rows if pid is None or host == here and not _alive(pid)]
        if not dead:
            return 0
        with self.transaction() as conn:
            conn.executemany("UPDATE ingest_runs SET status = 'interrupted', finished_at = ? "
                             "WHERE id = ? AND status = 'running'",
                             [(int(time.time()), i) for i in dead])
        return len(dead)

    def finish_ingest_run(self, run_id: int, status: str, read: int, inserted: int,
                          updated: int, rejected: int) -> None:
        with self.transaction() as conn:
            conn.execute(
                "UPDATE ingest_runs SET finished_at = ?, status = ?, read = ?, inserted = ?, "
                "updated = ?, rejected = ? WHERE id = ?",
                (int(time.time()), status, read, inserted, updated, rejected, run_id))

    # -- templates ---------------------------------------------------------------------------
    def load_templates(self) -> list[tuple[int, str]]:
        """All stored log templates, in id order (to re-seed the template miner)."""
        return [tuple(r) for r in self.conn.execute(
            "SELECT template_id, template FROM templates ORDER BY template_id")]

    def save_templates(self, rows: Iterable[tuple[int, str, int, str | None, int | None]]) -> None:
        """Upsert (template_id, template, added_count, failure_type, seen_at) rows."""
        with self.transaction() as conn:
            conn.executemany(
                "INSERT INTO templates (template_id, template, count, failure_type, first_seen, "
                "last_seen) VALUES (?1, ?2, ?3, ?4, ?5, ?5) ON CONFLICT(template_id) DO UPDATE "
                "SET template = excluded.template, count = templates.count + excluded.count, "
                "failure_type = COALESCE(templates.failure_type, excluded.failure_type), "
                "last_seen = MAX(COALESCE(templates.last_seen, 0), COALESCE(excluded.last_seen, 0))",
                rows)


def _alive(pid: int) -> bool:
    """Whether a process with this id exists on this host."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # it exists (another user's) or cannot be told: leave the run alone
    return True
