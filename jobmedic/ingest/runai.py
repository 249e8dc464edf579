"""Run:AI-style failure records: a JSON array, JSON Lines, or an object holding an
``items`` / ``records`` / ``failures`` / ``data`` array.

Each record is one failure with the fields of DESIGN.md: ``job_name, project, failure_type``
or ``phase, timestamp, pod_name, node_name, container_image, error_message, logs_snippet,
events_snippet, gpu_count, memory_request, cpu_request`` (and optionally ``cluster,
job_id, user, exit_code, blame``). It becomes a `failure_events` row: a ``failure_type`` that
is a taxonomy code is kept; otherwise (absent, or a reason such as ``OOMKilled``) the record
is classified from that reason or its phase, the exit code and the error / log / event text.
The text is templated (Drain3). Key: ``runai:<cluster>:<job_id>:<timestamp>:<pod>``.

When the record names its job (``job_name``) a `jobs` row is written too: ``job_id`` = the
record's ``job_id`` else ``<project>/<job_name>``, state from the failure type (oom, timeout,
node_fail, preempted, cancelled, pending for scheduling, else failed), end time and
``failed_at`` = the failure time (a record without an end still counts in a window then), requests from gpu_count / memory_request / cpu_request (Kubernetes
quantities), node into job_nodes. Timestamps: RFC 3339 / ISO 8601 text, or epoch seconds
(milliseconds when > 10^11).
"""
from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, TextIO

from jobmedic.core import validate as v
from jobmedic.ingest.base import Batch, IngestContext, event_tuple, job_tuple
from jobmedic.ingest.jsonstream import BadRecord, first_char, records
from jobmedic.ingest.k8s_fields import QuantityError, cpus, mem_mb
from jobmedic.knowledge.errors import InputError
from jobmedic.knowledge.taxonomy import BLAMES
from jobmedic.knowledge.templates import template_line

ARRAY_KEYS = ("items", "records", "failures", "data")
STATE_OF = {"oom": "oom", "timeout": "timeout", "node_failure": "node_fail",
            "preempted": "preempted", "cancelled": "cancelled", "scheduling": "pending"}
TEXT_FIELDS = ("error_message", "logs_snippet", "events_snippet")


class FieldProblem(ValueError):
    """A record field that is missing or malformed; the message names the field."""


def parse_timestamp(value: Any) -> int:
    """Epoch seconds (milliseconds when > 10^11) or ISO 8601 text, between 1970 and now + 1
    year."""
    if value is None or value == "":
        raise FieldProblem("timestamp: missing")
    if isinstance(value, (bool, dict, list)):
        raise FieldProblem(f"timestamp: {str(value)[:40]!r} is not a time")
    if isinstance(value, (int, float)):
        x = v.finite(value, "timestamp")
        return v.epoch(x / 1000 if x > 1e11 else x, "timestamp")
    text = v.text(str(value), "timestamp", 64).strip()
    if text.replace(".", "", 1).isdigit():
        return parse_timestamp(float(text))
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        raise FieldProblem(f"timestamp: {text[:40]!r} is not an ISO 8601 time or epoch "
                           "seconds") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return v.epoch(dt.timestamp(), "timestamp")


class RunaiReader:
    name = "runai"
    description = "Run:AI-style failure records (JSON array or JSON Lines)"

    def batches(self, stream: TextIO, ctx: IngestContext) -> Iterator[Batch]:
        head = first_char(stream)
        if head not in ("{", "["):
            raise InputError(f"{ctx.file}: not JSON or JSON Lines failure records (it starts "
                             f"with {head!r})", hint="pass a JSON array or one JSON object per line "
                             "with job_name, failure_type or phase, timestamp, error_message, ...")
        batch, good = Batch(), 0
        for rec in records(stream, head, ARRAY_KEYS):
            batch.read += 1
            if isinstance(rec, BadRecord):
                batch.rejects.append(("runai", ctx.file, rec.line, rec.reason, rec.raw))
                continue
            line, obj = rec
            try:
                if not isinstance(obj, dict):
                    raise FieldProblem(f"record: expected a JSON object, found {type(obj).__name__}")
                if good == 0 and not _looks_like_failure(obj):
                    raise InputError(
                        f"{ctx.file}: the first record has none of the Run:AI-style fields "
                        f"(job_name, pod_name, failure_type, phase, error_message); keys: "
                        f"{', '.join(list(obj)[:8])}",
                        hint="for kubectl output use `jobmedic ingest kubernetes`")
                _record(obj, ctx, batch)
                good += 1
            except (FieldProblem, QuantityError, ValueError) as exc:
                batch.rejects.append(("runai", ctx.file, line, str(exc)[:500], _raw(obj)))
            except InputError:
                raise
            except Exception as exc:  # noqa: BLE001 - a record never stops the file
                batch.rejects.append(("runai", ctx.file, line,
                                      f"{type(exc).__name__}: {exc}"[:500], _raw(obj)))
            if len(batch) >= ctx.batch_size:
                yield batch
                batch = Batch()
        yield batch


