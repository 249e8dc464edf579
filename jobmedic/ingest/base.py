"""The ingest pipeline shared by every source.

A reader turns an opened text stream into `Batch`es of knowledge records (job tuples, node
rows, failure events, rejects). `run_ingest` writes each batch in one transaction, so a crash
or Ctrl-C never leaves half a batch behind, and memory stays flat whatever the file size.
Input that cannot be read at all (binary data, an unknown format) is refused before anything
is written.
"""
from __future__ import annotations

import gzip
import lzma
import os
import sqlite3
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, TextIO

from jobmedic.core.units import mem_quantity
from jobmedic.ingest.ahead import ParseAhead
from jobmedic.ingest.ahead import usable as ahead_usable
from jobmedic.ingest.inputs import LineGuard, open_input
from jobmedic.knowledge.errors import InputError
from jobmedic.knowledge.graphstore import PersistedGraph
from jobmedic.knowledge.migrations import FAILURE_EVENT_COLUMNS, JOB_COLUMNS
from jobmedic.knowledge.store import Store
from jobmedic.knowledge.taxonomy import FAILED_STATES, Taxonomy
from jobmedic.knowledge.templates import Templates, template_line

_JOB_INDEX = {c: i for i, c in enumerate(JOB_COLUMNS)}


@dataclass
class IngestContext:
    """What a reader needs besides its input: the taxonomy, the template miner, names."""

    taxonomy: Taxonomy
    templates: Templates
    cluster: str = "default"
    file: str = "-"
    batch_size: int = 20_000
    fields: list[str] | None = None  # column names of header-less input (slurm --fields)
    # Into empty tables, drop their secondary indexes for the load and rebuild them at the end
    # (one sort per index instead of per-row upkeep).
    bulk: bool = True
    # Parse in a forked child process while this one writes (ingest/ahead.py), for regular
    # files of some size on a machine with two cores or more; `jobmedic ingest` turns it on.
    parse_ahead: bool = False


@dataclass
class Batch:
    jobs: list[tuple] = field(default_factory=list)
    job_columns: tuple[str, ...] = JOB_COLUMNS  # the order of the values in each jobs tuple
    nodes: list[tuple[str, str, str]] = field(default_factory=list)
    events: list[tuple] = field(default_factory=list)
    rejects: list[tuple] = field(default_factory=list)
    samples: list[tuple] = field(default_factory=list)  # telemetry, SAMPLE_COLUMNS order
    #: (cluster, array_id) of array tasks in this batch: old range rows (`123_[1-3]`) of these
    #: arrays are replaced by the tasks (store.drop_array_ranges)
    arrays: set[tuple[str, str]] = field(default_factory=set)
    read: int = 0  # records (lines, objects) consumed from the input for this batch
    #: templates the miner added for this batch in a parse-ahead child (written with it)
    templates: list[tuple] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.jobs) + len(self.events) + len(self.rejects) + len(self.samples)


class Reader(Protocol):
    name: str
    description: str

    def batches(self, stream: TextIO, ctx: IngestContext) -> Iterator[Batch]:
        """Yield batches; raise InputError before the first batch if the input is not this format."""
        ...


@dataclass
class IngestSummary:
    source: str
    file: str
    read: int = 0
    inserted: int = 0
    updated: int = 0
    events: int = 0
    rejected: int = 0
    seconds: float = 0.0
    status: str = "ok"
    error: str | None = None
    samples: int = 0  # telemetry samples written

    @property
    def rate(self) -> float:
        return self.read / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["rate_per_s"] = round(self.rate, 1)
        return d


# -- records ---------------------------------------------------------------------------------
def job_tuple(job: dict[str, Any]) -> tuple:
    """A job dict as a tuple in JOB_COLUMNS order (missing columns are None)."""
    return tuple(job.get(c) for c in JOB_COLUMNS)


def event_tuple(ev: dict[str, Any], dedup_key: str) -> tuple:
    return (*map(ev.get, FAILURE_EVENT_COLUMNS), dedup_key)


def classify_job(job: dict[str, Any], ctx: IngestContext, text: str | None = None) -> None:
    """Set failure_type, blame and template_id on a job dict whose `state` is a failure
    (or cancelled), from its raw state, exit code, signal and any error text."""
    state = job.get("state")
    if state not in FAILED_STATES and state != "cancelled":
        return
    c = ctx.taxonomy.classify(job.get("raw_state"), job.get("exit_code"), job.get("signal"),
                              text)
    if c.failure_type == "unknown" and state == "failed":
        c = ctx.taxonomy.classify(None, job.get("exit_code") or 1, job.get("signal"), text)
    job["failure_type"], job["blame"] = c.failure_type, c.blame
    if text:
        job["template_id"] = ctx.templates.add(template_line(text, c.evidence), c.failure_type,
                                               job.get("end_time"))
    job["_evidence"] = c.evidence


