"""Slurm accounting: `sacct --parsable2` output ('|'-separated, with a header line, or
header-less with the columns named by `--fields`).

Job steps (`.batch`, `.extern`, `.0`) fold into their job: the job's state and exit code
come from the allocation line, MaxRSS is the largest over steps. Array tasks (`123_4`) keep
their own id with `array_id` = 123; a pending array range (`123_[1-3]`, `123_[9-11,13%2]`)
becomes one job per task (`123_1`, ...) sharing the line's fields, as Open XDMoD does (at most
MAX_ARRAY_TASKS tasks a line, else a reject); node lists are expanded into job_nodes.
"""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from functools import lru_cache
from typing import Any, TextIO

from jobmedic.core import validate as v
from jobmedic.core.units import SLURM_UNITS
from jobmedic.core.validate import (
    EXIT_MAX,
    EXIT_MIN,
    MAX_DURATION_S,
    MAX_GPUS,
    MAX_LINE,
    MAX_MEM_MB,
    MAX_NAME,
)
from jobmedic.ingest.base import Batch, IngestContext, classify_job, failure_event_for_job
from jobmedic.ingest.slurm_fields import (
    FieldError,
    array_range,
    expand_nodelist,
    gpus_from_tres,
    parse_duration,
    parse_exit,
    parse_mem_mb,
    parse_time,
)
from jobmedic.knowledge.errors import InputError
from jobmedic.knowledge.migrations import JOB_COLUMNS

REQUIRED = ("JobID", "State")
# The jobs columns this source fills (bound per row; the rest keep what the store knows).
COLUMNS = tuple(c for c in JOB_COLUMNS if c not in ("image", "resubmit_of"))
_PLAIN_UNITS = frozenset("KMGTP")
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
                if len(line) > MAX_LINE:
                    raise FieldError(f"line longer than {MAX_LINE:,} characters")
                closed = folder.feed(line, n)
            except (FieldError, ValueError) as exc:
                batch.rejects.append(("slurm", ctx.file, n, str(exc), line[:2000]))
                continue
            except Exception as exc:  # noqa: BLE001 - a record never stops the file
                batch.rejects.append(("slurm", ctx.file, n, f"{type(exc).__name__}: {exc}"[:500],
                                      line[:2000]))
                continue
            for job in closed:
                _emit_safe(job, ctx, batch)
            if len(batch.jobs) + len(batch.rejects) >= ctx.batch_size:
                yield batch
                batch = Batch(job_columns=COLUMNS)
        for job in folder.close_all():
            _emit_safe(job, ctx, batch)
        yield batch