def _looks_like_failure(obj: dict[str, Any]) -> bool:
    return any(k in obj for k in ("job_name", "pod_name", "failure_type", "phase",
                                  "error_message"))


def _raw(obj: Any) -> str:
    try:
        return str(obj)[:2000]
    except (RecursionError, ValueError):
        return f"<{type(obj).__name__} that cannot be shown>"


def _str(obj: dict[str, Any], key: str) -> str | None:
    x = obj.get(key)
    if x is None or x == "":
        return None
    if isinstance(x, (dict, list)):
        raise FieldProblem(f"{key}: expected text, found {type(x).__name__}")
    if isinstance(x, float):
        v.finite(x, key)
    return v.text(str(x), key, v.MAX_TEXT if key in TEXT_FIELDS else v.MAX_NAME)


def _int(obj: dict[str, Any], key: str) -> int | None:
    x = obj.get(key)
    if x is None or x == "":
        return None
    if key == "exit_code":
        return v.exit_code(x, key)
    return v.count(x, key, v.MAX_GPUS if key == "gpu_count" else v.MAX_COUNT)


def _quantities(cpu_txt: str | None, mem_txt: str | None) -> tuple[int | None, float | None]:
    c, m = cpus(cpu_txt), mem_mb(mem_txt)
    return (None if c is None else v.count(c, "cpu_request", v.MAX_CPUS),
            None if m is None else v.amount(m, "memory_request (MB)"))


def _record(obj: dict[str, Any], ctx: IngestContext, batch: Batch) -> None:
    ts = parse_timestamp(obj.get("timestamp", obj.get("time")))
    job_name, pod = _str(obj, "job_name"), _str(obj, "pod_name")
    if not job_name and not pod:
        raise FieldProblem("job_name: missing (and no pod_name)")
    cluster = _str(obj, "cluster") or ctx.cluster
    project = _str(obj, "project")
    job_id = _str(obj, "job_id") or (f"{project or 'default'}/{job_name}" if job_name else None)
    given, phase = _str(obj, "failure_type"), _str(obj, "phase")
    exit_code = _int(obj, "exit_code")
    text = "\n".join(t for t in (_str(obj, f) for f in TEXT_FIELDS) if t) or None
    tax = ctx.taxonomy
    if given in tax.codes:
        code, evidence = given, f"failure_type {given}"
        blame = tax.blame_of(code)
    else:
        c = tax.classify(given or phase, exit_code, None, text)
        if c.failure_type == "unknown" and given and phase:
            c = tax.classify(phase, exit_code, None, text)
        code, blame, evidence = c.failure_type, c.blame, c.evidence
    if _str(obj, "blame") in BLAMES:
        blame = obj["blame"]
    message = _str(obj, "error_message") or text or given or phase
    gpus, mem_txt, cpu_txt = _int(obj, "gpu_count"), _str(obj, "memory_request"), \
        _str(obj, "cpu_request")
    node, image, user = _str(obj, "node_name"), _str(obj, "container_image"), _str(obj, "user")
    req_cpus, req_mem = _quantities(cpu_txt, mem_txt)
    logs, events = _str(obj, "logs_snippet"), _str(obj, "events_snippet")
    # every value is checked: only now may the record touch the template miner
    tid = ctx.templates.add(template_line(message, evidence if text else None), code, ts) \
        if message else None
    ev = {"cluster": cluster, "job_id": job_id, "job_name": job_name, "project": project,
          "user": user, "failure_type": code, "blame": blame, "phase": phase or given,
          "timestamp": ts, "pod_name": pod, "node_name": node, "container_image": image,
          "error_message": message, "logs_snippet": logs,
          "events_snippet": events, "gpu_count": gpus,
          "memory_request": mem_txt, "cpu_request": cpu_txt, "template_id": tid,
          "evidence": evidence, "source": "runai", "resolved": 0}
    event = tuple(v.cell(x, "record") for x in
                  event_tuple(ev, f"runai:{cluster}:{job_id or pod}:{ts}:{pod or ''}"))
    if job_name is None:
        batch.events.append(event)
        return
    job = {"cluster": cluster, "job_id": job_id, "name": job_name, "user": user,
           "project": project, "image": image, "state": STATE_OF.get(code, "failed"),
           "raw_state": phase or given, "exit_code": exit_code, "failure_type": code,
           "blame": blame, "reason": given if given not in tax.codes else None,
           "end_time": ts, "failed_at": ts, "req_cpus": req_cpus, "req_gpus": gpus,
           "req_mem_mb": req_mem, "n_nodes": 1 if node else None, "node_list": node,
           "template_id": tid, "source": "runai"}
    row = tuple(v.cell(x, "record") for x in job_tuple(job))
    batch.events.append(event)
    batch.jobs.append(row)
    if node:
        batch.nodes.append((cluster, job_id, node))
