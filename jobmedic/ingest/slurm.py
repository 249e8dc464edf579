"""Slurm accounting: `sacct --parsable2` output ('|'-separated, with a header line, or
header-less with the columns named by `--fields`).

Job steps (`.batch`, `.extern`, `.0`) fold into their job: the job's state and exit code
come from the allocation line, MaxRSS is the largest over steps. Array tasks (`123_4`) keep
their own id with `array_id` = 123; node lists are expanded into job_nodes.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Any, Iterator, TextIO

from jobmedic.ingest.base import Batch, IngestContext, classify_job, failure_event_for_job
from jobmedic.ingest.slurm_fields import (FieldError, expand_nodelist, gpus_from_tres,
                                          parse_duration, parse_exit, parse_mem_mb, parse_time)
from jobmedic.knowledge.errors import InputError
from jobmedic.knowledge.migrations import JOB_COLUMNS

REQUIRED = ("JobID", "State")
# The jobs columns this source fills (bound per row; the rest keep what the store knows).
COLUMNS = tuple(c for c in JOB_COLUMNS if c not in ("image", "resubmit_of"))
_OPEN_JOBS = 2_000  # jobs kept open for late steps; bounds memory whatever the file size


class SlurmReader:
    name = "slurm"
    description = "sacct --parsable2 output (header line, or --fields for header-less output)"

    def batches(self, stream: TextIO, ctx: IngestContext) -> Iterator[Batch]:
        first = stream.readline()
        lineno = 1
        if ctx.fields:
            header = [f.strip() for f in ",".join(ctx.fields).replace("|", ",").split(",") if f.strip()]
            pending_first: str | None = first
        else:
            header = first.rstrip("\r\n").split("|")
            pending_first = None
            if "JobID" not in header:
                raise InputError(
                    f"{ctx.file}: not sacct --parsable2 output with a header line "
                    f"(first line: {first[:80].strip()!r}); for header-less output name the "
                    f"columns with --fields",
                    hint="run sacct with --parsable2, or name the columns with --fields JobID,State,...")
        missing = [f for f in REQUIRED if f not in header]
        if missing:
            raise InputError(f"{ctx.file}: sacct columns missing: {', '.join(missing)}",
                             hint="include at least JobID and State in sacct --format")
        idx = {name: i for i, name in enumerate(header)}
        folder = _Folder(ctx, idx, len(header))
        batch = Batch(job_columns=COLUMNS)

        def lines() -> Iterator[tuple[int, str]]:
            nonlocal lineno
            if pending_first is not None:
                yield 1, pending_first
            for line in stream:
                lineno += 1
                yield lineno, line

        for n, line in lines():
            line = line.rstrip("\r\n")
            batch.read += 1
            if not line.strip():
                continue
            try:
                closed = folder.feed(line)
            except FieldError as exc:
                batch.rejects.append(("slurm", ctx.file, n, str(exc), line))
                continue
            for job in closed:
                _emit(job, ctx, batch)
            if len(batch.jobs) + len(batch.rejects) >= ctx.batch_size:
                yield batch
                batch = Batch(job_columns=COLUMNS)
        for job in folder.close_all():
            _emit(job, ctx, batch)
        yield batch


class _Folder:
    """Groups allocation and step lines by job; emits a job when it can no longer change."""

    def __init__(self, ctx: IngestContext, idx: dict[str, int], width: int) -> None:
        self.ctx, self.idx, self.width = ctx, idx, width
        self.open: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self.last_base: str | None = None
        # Step lines (most of sacct's output) need three fields: read them by position.
        self.names = [n for n, _ in sorted(idx.items(), key=lambda kv: kv[1])]
        self.i_jobid = idx["JobID"]
        self.i_rss, self.i_exit, self.i_state = (idx.get(n, -1) for n in ("MaxRSS", "ExitCode",
                                                                        "State"))

    def feed(self, line: str) -> list[dict[str, Any]]:
        parts = line.split("|")
        if len(parts) != self.width:
            raise FieldError(f"expected {self.width} '|'-separated fields, found {len(parts)}")
        parts.append(None)  # what a missing column (index -1) reads
        jobid = parts[self.i_jobid]
        if not jobid:
            raise FieldError("JobID is empty")
        base, _, step = jobid.partition(".")
        job = self.open.get(base)
        out: list[dict[str, Any]] = []
        if job is None:
            job = self.open[base] = {"_rss": None, "_has_alloc": False, "_step_exit": None}
            while len(self.open) > _OPEN_JOBS:
                out.append(self.open.popitem(last=False)[1])
        if step:
            self._add_step(job, parts, base)
        else:
            self._set_alloc(job, self._getter(parts), base)
        if self.last_base is not None and self.last_base != base and self.last_base in self.open:
            # sacct prints steps right after their job: the previous job is complete.
            out.append(self.open.pop(self.last_base))
        self.last_base = base
        return out

    def close_all(self) -> list[dict[str, Any]]:
        jobs = list(self.open.values())
        self.open.clear()
        return jobs

    def _getter(self, parts: list[str]):
        """`get(column)` for one line: a dict's own get (C), None for an absent column."""
        return dict(zip(self.names, parts)).get

    def _add_step(self, job: dict[str, Any], parts: list, base: str) -> None:
        rss = parse_mem_mb(parts[self.i_rss], "MaxRSS", default_unit="B")
        if rss is not None and (job["_rss"] is None or rss > job["_rss"]):
            job["_rss"] = rss
        exit_field = parts[self.i_exit]
        if exit_field and exit_field != "0:0":
            step_exit, step_sig = parse_exit(exit_field)
            if step_sig or step_exit:
                job["_step_exit"] = (step_exit, step_sig, parts[self.i_state])
        if not job["_has_alloc"]:  # a step seen before (or without) its job line
            self._set_alloc(job, self._getter(parts), base, from_step=True)

    def _set_alloc(self, job: dict[str, Any], get, base: str, from_step: bool = False) -> None:
        ctx = self.ctx
        raw_state = (get("State") or "").strip()
        exit_code, sig = parse_exit(get("ExitCode"))
        cpus = _int(get("ReqCPUS")) or _int(get("NCPUS")) or _int(get("AllocCPUS"))
        nnodes = _int(get("NNodes")) or _int(get("AllocNodes")) or _int(get("ReqNodes"))
        array_id = base.split("_", 1)[0] if "_" in base else None
        timelimit = get("TimelimitRaw")
        timelimit_s = (int(timelimit) * 60 if timelimit and timelimit.isdigit()
                       else parse_duration(get("Timelimit"), "Timelimit"))
        elapsed_raw = get("ElapsedRaw")
        elapsed = (int(elapsed_raw) if elapsed_raw and elapsed_raw.isdigit()
                   else parse_duration(get("Elapsed"), "Elapsed"))
        job.update({
            "cluster": get("Cluster") or ctx.cluster, "job_id": base, "array_id": array_id,
            "name": get("JobName") or None, "user": get("User") or None,
            "project": get("Account") or None, "queue": get("Partition") or None,
            "qos": get("QOS") or None, "raw_state": raw_state,
            "state": ctx.taxonomy.normalise_state(raw_state),
            "exit_code": exit_code, "signal": sig, "reason": get("Reason") or None,
            "submit_time": parse_time(get("Submit"), "Submit"),
            "start_time": parse_time(get("Start"), "Start"),
            "end_time": parse_time(get("End"), "End"),
            "elapsed_s": elapsed, "timelimit_s": timelimit_s, "req_cpus": cpus,
            "req_gpus": gpus_from_tres(get("ReqTRES"), get("AllocTRES"), get("ReqGRES")),
            "req_mem_mb": parse_mem_mb(get("ReqMem"), "ReqMem", cpus=cpus, nodes=nnodes),
            "n_nodes": nnodes, "node_list": get("NodeList") or None,
            "work_dir": get("WorkDir") or None, "script": get("SubmitLine") or None,
            "_comment": get("Comment") or None, "source": "slurm",
        })
        job["_nodes"] = expand_nodelist(get("NodeList"))
        if job["n_nodes"] is None and job["_nodes"]:
            job["n_nodes"] = len(job["_nodes"])
        job["_has_alloc"] = not from_step


