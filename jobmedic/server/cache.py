"""A result cache for the read-only actions of the HTTP API (analyze, stats).

Dashboards and many clients ask the same question over and over; on a million-job store a
stats answer costs hundreds of milliseconds of CPU, so recomputing it per request cannot keep
up with a few dozen clients on a small machine. An answer depends only on the request, the
caller's scope, "now" (the window's end, to the second) and the store's contents, so the cache
keys on the first three and remembers the store's version at the time it computed.

The version is read from the files themselves (the database and its write-ahead log: sizes,
modification times, and the WAL header whose salts change whenever the log restarts), so a
write by any connection or process - a record_outcome through this server, an ingest running
beside it - makes every cached answer stale. It is read before computing, so an answer that
raced with a write is never served for the newer data. Identical requests arriving together
are computed once (single flight).
"""
from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from jobmedic.tools import CACHEABLE_ACTIONS

#: The actions whose answers may be cached: those whose Tool declares cacheable=True.
CACHEABLE = CACHEABLE_ACTIONS


def store_version(db_path: str) -> tuple[Any, ...]:
    """A signature that changes whenever anything commits to the store at `db_path`."""
    out: list[Any] = []
    for path in (db_path, db_path + "-wal"):
        try:
            st = os.stat(path)
        except FileNotFoundError:
            out.append(None)
            continue
        out += [st.st_size, st.st_mtime_ns]
    try:
        with open(db_path + "-wal", "rb") as fh:
            out.append(fh.read(32))  # checkpoint sequence and salts
    except FileNotFoundError:
        out.append(None)
    return tuple(out)


class ResultCache:
    """LRU of (status code, response bytes) per key, valid for one store version."""

    def __init__(self, db_path: str, maxsize: int = 512) -> None:
        self.db_path, self.maxsize = db_path, maxsize
        self._lock = threading.Lock()
        self._data: OrderedDict[Any, tuple[tuple[Any, ...], int, bytes]] = OrderedDict()
        self._flights: dict[Any, threading.Lock] = {}
        self.hits = self.misses = 0

    def get_or_compute(self, key: Any, compute: Callable[[], tuple[int, bytes, bool]]
                       ) -> tuple[int, bytes]:
        """The cached answer for `key` at the current store version, or `compute()`'s
        (status, body, cacheable) stored when cacheable."""
        version = store_version(self.db_path)
        hit = self._lookup(key, version)
        if hit is not None:
            return hit
        with self._lock:
            flight = self._flights.setdefault(key, threading.Lock())
        with flight:
            version = store_version(self.db_path)  # as of now, after waiting for the flight
            hit = self._lookup(key, version)  # computed by the flight we waited for
            if hit is not None:
                return hit
            with self._lock:
                self.misses += 1
            status, body, cacheable = compute()
            if cacheable:
                with self._lock:
                    self._data[key] = (version, status, body)
                    self._data.move_to_end(key)
                    while len(self._data) > self.maxsize:
                        self._data.popitem(last=False)
        with self._lock:
            self._flights.pop(key, None)
        return status, body

    def peek(self, key: Any) -> tuple[int, bytes] | None:
        """The cached answer if it is still valid (cheap: a few stat calls)."""
        return self._lookup(key, store_version(self.db_path))

    def _lookup(self, key: Any, version: tuple[Any, ...]) -> tuple[int, bytes] | None:
        with self._lock:
            entry = self._data.get(key)
            if entry is None or entry[0] != version:
                return None
            self._data.move_to_end(key)
            self.hits += 1
            return entry[1], entry[2]