def failure_event_for_job(job: dict[str, Any], first_node: str | None, message: str | None
                          ) -> tuple | None:
    """The failure_events row of a failed job (None for jobs that did not fail)."""
    if job.get("state") not in FAILED_STATES:
        return None
    ev = {
        "cluster": job["cluster"], "job_id": job["job_id"], "job_name": job.get("name"),
        "project": job.get("project"), "user": job.get("user"),
        "failure_type": job.get("failure_type") or "unknown", "blame": job.get("blame") or "unclear",
        "phase": job.get("raw_state"),
        "timestamp": job.get("end_time") or job.get("start_time") or job.get("submit_time") or 0,
        "node_name": first_node, "container_image": job.get("image"),
        "error_message": message or job.get("raw_state"), "evidence": job.get("_evidence"),
        "gpu_count": job.get("req_gpus"),
        "memory_request": mem_quantity(job.get("req_mem_mb")),
        "cpu_request": None if job.get("req_cpus") is None else str(job["req_cpus"]),
        "template_id": job.get("template_id"), "source": job.get("source"), "resolved": 0,
    }
    return event_tuple(ev, f"job:{job['cluster']}:{job['job_id']}")


ProgressFn = Callable[[int, int, int | None], None]  # (records read, bytes read, total bytes)


def run_ingest(store: Store, reader: Reader, path: str, ctx: IngestContext,
               progress: ProgressFn | None = None,
               on_loaded: Callable[[], None] | None = None) -> IngestSummary:
    """Stream `path` through `reader` into the store, one transaction per batch.

    `on_loaded` is called once the load is committed and its events, graph and rollups are
    refreshed, before the index rebuild of a bulk load (which SQLite runs with the GIL
    released): a caller may start reading the loaded rows there on a thread and connection of
    its own (the after-ingest inference does: app.after_ingest_ahead).

    A record never stops the file: the readers turn what they cannot use into rejects, and a
    batch the store refuses is written row by row (the rows it still refuses are rejects).
    The run ends `ok`, `partial` (some rejects), `truncated` (compressed data cut short; the
    complete records before the cut are kept), `failed` (nothing usable was read, or the
    reader broke off) or `interrupted` (Ctrl-C), in the summary and in ingest_runs alike.
    """
    stream, counter, total = open_input(_entry_file(reader, path))
    guard: LineGuard = stream.guard  # type: ignore[attr-defined]
    ctx.file = path
    summary = IngestSummary(reader.name, path)
    t0 = time.perf_counter()
    run_id: int | None = None
    dropped: list[str] = []
    accepted = 0  # records that became rows (new or already known)
    ahead: ParseAhead | None = None
    try:
        if ctx.parse_ahead and ahead_usable(_entry_file(reader, path)):
            ahead = ParseAhead(lambda: _guarded(reader.batches(stream, ctx), path), guard,
                               counter, ctx.templates.drain_pending, Batch, _Truncated)
            guard, counter = ahead.guard, ahead  # type: ignore[assignment]
        for batch in (ahead.batches() if ahead else _guarded(reader.batches(stream, ctx), path)):
            if run_id is None:  # the reader accepted the format: start writing
                store.clear_rejects(reader.name, path)
                run_id = store.start_ingest_run(reader.name, path)
                if ctx.bulk:
                    dropped = store.drop_indexes_of_empty_tables()
            _add_guard_rejects(batch, guard, reader.name, path)
            accepted += len(batch.jobs) + len(batch.events) + len(batch.samples)
            _write_batch(store, batch, ctx, summary, reader.name)
            if progress:
                progress(summary.read, counter.pos, total)
        if guard.rejects:
            last = Batch()
            _add_guard_rejects(last, guard, reader.name, path)
            _write_batch(store, last, ctx, summary, reader.name)
        if guard.error is not None:
            raise _Truncated(f"{path}: compressed data ends early or is corrupt ({guard.error}) "
                             f"after line {guard.lines}; the complete records before it were "
                             "ingested") from guard.error
        if summary.inserted or summary.events:
            store.link_events_to_jobs()
            PersistedGraph(store).refresh()  # count this load's events (incremental)
        # the per-day rollups follow the load (only the rows it touched; knowledge/rollups.py);
        # a store whose rollups were never built builds them on its first window read instead
        store.refresh_rollups()
        if on_loaded is not None and run_id is not None:
            # after the Python-heavy refreshes: beside the index rebuild (SQLite, no GIL), a
            # thread's pandas work does not hold up this one between statements
            on_loaded()
        if accepted == 0 and (summary.rejected or not summary.read):
            summary.status = "failed"
            summary.error = (f"{path}: nothing usable was read ({summary.read:,} records read, "
                             f"{summary.rejected:,} rejected)" if summary.read else
                             f"{path}: no records after the header")
        elif summary.rejected:
            summary.status = "partial"
    except KeyboardInterrupt:
        summary.status = "interrupted"
        raise
    except _Truncated as exc:
        summary.status = "truncated"
        summary.error = str(exc)
        store.add_rejects([(reader.name, path, guard.lines + 1, str(exc), None)])
        summary.rejected += 1
    except InputError as exc:
        if run_id is None:
            raise  # refused before anything was written
        _broke_off(store, reader.name, path, summary, exc)
    except Exception as exc:  # noqa: BLE001 - a reader bug must not lose what was written
        if run_id is None:
            run_id = store.start_ingest_run(reader.name, path)
        _broke_off(store, reader.name, path, summary, exc)
    finally:
        if ahead is not None:
            ahead.close()
            # the child mined this file's templates; the store has them (batch.templates)
            ctx.templates = Templates(store.load_templates())
        if dropped:  # also after Ctrl-C; a SIGKILL is repaired by the next Store open
            store.rebuild_indexes()
        summary.seconds = time.perf_counter() - t0
        if run_id is not None:
            store.finish_ingest_run(run_id, summary.status, summary.read, summary.inserted,
                                    summary.updated, summary.rejected)
        stream.close()
    return summary


