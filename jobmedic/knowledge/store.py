"""The knowledge store: one SQLite file (WAL, busy timeout, versioned migrations).

`Store` is the only place in jobmedic that holds SQL. Its core (this module) owns the
connection, migrations, transactions, bulk upserts and the store-wide facts (counts, ranges);
query families for analyzers, remedies and models live in sibling modules as mixins so that
each stays small, and all of them take a `scope` (the projects a caller may see) that is
applied inside the SQL.
"""
from __future__ import annotations

import re
import sqlite3
import time
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import sqlite_utils

from jobmedic.knowledge.errors import SchemaTooNew, StoreError
from jobmedic.knowledge.migrations import FAILURE_EVENT_COLUMNS, JOB_COLUMNS, MIGRATIONS
from jobmedic.knowledge.queries import QueriesMixin

SCHEMA_VERSION = max(v for v, _, _ in MIGRATIONS)
Scope = Sequence[str] | None

_NOT_NULL_JOB_COLUMNS = ("cluster", "job_id", "state", "source")
_INDEX_RE = re.compile(r"^\s*CREATE\s+INDEX\s+(?:IF\s+NOT\s+EXISTS\s+)?(\w+)\s+ON\s+(\w+)",
                       re.IGNORECASE)
_DROP_INDEX_RE = re.compile(r"^\s*DROP\s+INDEX\s+(?:IF\s+EXISTS\s+)?(\w+)", re.IGNORECASE)


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


def expected_indexes(version: int) -> dict[str, tuple[str, str]]:
    """The secondary indexes the migrations up to `version` create: name -> (table, SQL)."""
    out: dict[str, tuple[str, str]] = {}
    for v, _title, statements in MIGRATIONS:
        if v > version:
            break
        for sql in statements:
            m = _INDEX_RE.match(sql)
            if m:
                out[m.group(1)] = (m.group(2), sql)
            d = _DROP_INDEX_RE.match(sql)
            if d:
                out.pop(d.group(1), None)
    return out


_FE_COLS = FAILURE_EVENT_COLUMNS + ("dedup_key",)
_INSERT_EVENT_SQL = (
    f"INSERT INTO failure_events ({', '.join(_FE_COLS)}) VALUES ({', '.join('?' * len(_FE_COLS))}) "
    "ON CONFLICT(dedup_key) DO NOTHING"
)


def scope_clause(scope: Scope, column: str = "project") -> tuple[str, list[Any]]:
    """SQL fragment restricting `column` to the scope; ``("1", [])`` when unrestricted."""
    if scope is None:
        return "1", []
    scope = list(scope)
    if not scope:
        return "0", []
    return f"{column} IN ({', '.join('?' * len(scope))})", scope


