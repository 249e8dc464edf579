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

A record that cannot be read (bad JSON, a pod the reader refuses: no metadata, a malformed
quantity, an object that is not a Pod or Event) is recorded in the rejects table under the
source's name (the command or the URL) and the line it starts on in the answer, with the
reason and what to do, and the other records are ingested. Each fresh record is read on its
own first, so one bad record never takes the others with it; a rejected record is remembered
like the others, so an answer that keeps carrying it is not rejected again at every poll.
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
from jobmedic.knowledge.errors import JobmedicError
from jobmedic.knowledge.templates import Templates
from jobmedic.live.poller import OPEN_STATES, PollResult, SourceUnavailable, run_sacct

Fetch = Callable[[], str]
_ARRAY_KEYS = {"kubernetes": ("items",), "runai": ("items", "records", "failures", "data")}


def kubectl_fetch(command: str) -> Fetch:
    """Run `command` (e.g. `kubectl get pods -A -o json`) and return what it prints."""
    argv = shlex.split(command)

    def fetch() -> str:
        return run_sacct(argv)  # the same missing / failing handling as sacct
    fetch.label = command  # type: ignore[attr-defined]  # names the source in rejects
    return fetch


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
    fetch.label = url.split("?", 1)[0]  # type: ignore[attr-defined]  # no query (credentials)
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
        items, bad = self._split(text)
        seen = set((self.store.live.live_get(self.key) or {}).get("hashes") or [])
        hashes = {_hash(it): (line, it) for line, it in items}
        bad_hashes = {_hash(["bad", b.raw, b.reason]): b for b in bad}
        fresh = [li for h, li in hashes.items() if h not in seen]
        res = PollResult(read=len(items), start=since, cursor=now)
        rejects = [self._reject(b.line, b.reason, b.raw) for h, b in bad_hashes.items()
                   if h not in seen]
        if fresh:
            res.new_jobs, res.running, more = self._ingest(fresh)
            rejects += more
        if rejects:
            self.store.add_rejects(rejects)
        res.rejected = len(rejects)
        self.store.live.live_put(self.key, {"hashes": sorted({*hashes, *bad_hashes}),
                                            "polled_at": now, "fresh": len(fresh),
                                            "rejected": len(rejects)})
        res.seconds = time.perf_counter() - t0
        return res

    @property
    def label(self) -> str:
        return str(getattr(self.fetch, "label", None) or f"{self.source} feed")

    def _reject(self, line: int | None, why: str, raw: str | None) -> tuple:
        """A rejects row: what was wrong with the record and what to do about it."""
        return (self.source, self.label, line,
                f"{why} (record at line {line} of the answer; skipped, the other records "
                f"were read; fix what produces it, or ingest a corrected copy with "
                f"`jobmedic ingest {self.source}`)"[:500], raw)

    def _split(self, text: str) -> tuple[list[tuple[int, Any]], list[BadRecord]]:
        """The answer's records as (line, record), and those that are not even JSON."""
        stream = io.StringIO(text)
        head = first_char(stream)
        if head not in ("{", "["):
            raise SourceUnavailable(f"{self.source}: the answer is not JSON (it starts with "
                                    f"{head!r})")
        out: list[tuple[int, Any]] = []
        bad: list[BadRecord] = []
        for r in records(stream, head, _ARRAY_KEYS[self.source]):
            (bad if isinstance(r, BadRecord) else out).append(r)  # type: ignore[arg-type]
        if self.source == "kubernetes" and len(out) == 1 and isinstance(out[0][1], dict) \
                and out[0][1].get("kind") == "List":
            return [], bad  # an empty List object (no pods)
        return out, bad

    def _ctx(self) -> IngestContext:
        return IngestContext(self.taxonomy, Templates(self.store.load_templates()),
                             cluster=self.cluster, batch_size=self.batch_size)

    def _body(self, recs: list[Any]) -> str:
        return json.dumps({"kind": "List", "items": recs} if self.source == "kubernetes"
                          else recs)

    def _check(self, fresh: list[tuple[int, Any]]
               ) -> tuple[list[Any], dict[tuple[str, str], tuple[Any, Any]], list[tuple]]:
        """Read each fresh record on its own: the records the reader accepts, the (cluster,
        job id) -> (state, end) of their jobs, and a rejects row for each it refuses."""
        reader, ctx = READERS[self.source], self._ctx()
        ctx.file = self.label
        good: list[Any] = []
        keys: dict[tuple[str, str], tuple[Any, Any]] = {}
        rejects: list[tuple] = []
        for line, rec in fresh:
            mine: dict[tuple[str, str], tuple[Any, Any]] = {}
            why: list[str] = []
            try:
                for batch in reader.batches(io.StringIO(self._body([rec])), ctx):
                    idx = {c: i for i, c in enumerate(batch.job_columns)}
                    for row in batch.jobs:
                        mine[(str(row[idx["cluster"]]), str(row[idx["job_id"]]))] = (
                            row[idx["state"]], row[idx["end_time"]])
                    why += [str(r[3]) for r in batch.rejects]
            except JobmedicError as exc:  # e.g. an object that is neither Pod nor Event
                why.append(exc.message)
            if why:
                rejects.append(self._reject(line, "; ".join(why), _raw(rec)))
                continue
            good.append(rec)
            keys.update(mine)
        return good, keys, rejects

    def _ingest(self, fresh: list[tuple[int, Any]]
                ) -> tuple[list[dict[str, Any]], int, list[tuple]]:
        """Write the fresh records the reader accepts; (the jobs now final that were not
        before, running count, rejects rows of the records it refused)."""
        good, keys, rejects = self._check(fresh)
        if not good:
            return [], 0, rejects
        by_cluster: dict[str, list[str]] = {}
        for c, j in keys:
            by_cluster.setdefault(c, []).append(j)
        before = {(c, j["job_id"]): (j["state"], j["end_time"])
                  for c, ids in by_cluster.items() for j in self.store.live.jobs_by_ids(c, ids)}
        fd, path = tempfile.mkstemp(suffix=".json", prefix=f"jobmedic-watch-{self.source}-")
        try:
            with os.fdopen(fd, "w") as f:
                f.write(self._body(good))
            run_ingest(self.store, READERS[self.source], path, self._ctx())
        finally:
            os.unlink(path)
        fresh_final: dict[str, list[str]] = {}
        for (c, j), v in keys.items():
            if v[0] not in OPEN_STATES and before.get((c, j)) != v:
                fresh_final.setdefault(c, []).append(j)
        new = [job for c, ids in fresh_final.items() for job in self.store.live.jobs_by_ids(c, ids)]
        return new, sum(1 for s, _ in keys.values() if s in OPEN_STATES), rejects


def _raw(rec: Any) -> str:
    return json.dumps(rec, sort_keys=True, default=str)[:2000]


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
            out.rejected += r.rejected
            out.new_jobs += r.new_jobs
            out.running += r.running
            out.start = r.start if out.start is None else out.start
            out.cursor = r.cursor if out.cursor is None else out.cursor
        if last is not None and len(self.errors) == len(self.pollers):
            raise last
        out.seconds = time.perf_counter() - t0
        return out