def _entry_file(reader: Reader, path: str) -> str:
    """A reader of a folder (philly: DIR with several files) names the file opened first
    (`entry_file`); the reader finds the others beside it through `ctx.file` (the folder)."""
    entry = getattr(reader, "entry_file", None)
    if entry and os.path.isdir(path):
        return os.path.join(path, entry)
    return path


def _broke_off(store: Store, source: str, path: str, summary: IngestSummary,
               exc: BaseException) -> None:
    summary.status = "failed"
    summary.error = f"{path}: reading stopped after {summary.read:,} records: {exc}"
    summary.rejected += store.add_rejects([(source, path, None, summary.error[:500], None)])


def _add_guard_rejects(batch: Batch, guard: LineGuard, source: str, path: str) -> None:
    """The lines the guard blanked (NUL bytes, bad UTF-8) join this batch's rejects."""
    if guard.rejects:
        batch.rejects.extend((source, path, n, why, raw) for n, why, raw in guard.take_rejects())


def _write_batch(store: Store, batch: Batch, ctx: IngestContext, summary: IngestSummary,
                 source: str) -> None:
    try:
        with store.transaction():
            _write_rows(store, batch, summary)
            pending = batch.templates + ctx.templates.drain_pending()
            if pending:
                store.save_templates(pending)
    except (sqlite3.Error, OverflowError, ValueError, TypeError):
        _write_rowwise(store, batch, ctx, summary, source)
    summary.read += batch.read


def _write_rows(store: Store, batch: Batch, summary: IngestSummary) -> None:
    if batch.arrays:
        store.drop_array_ranges(batch.arrays)
    if batch.jobs:
        ins, upd = store.upsert_jobs(batch.jobs, batch.job_columns)
        summary.inserted += ins
        summary.updated += upd
    if batch.nodes:
        store.add_job_nodes(batch.nodes)
    if batch.events:
        summary.events += store.add_failure_events(batch.events)
    if batch.rejects:
        summary.rejected += store.add_rejects(batch.rejects)
    if batch.samples:
        summary.samples += store.add_samples(batch.samples)


def _write_rowwise(store: Store, batch: Batch, ctx: IngestContext, summary: IngestSummary,
                   source: str) -> None:
    """A batch the store refused as a whole (a value no reader check caught): each row in a
    transaction of its own; the rows still refused become rejects (shown as text)."""
    if batch.arrays:
        store.drop_array_ranges(batch.arrays)
    parts = ([("jobs", Batch(jobs=[r], job_columns=batch.job_columns)) for r in batch.jobs]
             + [("job_nodes", Batch(nodes=[r])) for r in batch.nodes]
             + [("failure_events", Batch(events=[r])) for r in batch.events]
             + [("rejects", Batch(rejects=[r])) for r in batch.rejects]
             + [("telemetry", Batch(samples=[r])) for r in batch.samples])
    for what, part in parts:
        try:
            with store.transaction():
                _write_rows(store, part, summary)
        except (sqlite3.Error, OverflowError, ValueError, TypeError) as exc:
            row = (part.jobs or part.nodes or part.events or part.rejects or part.samples)[0]
            summary.rejected += store.add_rejects([(
                source, ctx.file, row[2] if what == "rejects" and isinstance(row[2], int)
                else None, f"{what} row refused by the store: {exc}"[:500], _safe_repr(row))])
    with store.transaction():
        pending = batch.templates + ctx.templates.drain_pending()
        if pending:
            store.save_templates(pending)


def _safe_repr(v: Any) -> str:
    return repr(v)[:2000].encode("utf-8", "replace").decode("utf-8").replace("\x00", "\\0")


class _Truncated(Exception):
    pass


def _guarded(it: Iterator[Batch], path: str) -> Iterator[Batch]:
    """Turn a corrupt or truncated compressed stream into a recorded, non-fatal error."""
    try:
        yield from it
    except (EOFError, lzma.LZMAError, zlib.error, gzip.BadGzipFile) as exc:
        raise _Truncated(f"{path}: compressed data ends early or is corrupt ({exc}); "
                         "the records before it were ingested") from exc