class _Folder:
    """Groups allocation and step lines by job; emits a job when it can no longer change."""

    def __init__(self, ctx: IngestContext, idx: dict[str, int], width: int) -> None:
        self.ctx, self.idx, self.width = ctx, idx, width
        self.open: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self.last_base: str | None = None
        # Step lines (most of sacct's output) need three fields: read them by position.
        self.names = [n for n, _ in sorted(idx.items(), key=lambda kv: kv[1])]
        self.top, self.lineno = v.epoch_max(), 0
        self.i_jobid = idx["JobID"]
        self.i_rss, self.i_exit, self.i_state = (idx.get(n, -1) for n in ("MaxRSS", "ExitCode",
                                                                        "State"))

    def feed(self, line: str, lineno: int = 0) -> list[dict[str, Any]]:
        parts = line.split("|")
        if len(parts) != self.width:
            raise FieldError(f"expected {self.width} '|'-separated fields, found {len(parts)}")
        parts.append(None)  # what a missing column (index -1) reads
        jobid = parts[self.i_jobid]
        if not jobid:
            raise FieldError("JobID is empty")
        if len(jobid) > MAX_NAME:
            v.name(jobid, "JobID")
        self.lineno = lineno
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
        t = parts[self.i_rss]
        if t and t[-1] in _PLAIN_UNITS and t[:-1].isdigit():  # "1172979K": most MaxRSS values,
            rss = int(t[:-1]) * SLURM_UNITS[t[-1]]  # each a new one (core.units' fast path)
        else:
            rss = parse_mem_mb(t, "MaxRSS", default_unit="B")
        if rss is not None and not 0 <= rss <= MAX_MEM_MB:
            v.amount(rss, "MaxRSS (MB)")
        exit_field = parts[self.i_exit]
        step_exit = step_sig = None
        if exit_field and exit_field != "0:0":
            step_exit, step_sig = _exit(exit_field)
        if not job["_has_alloc"]:  # a step seen before (or without) its job line
            self._set_alloc(job, self._getter(parts), base, from_step=True)
        if rss is not None and (job["_rss"] is None or rss > job["_rss"]):
            job["_rss"] = rss
        if step_sig or step_exit:
            job["_step_exit"] = (step_exit, step_sig, parts[self.i_state])

    def _set_alloc(self, job: dict[str, Any], get, base: str, from_step: bool = False) -> None:
        """Fill the job from its allocation line; every value is checked (core/validate.py)
        before the job changes, so a rejected line leaves the job as it was."""
        ctx = self.ctx
        raw_state = (get("State") or "").strip()
        exit_code, sig = _exit(get("ExitCode"))
        cpus = (_int(get("ReqCPUS"), "ReqCPUS", v.MAX_CPUS) or _int(get("NCPUS"), "NCPUS", v.MAX_CPUS)
                or _int(get("AllocCPUS"), "AllocCPUS", v.MAX_CPUS))
        nnodes = (_int(get("NNodes"), "NNodes", v.MAX_NODES)
                  or _int(get("AllocNodes"), "AllocNodes", v.MAX_NODES)
                  or _int(get("ReqNodes"), "ReqNodes", v.MAX_NODES))
        array_id = base.split("_", 1)[0] if "_" in base else None
        tasks = array_range(base)[1] if "_[" in base else None  # a pending range: checked here
        timelimit = get("TimelimitRaw")
        timelimit_s = (int(timelimit) * 60 if timelimit and timelimit.isdigit()
                       else parse_duration(get("Timelimit"), "Timelimit"))
        elapsed_raw = get("ElapsedRaw")
        elapsed = (int(elapsed_raw) if elapsed_raw and elapsed_raw.isdigit()
                   else parse_duration(get("Elapsed"), "Elapsed"))
        submit, start, end = (parse_time(get("Submit"), "Submit"),
                              parse_time(get("Start"), "Start"), parse_time(get("End"), "End"))
        top = self.top  # the checks inline (a call only to say what is wrong)
        if submit is not None and not 0 <= submit <= top:
            v.epoch(submit, "Submit")
        if start is not None and not 0 <= start <= top:
            v.epoch(start, "Start")
        if end is not None and not 0 <= end <= top:
            v.epoch(end, "End")
        if timelimit_s is not None and not 0 <= timelimit_s <= MAX_DURATION_S:
            v.duration(timelimit_s, "Timelimit")
        if elapsed is not None and not 0 <= elapsed <= MAX_DURATION_S:
            v.duration(elapsed, "Elapsed")
        gpus = gpus_from_tres(get("ReqTRES"), get("AllocTRES"), get("ReqGRES"))
        if gpus is not None and gpus > MAX_GPUS:
            v.count(gpus, "ReqTRES gpus", MAX_GPUS)
        mem = parse_mem_mb(get("ReqMem"), "ReqMem", cpus=cpus, nodes=nnodes)
        if mem is not None and not 0 <= mem <= MAX_MEM_MB:
            v.amount(mem, "ReqMem (MB)")
        nodes = expand_nodelist(get("NodeList"))
        job.update({
            "cluster": get("Cluster") or ctx.cluster, "job_id": base, "array_id": array_id,
            "name": get("JobName") or None, "user": get("User") or None,
            "project": get("Account") or None, "queue": get("Partition") or None,
            "qos": get("QOS") or None, "raw_state": raw_state,
            "state": ctx.taxonomy.normalise_state(raw_state),
            "exit_code": exit_code, "signal": sig, "reason": get("Reason") or None,
            "submit_time": submit, "start_time": start, "end_time": end,
            "elapsed_s": elapsed, "timelimit_s": timelimit_s, "req_cpus": cpus,
            "req_gpus": gpus, "req_mem_mb": mem,
            "n_nodes": nnodes, "node_list": get("NodeList") or None,
            "work_dir": get("WorkDir") or None, "script": get("SubmitLine") or None,
            "_comment": get("Comment") or None, "source": "slurm", "_line": self.lineno,
        })
        job["_nodes"], job["_tasks"] = nodes, tasks
        if job["n_nodes"] is None and nodes:
            job["n_nodes"] = len(nodes)
        job["_has_alloc"] = not from_step


@lru_cache(maxsize=4096)
def _exit(value: str | None) -> tuple[int | None, int | None]:
    """`N:S` exit code and signal, each within 32 bits."""
    code, sig = parse_exit(value)
    if code is not None and not EXIT_MIN <= code <= EXIT_MAX:
        v.exit_code(code, "ExitCode")
    if sig is not None and not 0 <= sig <= 255:
        v.integer(sig, "ExitCode signal", 0, 255)
    return code, sig


def _emit_safe(job: dict[str, Any], ctx: IngestContext, batch: Batch) -> None:
    """`_emit`, with anything it raises turned into a reject of the job's line."""
    try:
        _emit(job, ctx, batch)
    except Exception as exc:  # noqa: BLE001 - a record never stops the file
        batch.rejects.append(("slurm", ctx.file, job.get("_line"),
                              f"job {job.get('job_id')}: {type(exc).__name__}: {exc}"[:500], None))


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
    tasks = job.pop("_tasks", None)
    if job.get("array_id"):  # the tasks replace any old range row of the array
        batch.arrays.add((job["cluster"], job["array_id"]))
    if tasks:  # a pending array range: one job per task, sharing the line's fields (as XDMoD)
        for i in tasks:
            _emit_one(dict(job, job_id=f"{job['array_id']}_{i}"), nodes, text, batch)
    else:
        _emit_one(job, nodes, text, batch)


def _emit_one(job: dict[str, Any], nodes: list[str], text: str, batch: Batch) -> None:
    ev = failure_event_for_job(job, nodes[0] if nodes else None, text or None)
    batch.jobs.append(tuple(map(job.get, COLUMNS)))
    batch.nodes.extend((job["cluster"], job["job_id"], n) for n in nodes)
    if ev is not None:
        batch.events.append(ev)


def _int(text: str | None, field: str, hi: int) -> int | None:
    """A count field (`16`, `2K` read as 2 as before); text that is no number is None, a
    number that is not a finite count within [0, hi] is rejected."""
    if text is None:
        return None
    t = text.strip()
    if not t:
        return None
    num = t.rstrip("KMGkmg") if t[-1:] in "KMGkmg" and t[:-1] else t
    if num.isdigit() and len(num) < 10:
        return int(num)
    try:
        float(num)
    except ValueError:
        return None
    return v.count(num, field, hi)  # inf, nan, 1e400, negative, too many: a reject