def _emit(job: dict[str, Any], ctx: IngestContext, batch: Batch) -> None:
    if "job_id" not in job:
        return
    job["max_rss_mb"] = job.pop("_rss")
    step_exit = job.pop("_step_exit")
    if step_exit and not job.get("signal") and not job.get("exit_code"):
        job["exit_code"], job["signal"] = step_exit[0], step_exit[1]
    text = "\n".join(t for t in (job.get("reason"), job.pop("_comment", None)) if t
                     and t.lower() not in ("none", "(null)"))
    classify_job(job, ctx, text or None)
    if step_exit and job.get("failure_type") in ("app_error", "unknown"):
        # The allocation only says "exit 1"; a step's 139 or signal 11 says more.
        c = ctx.taxonomy.classify(None, step_exit[0], step_exit[1], None)
        if c.failure_type not in ("app_error", "unknown"):
            job["failure_type"], job["blame"], job["_evidence"] = c.failure_type, c.blame, c.evidence
    nodes = job.pop("_nodes")
    batch.jobs.append(tuple(map(job.get, COLUMNS)))
    batch.nodes.extend((job["cluster"], job["job_id"], n) for n in nodes)
    ev = failure_event_for_job(job, nodes[0] if nodes else None, text or None)
    if ev is not None:
        batch.events.append(ev)


def _int(v: str | None) -> int | None:
    if v is None:
        return None
    v = v.strip()
    if not v:
        return None
    try:
        return int(float(v.rstrip("KMGkmg"))) if v[-1:] in "KMGkmg" and v[:-1] else int(float(v))
    except ValueError:
        return None
