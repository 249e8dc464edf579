"""One SQLite connection per worker thread, for the HTTP server and the chat UI.

A single sqlite3 connection shared by threads would interleave their transactions (and the
Store's own transaction flag is per instance), so each thread that touches the store gets its
own `Store` on the same file. SQLite's WAL mode lets readers run beside one writer; writers
queue on the busy timeout behind `BEGIN IMMEDIATE`, so concurrent writes all land.
"""
from __future__ import annotations

import threading
from pathlib import Path

from jobmedic.knowledge.store import Store


class StorePool:
    """Hands each thread its own `Store` on `path`; `close()` closes them all."""

    def __init__(self, path: str | Path, busy_timeout_ms: int = 30_000) -> None:
        self.path = str(path)
        if self.path == ":memory:":
            raise ValueError("a StorePool needs a store file: an in-memory store cannot be "
                             "shared between threads")
        self.busy_timeout_ms = busy_timeout_ms
        self._local = threading.local()
        self._lock = threading.Lock()
        self._all: list[Store] = []
        first = Store(self.path, busy_timeout_ms=busy_timeout_ms)  # migrates once, up front
        # The per-day rollups are built (or brought up to date) here, once, rather than by the
        # first window read: a build inside a request changes the store's files, so the result
        # cache would file that answer under a version that is already gone.
        first.rollups.usable()
        self._local.store = first
        self._all.append(first)

    def get(self) -> Store:
        """This thread's Store (opened on first use)."""
        store = getattr(self._local, "store", None)
        if store is None:
            store = Store(self.path, busy_timeout_ms=self.busy_timeout_ms, migrate=False)
            self._local.store = store
            with self._lock:
                self._all.append(store)
        return store

    @property
    def size(self) -> int:
        """Connections opened so far (one per thread that used the store)."""
        with self._lock:
            return len(self._all)

    def close(self) -> None:
        with self._lock:
            stores, self._all = self._all, []
        for s in stores:
            try:
                s.close()
            except Exception:  # noqa: BLE001, S110 - closing at shutdown must not raise
                pass
