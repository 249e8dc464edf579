"""Pollers for sources that print their current picture rather than a history: `kubectl get
pods -A -o json` (a configurable command) and a Run:AI-style endpoint (a URL answering the JSON
records that ingest/runai.py reads).

Each poll splits the answer into its records (ingest/jsonstream.records, the readers' own
splitter) and keeps only the records it has not seen in that exact form before: the hashes of
the previous answer's records are kept in the store (`live_state`, key `<source>:<cluster>`),
so an unchanged pod or record is never re-ingested, a pod whose status moved on is. The fresh
records go through the source's reader (READERS["kubernetes"] / READERS["runai"]) and
run_ingest, exactly as `jobmedic ingest` would; a job counts as *new* when the store did not
yet hold it in that final state (as for sacct). `MultiPoller` polls several sources in turn:
one failing source is reported and the others still count.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import shlex
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

from jobmedic.ingest import READERS, IngestContext, run_ingest
from jobmedic.ingest.jsonstream import BadRecord, first_char, records
from jobmedic.knowledge.templates import Templates
from jobmedic.live.poller import OPEN_STATES, PollResult, SourceUnavailable, run_sacct

Fetch = Callable[[], str]
_ARRAY_KEYS = {"kubernetes": ("items",), "runai": ("items", "records", "failures", "data")}


def kubectl_fetch(command: str) -> Fetch:
    """Run `command` (e.g. `kubectl get pods -A -o json`) and return what it prints."""
    argv = shlex.split(command)
    return lambda: run_sacct(argv)  # the same missing / failing handling as sacct


def http_fetch(url: str, timeout_s: float = 30, token: str | None = None) -> Fetch:
    """GET `url` and return its body; SourceUnavailable when it cannot be read."""
    def fetch() -> str:
        req = urllib.request.Request(url, headers={"Accept": "application/json"})
        if token:
            req.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(req, timeout=timeout_s) as resp:
                return resp.read().decode("utf-8", "replace")
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise SourceUnavailable(f"{url} could not be read: {exc}",
                                    hint="check live.runai_url and that the endpoint is up") from None
    return fetch


class FeedPoller:
    """Polls one JSON source through its reader; `source` is a READERS name."""

    def __init__(self, store: Any, taxonomy: Any, cluster: str, source: str, fetch: Fetch, *,
                 batch_size: int = 5000) -> None:
        self.store, self.taxonomy, self.cluster = store, taxonomy, cluster
        self.source, self.fetch, self.batch_size = source, fetch, batch_size
        self.key = f"{source}:{cluster}"

    def poll(self, now: int | None = None, since: int | None = None) -> PollResult:
        t0 = time.perf_counter()
        now = int(time.time()) if now is None else now
        text = self.fetch()
        items = self._split(text)
        seen = set((self.store.live.live_get(self.key) or {}).get("hashes") or [])
        hashes = {_hash(it): it for it in items}
        fresh = [it for h, it in hashes.items() if h not in seen]
        res = PollResult(read=len(items), start=since, cursor=now)
        if fresh:
            res.new_jobs, res.running = self._ingest(fresh)
        self.store.live.live_put(self.key, {"hashes": sorted(hashes), "polled_at": now,
                                            "fresh": len(fresh)})
        res.seconds = time.perf_counter() - t0
        return res

    def _split(self, text: str) -> list[Any]:
        stream = io.StringIO(text)
        head = first_char(stream)
        if head not in ("{", "["):
            raise SourceUnavailable(f"{self.source}: the answer is not JSON (it starts with "
                                    f"{head!r})")
        out = [r[1] for r in records(stream, head, _ARRAY_KEYS[self.source])
               if not isinstance(r, BadRecord)]
        if self.source == "kubernetes" and len(out) == 1 and isinstance(out[0], dict) \
                and out[0].get("kind") == "List":
            return []  # an empty List object (no pods)
        return out

    def _ctx(self) -> IngestContext:
        return IngestContext(self.taxonomy, Templates(self.store.load_templates()),
                             cluster=self.cluster, batch_size=self.batch_size)

    def _ingest(self, fresh: list[Any]) -> tuple[list[dict[str, Any]], int]:
        """Write the fresh records; (the jobs now final that were not before, running count)."""
        body = json.dumps({"kind": "List", "items": fresh} if self.source == "kubernetes"
                          else fresh)
        reader = READERS[self.source]
        keys: dict[tuple[str, str], tuple[Any, Any]] = {}
        for batch in reader.batches(io.StringIO(body), self._ctx()):
            idx = {c: i for i, c in enumerate(batch.job_columns)}
            for row in batch.jobs:
                keys[(str(row[idx["cluster"]]), str(row[idx["job_id"]]))] = (
                    row[idx["state"]], row[idx["end_time"]])
        by_cluster: dict[str, list[str]] = {}
        for c, j in keys:
            by_cluster.setdefault(c, []).append(j)
        before = {(c, j["job_id"]): (j["state"], j["end_time"])
                  for c, ids in by_cluster.items() for j in self.store.live.jobs_by_ids(c, ids)}
        fd, path = tempfile.mkstemp(suffix=".json", prefix=f"jobmedic-watch-{self.source}-")
        try:
            with os.fdopen(fd, "w") as f:
                f.write(body)
            run_ingest(self.store, reader, path, self._ctx())
        finally:
            os.unlink(path)
        fresh_final: dict[str, list[str]] = {}
        for (c, j), v in keys.items():
            if v[0] not in OPEN_STATES and before.get((c, j)) != v:
                fresh_final.setdefault(c, []).append(j)
        new = [job for c, ids in fresh_final.items() for job in self.store.live.jobs_by_ids(c, ids)]
        return new, sum(1 for s, _ in keys.values() if s in OPEN_STATES)


def _hash(item: Any) -> str:
    return hashlib.sha1(json.dumps(item, sort_keys=True).encode(), usedforsecurity=False
                        ).hexdigest()[:20]


class MultiPoller:
    """Polls each source in turn; the results are merged. A source that fails is reported in
    `errors` and skipped; SourceUnavailable only when every source failed."""

    def __init__(self, pollers: list[Any]) -> None:
        self.pollers = pollers
        self.errors: list[str] = []

    def poll(self, now: int | None = None, since: int | None = None) -> PollResult:
        t0 = time.perf_counter()
        out = PollResult()
        self.errors = []
        last: SourceUnavailable | None = None
        for p in self.pollers:
            try:
                r = p.poll(now=now, since=since)
            except SourceUnavailable as exc:
                last = exc
                self.errors.append(exc.message)
                continue
            out.read += r.read
            out.new_jobs += r.new_jobs
            out.running += r.running
            out.start = r.start if out.start is None else out.start
            out.cursor = r.cursor if out.cursor is None else out.cursor
        if last is not None and len(self.errors) == len(self.pollers):
            raise last
        out.seconds = time.perf_counter() - t0
        return out
