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
_NO_TEXT = ("none", "(null)")  # a Reason / Comment that says nothing
_OPEN_JOBS = 2_000  # jobs kept open for late steps; bounds memory whatever the file size


class SlurmReader:
    name = "slurm"
    description = "sacct --parsable2 output (header line, or --fields for header-less output)"

    def batches(self, stream: TextIO, ctx: IngestContext) -> Iterator[Batch]:
        first = stream.readline()
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
            if pending_first is not None:
                yield 1, pending_first
            yield from enumerate(stream, 2)

        feed, emit, size, file = folder.feed, _emit_safe, ctx.batch_size, ctx.file
        read = 0
        for n, line in lines():
            line = line.rstrip("\r\n")
            read += 1
            if not line or line.isspace():
                continue
            try:
                if len(line) > MAX_LINE:
                    raise FieldError(f"line longer than {MAX_LINE:,} characters")
                closed = feed(line, n)
            except (FieldError, ValueError) as exc:
                batch.rejects.append(("slurm", file, n, str(exc), line[:2000]))
                continue
            except Exception as exc:  # noqa: BLE001 - a record never stops the file
                batch.rejects.append(("slurm", file, n, f"{type(exc).__name__}: {exc}"[:500],
                                      line[:2000]))
                continue
            for job in closed:
                emit(job, ctx, batch)
            if len(batch.jobs) + len(batch.rejects) >= size:
                batch.read, read = read, 0
                yield batch
                batch = Batch(job_columns=COLUMNS)
        for job in folder.close_all():
            _emit_safe(job, ctx, batch)
        batch.read = read
        yield batch


class _Folder:
    """Groups allocation and step lines by job; emits a job when it can no longer change."""

    def __init__(self, ctx: IngestContext, idx: dict[str, int], width: int) -> None:
        self.ctx, self.idx, self.width = ctx, idx, width
        self.open: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self.last_base: str | None = None
        # Step lines (most of sacct's output) need three fields: read them by position.
        self.top, self.lineno = v.epoch_max(), 0
        self.i_jobid = idx["JobID"]
        self.i_rss, self.i_exit, self.i_state = (idx.get(n, -1) for n in ("MaxRSS", "ExitCode",
                                                                        "State"))
        # An allocation line's columns by their position in the line (-1: absent, reads the None
        # `feed` appends). A header that names a column twice (sacct prints the same value in
        # both) reads its last one, like the step fields above.
        self.cols = tuple(idx.get(n, -1) for n in _ALLOC_COLUMNS)
        self.states: dict[str, str] = {}  # raw state -> jobs.state
        self.nodelists: dict[str | None, tuple[str, ...]] = {}  # NodeList -> its nodes

    def feed(self, line: str, lineno: int = 0) -> list[dict[str, Any]] | tuple:
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
        opened = self.open
        job = opened.get(base)
        out: list[dict[str, Any]] | tuple = ()
        if job is None:
            job = opened[base] = {"_rss": None, "_has_alloc": False, "_step_exit": None}
            if len(opened) > _OPEN_JOBS:
                out = [opened.popitem(last=False)[1] for _ in range(len(opened) - _OPEN_JOBS)]
        if step:
            self._add_step(job, parts, base)
        else:
            self._set_alloc(job, parts, base)
        last = self.last_base
        if last is not None and last != base and last in opened:
            # sacct prints steps right after their job: the previous job is complete.
            out = [*out, opened.pop(last)]
        self.last_base = base
        return out

    def close_all(self) -> list[dict[str, Any]]:
        jobs = list(self.open.values())
        self.open.clear()
        return jobs

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
            self._set_alloc(job, parts, base, from_step=True)
        if rss is not None and (job["_rss"] is None or rss > job["_rss"]):
            job["_rss"] = rss
        if step_sig or step_exit:
            job["_step_exit"] = (step_exit, step_sig, parts[self.i_state])

    def _set_alloc(self, job: dict[str, Any], p: list, base: str, from_step: bool = False) -> None:
        """Fill the job from its allocation line (`p`: its fields, None appended); every value
        is checked (core/validate.py) before the job changes, so a rejected line leaves the job
        as it was. The fields are read by position and each conversion of a repeating value
        (counts, limits, memory, TRES, node lists, states) is cached."""
        ctx = self.ctx
        (c_state, c_exit, c_reqcpus, c_ncpus, c_alloccpus, c_nnodes, c_allocnodes, c_reqnodes,
         c_limitraw, c_limit, c_elapsedraw, c_elapsed, c_submit, c_start, c_end, c_reqtres,
         c_alloctres, c_reqgres, c_reqmem, c_nodelist, c_cluster, c_name, c_user, c_account,
         c_partition, c_qos, c_reason, c_workdir, c_submitline, c_comment) = self.cols
        raw_state = (p[c_state] or "").strip()
        exit_code, sig = _exit(p[c_exit])
        cpus = (_count(p[c_reqcpus], "ReqCPUS", v.MAX_CPUS)
                or _count(p[c_ncpus], "NCPUS", v.MAX_CPUS)
                or _count(p[c_alloccpus], "AllocCPUS", v.MAX_CPUS))
        nnodes = (_count(p[c_nnodes], "NNodes", v.MAX_NODES)
                  or _count(p[c_allocnodes], "AllocNodes", v.MAX_NODES)
                  or _count(p[c_reqnodes], "ReqNodes", v.MAX_NODES))
        array_id = base.split("_", 1)[0] if "_" in base else None
        tasks = array_range(base)[1] if "_[" in base else None  # a pending range: checked here
        timelimit_s = _limit_s(p[c_limitraw], p[c_limit])
        elapsed_raw = p[c_elapsedraw]
        elapsed = (int(elapsed_raw) if elapsed_raw and elapsed_raw.isdigit()
                   else parse_duration(p[c_elapsed], "Elapsed"))
        submit, start, end = (_time(p[c_submit], "Submit"), _time(p[c_start], "Start"),
                              _time(p[c_end], "End"))
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
        gpus = gpus_from_tres(p[c_reqtres], p[c_alloctres], p[c_reqgres])
        if gpus is not None and gpus > MAX_GPUS:
            v.count(gpus, "ReqTRES gpus", MAX_GPUS)
        mem = parse_mem_mb(p[c_reqmem], "ReqMem", cpus=cpus, nodes=nnodes)
        if mem is not None and not 0 <= mem <= MAX_MEM_MB:
            v.amount(mem, "ReqMem (MB)")
        node_list = p[c_nodelist]
        nodes = self.nodelists.get(node_list)
        if nodes is None:
            nodes = tuple(expand_nodelist(node_list))
            if len(self.nodelists) > 16384:
                self.nodelists.clear()
            self.nodelists[node_list] = nodes
        state = self.states.get(raw_state)
        if state is None:
            if len(self.states) > 4096:
                self.states.clear()
            state = self.states[raw_state] = ctx.taxonomy.normalise_state(raw_state)
        job.update({
            "cluster": p[c_cluster] or ctx.cluster, "job_id": base, "array_id": array_id,
            "name": p[c_name] or None, "user": p[c_user] or None,
            "project": p[c_account] or None, "queue": p[c_partition] or None,
            "qos": p[c_qos] or None, "raw_state": raw_state, "state": state,
            "exit_code": exit_code, "signal": sig, "reason": p[c_reason] or None,
            "submit_time": submit, "start_time": start, "end_time": end,
            "elapsed_s": elapsed, "timelimit_s": timelimit_s, "req_cpus": cpus,
            "req_gpus": gpus, "req_mem_mb": mem,
            "n_nodes": nnodes if nnodes is not None or not nodes else len(nodes),
            "node_list": node_list or None, "work_dir": p[c_workdir] or None,
            "script": p[c_submitline] or None, "_comment": p[c_comment] or None,
            "source": "slurm", "_line": self.lineno, "_nodes": nodes, "_tasks": tasks,
            "_has_alloc": not from_step,
        })


