"""One SQLite connection per worker thread, for the HTTP server and the chat UI.

A single sqlite3 connection shared by threads would interleave their transactions (and the
Store's own transaction flag is per instance), so each thread that touches the store gets its
own `Store` on the same file. SQLite's WAL mode lets readers run beside one writer; writers
queue on the busy timeout behind `BEGIN IMMEDIATE`, so concurrent writes all land.
"""
from __future__ import annotations

import logging
import os
import sqlite3
import threading
from pathlib import Path
from typing import Any

from jobmedic.knowledge import entity_summary
from jobmedic.knowledge.errors import ModelError
from jobmedic.knowledge.store import Store
from jobmedic.models import artifacts

log = logging.getLogger("jobmedic.server")
# the models whose predictions read the per-entity summary (models/features.spec_features)
SUMMARY_MODELS = ("failure", "runtime", "memory")


class StorePool:
    """Hands each thread its own `Store` on `path`; `close()` closes them all."""

    def __init__(self, path: str | Path, busy_timeout_ms: int = 30_000,
                 models_dir: str | Path | None = None) -> None:
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
        # So is the per-entity summary that predict reads (~47 s to build at 1M jobs), when the
        # store has models to predict with: `summary_at_open` says what was done.
        self.summary_at_open = summary_at_open(first, models_dir)
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


def has_models(models_dir: str | Path | None) -> bool:
    """Whether `models_dir` holds a current failure, runtime or memory model."""
    if models_dir is None:
        return False
    for kind in SUMMARY_MODELS:
        try:
            artifacts.current(models_dir, kind)
            return True
        except ModelError:
            continue
    return False


def writable(store: Store) -> bool:
    """Whether this process may write the store: its file and folder (WAL files beside it)
    and the connection (`PRAGMA query_only`)."""
    path = Path(store.path)
    if not (os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)):
        return False
    return not store.conn.execute("PRAGMA query_only").fetchone()[0]


def summary_at_open(store: Store, models_dir: str | Path | None) -> dict[str, Any]:
    """Bring the per-entity summary up to the newest ended job when the pool opens a writable
    store with trained models (incremental from its watermark, a build when there is none),
    so the first predict does not build it inside a request (models/features.summary_ready
    stays as the fallback). Returns {mode: skipped|failed|none|incremental|rebuild, why?, ...};
    a failure is logged and never stops the server."""
    if not has_models(models_dir):
        return {"mode": "skipped", "why": "no trained models"}
    if not writable(store):
        log.info("the store %s is read-only: the per-entity summary is not refreshed at open",
                 store.path)
        return {"mode": "skipped", "why": "read-only store"}
    try:
        done = entity_summary.refresh(store, build=True)
    except (sqlite3.Error, OSError, MemoryError) as exc:
        log.warning("could not bring the per-entity summary of %s up to date at open (%s); "
                    "predict will refresh it or read each entity's history", store.path, exc)
        return {"mode": "failed", "why": str(exc)}
    if done["mode"] != "none":
        log.info("per-entity summary at open: %s of %d jobs in %.1f s", done["mode"], done["jobs"],
                 done["seconds"])
    return done
