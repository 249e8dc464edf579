"""The store's core: one SQLite connection (WAL, busy timeout), versioned migrations, atomic
transactions and the scope clause every query family applies.

Query families (statistics, remedies, features, vocabulary, sessions, bulk loads) are small
classes that each hold the one `Db` they query (`Queries`); the `Store` facade composes them.
Nothing here imports a query family, so the knowledge package has no import cycle.
"""
from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from jobmedic.core.scope import Scope
from jobmedic.knowledge.errors import SchemaTooNew, StoreError
from jobmedic.knowledge.migrations import MIGRATIONS

__all__ = ["SCHEMA_VERSION", "Db", "Queries", "Scope", "expected_indexes", "scope_clause"]

SCHEMA_VERSION = max(v for v, _, _ in MIGRATIONS)

_INDEX_RE = re.compile(r"^\s*CREATE\s+INDEX\s+(?:IF\s+NOT\s+EXISTS\s+)?(\w+)\s+ON\s+(\w+)",
                       re.IGNORECASE)
_DROP_INDEX_RE = re.compile(r"^\s*DROP\s+INDEX\s+(?:IF\s+EXISTS\s+)?(\w+)", re.IGNORECASE)


def rows_of(cur: Any) -> list[dict[str, Any]]:
    """A cursor's remaining rows as dicts keyed by its column names."""
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r)) for r in cur.fetchall()]


def scope_clause(scope: Scope, column: str = "project") -> tuple[str, list[Any]]:
    """SQL fragment restricting `column` to the scope; ``("1", [])`` when unrestricted."""
    if scope is None:
        return "1", []
    scope = list(scope)
    if not scope:
        return "0", []
    return f"{column} IN ({', '.join('?' * len(scope))})", scope


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


class Db:
    """One open store file (or ``:memory:``): the connection, migrations and transactions."""

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
        self._in_tx = False
        if migrate:
            self.migrate()

    def close(self) -> None:
        self.conn.close()

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


class Queries:
    """Base of a query family: it borrows the store's one `Db` (composition, not a mixin)."""

    def __init__(self, db: Db) -> None:
        self.db = db

    @property
    def conn(self) -> sqlite3.Connection:
        return self.db.conn

    def transaction(self) -> Any:
        """The store's write transaction (see `Db.transaction`)."""
        return self.db.transaction()
