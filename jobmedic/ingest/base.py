"""The ingest pipeline shared by every source.

A reader turns an opened text stream into `Batch`es of knowledge records (job tuples, node
rows, failure events, rejects). `run_ingest` writes each batch in one transaction, so a crash
or Ctrl-C never leaves half a batch behind, and memory stays flat whatever the file size.
Input that cannot be read at all (binary data, an unknown format) is refused before anything
is written.
"""
from __future__ import annotations

import bz2
import gzip
import io
import lzma
import sys
import time
import zlib
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Iterator, Protocol, TextIO

from jobmedic.knowledge.errors import InputError
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


@dataclass
class Batch:
    jobs: list[tuple] = field(default_factory=list)
    job_columns: tuple[str, ...] = JOB_COLUMNS  # the order of the values in each jobs tuple
    nodes: list[tuple[str, str, str]] = field(default_factory=list)
    events: list[tuple] = field(default_factory=list)
    rejects: list[tuple] = field(default_factory=list)
    read: int = 0  # records (lines, objects) consumed from the input for this batch

    def __len__(self) -> int:
        return len(self.jobs) + len(self.events) + len(self.rejects)


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
    return tuple(ev.get(c) for c in FAILURE_EVENT_COLUMNS) + (dedup_key,)


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
        "memory_request": None if job.get("req_mem_mb") is None else f"{job['req_mem_mb']:.0f}M",
        "cpu_request": None if job.get("req_cpus") is None else str(job["req_cpus"]),
        "template_id": job.get("template_id"), "source": job.get("source"), "resolved": 0,
    }
    return event_tuple(ev, f"job:{job['cluster']}:{job['job_id']}")


# -- input -----------------------------------------------------------------------------------
class _CountingReader(io.RawIOBase):
    """Wraps a binary file to expose how many raw bytes were consumed (for progress)."""

    def __init__(self, raw: Any) -> None:
        self.raw, self.pos = raw, 0

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        n = self.raw.readinto(b)
        self.pos += n or 0
        return n


def open_input(path: str) -> tuple[TextIO, _CountingReader, int | None]:
    """Open a file (plain, gzip, xz or bz2, detected by magic bytes) or '-' for stdin.

    Returns (text stream, byte counter, total bytes or None). Binary data that is not a
    known compression format is refused with InputError before anything is read further.
    """
    if path == "-":
        raw: Any = sys.stdin.buffer
        total = None
    else:
        try:
            raw = open(path, "rb")
        except OSError as exc:
            raise InputError(f"cannot read {path}: {exc.strerror or exc}",
                             hint="check the path and its permissions") from exc
        try:
            import os
            total = os.fstat(raw.fileno()).st_size
        except OSError:
            total = None
    counter = _CountingReader(raw)
    buffered = io.BufferedReader(counter, buffer_size=1 << 20)
    head = buffered.peek(8)[:8]
    if head[:2] == b"\x1f\x8b":
        binary: Any = gzip.GzipFile(fileobj=buffered)
    elif head[:6] == b"\xfd7zXZ\x00":
        binary = lzma.LZMAFile(buffered)
    elif head[:3] == b"BZh":
        binary = bz2.BZ2File(buffered)
    else:
        binary = buffered
    try:
        sample = binary.peek(8192)[:8192] if hasattr(binary, "peek") else b""
    except (OSError, EOFError, lzma.LZMAError, zlib.error) as exc:
        raise InputError(f"cannot read {path}: corrupt compressed data ({exc})",
                         hint="check that the file was copied completely") from exc
    if b"\x00" in sample:
        raise InputError(f"{path} looks like binary data, not text",
                         hint="pass the text output of sacct / kubectl, optionally gzip or xz compressed")
    text = io.TextIOWrapper(binary, encoding="utf-8", errors="replace", newline=None)
    return text, counter, total


ProgressFn = Callable[[int, int, int | None], None]  # (records read, bytes read, total bytes)


def run_ingest(store: Store, reader: Reader, path: str, ctx: IngestContext,
               progress: ProgressFn | None = None) -> IngestSummary:
    """Stream `path` through `reader` into the store, one transaction per batch."""
    stream, counter, total = open_input(path)
    ctx.file = path
    summary = IngestSummary(reader.name, path)
    t0 = time.perf_counter()
    run_id: int | None = None
    dropped: list[str] = []
    try:
        for batch in _guarded(reader.batches(stream, ctx), path):
            if run_id is None:  # the reader accepted the format: start writing
                store.clear_rejects(reader.name, path)
                run_id = store.start_ingest_run(reader.name, path)
                if ctx.bulk:
                    dropped = store.drop_indexes_of_empty_tables()
            _write_batch(store, batch, ctx, summary)
            if progress:
                progress(summary.read, counter.pos, total)
        if summary.inserted or summary.events:
            store.link_events_to_jobs()
    except KeyboardInterrupt:
        summary.status = "interrupted"
        raise
    except _Truncated as exc:
        summary.status = "truncated"
        summary.error = str(exc)
        store.add_rejects([(reader.name, path, summary.read + 1, str(exc), None)])
        summary.rejected += 1
    finally:
        if dropped:  # also after Ctrl-C; a SIGKILL is repaired by the next Store open
            store.rebuild_indexes()
        summary.seconds = time.perf_counter() - t0
        if run_id is not None:
            store.finish_ingest_run(run_id, summary.status, summary.read, summary.inserted,
                                    summary.updated, summary.rejected)
        stream.close()
    return summary


def _write_batch(store: Store, batch: Batch, ctx: IngestContext, summary: IngestSummary) -> None:
    with store.transaction():
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
        pending = ctx.templates.drain_pending()
        if pending:
            store.save_templates(pending)
    summary.read += batch.read


class _Truncated(Exception):
    pass


def _guarded(it: Iterator[Batch], path: str) -> Iterator[Batch]:
    """Turn a corrupt or truncated compressed stream into a recorded, non-fatal error."""
    try:
        yield from it
    except (EOFError, lzma.LZMAError, zlib.error, gzip.BadGzipFile) as exc:
        raise _Truncated(f"{path}: compressed data ends early or is corrupt ({exc}); "
                         "the records before it were ingested") from exc