_HOURS: dict[str, int] = {}  # "YYYY-MM-DDTHH" -> its epoch second, of timestamps read


def _time(value: str | None, field: str) -> int | None:
    """`parse_time`, with the epoch of each timestamp's hour kept: a `YYYY-MM-DDTHH:MM:SS`
    value of an hour seen before costs two small ints (most of sacct's Submit/Start/End)."""
    if value is not None and len(value) == 19 and value[13] == ":" and value[16] == ":":
        hour = _HOURS.get(value[:13])
        mi, se = value[14:16], value[17:19]
        if hour is not None and mi.isdigit() and se.isdigit():
            m, s = int(mi), int(se)
            if m < 60 and s < 60:
                return hour + m * 60 + s
        t = parse_time(value, field)
        if (t is not None and value[10] == "T" and value[11:13].isdigit() and int(value[11:13]) < 24
                and mi.isdigit() and se.isdigit() and int(mi) < 60 and int(se) < 60):
            # parse_time took its own fast shape: day epoch + h * 3600 + m * 60 + s
            if len(_HOURS) > 100_000:
                _HOURS.clear()
            _HOURS[value[:13]] = t - int(mi) * 60 - int(se)
        return t
    return parse_time(value, field)


#: the columns `_Folder._set_alloc` reads, in the order it unpacks their positions
_ALLOC_COLUMNS = (
    "State", "ExitCode", "ReqCPUS", "NCPUS", "AllocCPUS", "NNodes", "AllocNodes", "ReqNodes",
    "TimelimitRaw", "Timelimit", "ElapsedRaw", "Elapsed", "Submit", "Start", "End", "ReqTRES",
    "AllocTRES", "ReqGRES", "ReqMem", "NodeList", "Cluster", "JobName", "User", "Account",
    "Partition", "QOS", "Reason", "WorkDir", "SubmitLine", "Comment")


@lru_cache(maxsize=4096)
def _limit_s(raw: str | None, text: str | None) -> int | None:
    """TimelimitRaw (minutes) when it is digits, else Timelimit's `[D-]HH:MM:SS`, in seconds."""
    return int(raw) * 60 if raw and raw.isdigit() else parse_duration(text, "Timelimit")


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
    reason, comment = job.get("reason"), job.pop("_comment", None)
    if comment is None and (reason is None or reason.lower() in _NO_TEXT):
        text = ""
    else:
        text = "\n".join(t for t in (reason, comment) if t and t.lower() not in _NO_TEXT)
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
    if nodes:
        cluster, job_id = job["cluster"], job["job_id"]
        batch.nodes.extend([(cluster, job_id, n) for n in nodes])
    if ev is not None:
        batch.events.append(ev)


@lru_cache(maxsize=4096)
def _count(text: str | None, field: str, hi: int) -> int | None:
    """`_int`, once per distinct value (a rejected value raises each time)."""
    return _int(text, field, hi)


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