class Store(QueriesMixin):
    """The jobmedic knowledge store. Open with a path (or ``:memory:``) and use the methods."""

    def __init__(self, path: str | Path = ":memory:", *, busy_timeout_ms: int = 10_000,
                 migrate: bool = True) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).expanduser().parent.mkdir(parents=True, exist_ok=True)
        try:
            self.conn = sqlite3.connect(self.path, timeout=busy_timeout_ms / 1000,
                                        isolation_level=None, check_same_thread=False)
            self.conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            if self.path != ":memory:":
                self.conn.execute("PRAGMA journal_mode = WAL")
            self.conn.execute("PRAGMA synchronous = NORMAL")
            self.conn.execute("PRAGMA foreign_keys = ON")
            self.conn.execute("PRAGMA temp_store = MEMORY")
            self.conn.execute("PRAGMA cache_size = -65536")
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot open the store at {self.path}: {exc}",
                             hint="check the path given by --db or JOBMEDIC_DB") from exc
        self.db = sqlite_utils.Database(self.conn)
        self._in_tx = False
        if migrate:
            self.migrate()

    # -- lifecycle ---------------------------------------------------------------------------
    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def schema_version(self) -> int:
        return int(self.conn.execute("PRAGMA user_version").fetchone()[0])

    def migrate(self) -> int:
        """Apply pending migrations; refuse a store written by a newer jobmedic."""
        current = self.schema_version
        if current > SCHEMA_VERSION:
            raise SchemaTooNew(
                f"the store at {self.path} has schema version {current}, newer than this "
                f"jobmedic ({SCHEMA_VERSION})", hint="upgrade jobmedic or use another --db")
        for version, _title, statements in MIGRATIONS:
            if version <= current:
                continue
            with self.transaction():
                for sql in statements:
                    self.conn.execute(sql)
                self.conn.execute(f"PRAGMA user_version = {version}")
        self.ensure_indexes()
        return self.schema_version

    def ensure_indexes(self) -> list[str]:
        """Recreate any secondary index the migrations define but the file lacks.

        A bulk load drops the indexes of empty tables and rebuilds them at the end; if that
        process was killed in between, the next open puts them back. Returns the names built.
        """
        want = expected_indexes(self.schema_version)
        have = {r[0] for r in self.conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        if not set(want) - have:
            return []
        built = []
        with self.transaction() as conn:
            have = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
            for name, (_table, sql) in want.items():
                if name not in have:
                    conn.execute(sql)
                    built.append(name)
        return built

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (BEGIN IMMEDIATE): all of it lands, or none of it."""
        if self._in_tx:
            yield self.conn
            return
        self.conn.execute("BEGIN IMMEDIATE")
        self._in_tx = True
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        else:
            self.conn.execute("COMMIT")
        finally:
            self._in_tx = False

    # -- bulk writes -------------------------------------------------------------------------
    def upsert_jobs(self, rows: Iterable[Sequence[Any]],
                    columns: Sequence[str] = JOB_COLUMNS) -> tuple[int, int]:
        """Insert or update jobs given as tuples in `columns` order (default `JOB_COLUMNS`).

        Keyed on (cluster, job_id): identical re-ingests change nothing, a running job that has
        ended is replaced with its final state, and missing (None) values, like columns left
        out of `columns`, keep what was known. Naming only the columns a source fills is the
        fast path (fewer values to bind per row). Returns (inserted, updated). Call inside
        `transaction()` for one atomic batch.
        """
        sql = _upsert_jobs_sql(tuple(columns))
        with self.transaction() as conn:
            before_rowid = conn.execute("SELECT COALESCE(MAX(rowid), 0) FROM jobs").fetchone()[0]
            before_changes = conn.total_changes
            conn.executemany(sql, rows)
            changed = conn.total_changes - before_changes
            after_rowid = conn.execute("SELECT COALESCE(MAX(rowid), 0) FROM jobs").fetchone()[0]
        inserted = after_rowid - before_rowid
        return inserted, changed - inserted

    # -- bulk loads --------------------------------------------------------------------------
    BULK_TABLES = ("jobs", "job_nodes", "failure_events")

    def drop_indexes_of_empty_tables(self, tables: Sequence[str] = BULK_TABLES) -> list[str]:
        """Before a bulk load: drop the secondary (non-unique) indexes of those `tables` that are
        empty, so rows go in without index upkeep; `ensure_indexes` builds them back in one sort
        each (and runs on every open, so a killed load cannot leave them missing).
        Returns the names dropped."""
        want = expected_indexes(self.schema_version)
        dropped = []
        with self.transaction() as conn:
            for table in tables:
                if conn.execute(f"SELECT 1 FROM {table} LIMIT 1").fetchone() is not None:
                    continue
                for name, (tab, _sql) in want.items():
                    if tab == table:
                        conn.execute(f"DROP INDEX IF EXISTS {name}")
                        dropped.append(name)
        return dropped

    def rebuild_indexes(self) -> list[str]:
        """After a bulk load: build the dropped indexes back (sorting with worker threads)."""
        self.conn.execute("PRAGMA threads = 2")
        try:
            return self.ensure_indexes()
        finally:
            self.conn.execute("PRAGMA threads = 0")

    def add_job_nodes(self, rows: Iterable[tuple[str, str, str]]) -> int:
        """Record (cluster, job_id, node) rows; duplicates are ignored."""
        with self.transaction() as conn:
            before = conn.total_changes
            conn.executemany(
                "INSERT OR IGNORE INTO job_nodes (cluster, job_id, node) VALUES (?, ?, ?)", rows)
            return conn.total_changes - before

    def add_failure_events(self, rows: Iterable[Sequence[Any]]) -> int:
        """Insert failure events given as tuples in FAILURE_EVENT_COLUMNS order + dedup_key.

        The dedup key (source-specific, e.g. cluster/job/timestamp/type) makes re-ingest a no-op.
        Returns the number of new events.
        """
        with self.transaction() as conn:
            before = conn.total_changes
            conn.executemany(_INSERT_EVENT_SQL, rows)
            return conn.total_changes - before

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
                "INSERT INTO ingest_runs (source, file, started_at, status) VALUES (?, ?, ?, ?)",
                (source, file, int(time.time()), "running"))
            return int(cur.lastrowid)

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

    # -- store-wide facts --------------------------------------------------------------------
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
        j = self.conn.execute(
            f"SELECT MIN(submit_time), MAX(COALESCE(end_time, submit_time)) FROM jobs WHERE {where}",
            params).fetchone()
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
        if self.path == ":memory:":
            return None
        p = Path(self.path)
        return sum(q.stat().st_size for q in (p, Path(self.path + "-wal")) if q.exists())
