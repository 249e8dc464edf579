"""Standard Workload Format (Parallel Workloads Archive logs such as RICC-2010-2.swf.gz).

18 whitespace-separated numeric fields per job; ``;`` lines are comments, and the header
comments may carry ``UnixStartTime`` (epoch seconds of the log's time 0; with it, times become
absolute) and ``TimeZoneString`` (the site's zone, for local-time views only: it does not move
epoch seconds). Without ``UnixStartTime`` times stay relative to the log start (epoch 0).

Mapping (``-1`` means unknown and becomes NULL):

* job number -> `job_id`; cluster = ``--cluster``, else the file name up to its first ``-``
  or ``.``, lower-cased (``RICC-2010-2.swf.gz`` -> ``ricc``);
* submit + UnixStartTime -> `submit_time`; + wait -> `start_time`; + run time -> `end_time`;
  run time -> `elapsed_s`; requested time -> `timelimit_s`;
* requested processors (else allocated) -> `req_cpus`; requested memory (KB per processor)
  x processors -> `req_mem_mb`; used memory (average KB per processor) x allocated processors
  -> `max_rss_mb` (an estimate: SWF keeps the average, not the peak);
* user ``u<id>``, group ``g<id>`` (-> `project`), executable ``app-<id>`` (-> `name`),
  queue ``q<id>`` (-> `queue`), partition ``p<id>`` (-> `qos`, the only other scheduling
  class the format records);
* status 1 completed, 0 failed (``timeout`` when it ran to its requested time, else
  ``app_error``), 5 cancelled, 2 partial (will continue; state unknown), 3 last partial
  completed, 4 last partial failed; anything else unknown.
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import pandas as pd

from jobmedic.core.validate import MAX_COUNT, MAX_CPUS, MAX_DURATION_S, MAX_MEM_MB, epoch_max
from jobmedic.ingest.base import Batch, IngestContext, event_tuple
from jobmedic.ingest.frames import (
    Labels,
    floats,
    in_range,
    ints,
    job_rows,
    line_chunks,
    numeric,
    parse_chunk,
    rejects_of,
)
from jobmedic.knowledge.errors import InputError

FIELDS = ("job", "submit", "wait", "run", "alloc_procs", "avg_cpu", "used_mem_kb", "req_procs",
          "req_time", "req_mem_kb", "status", "user", "group", "executable", "queue",
          "partition", "preceding_job", "think_time")
# status -> (state, raw_state)
STATUS = {1: ("completed", "COMPLETED"), 0: ("failed", "FAILED"), 5: ("cancelled", "CANCELLED"),
          2: ("unknown", "PARTIAL"), 3: ("completed", "PARTIAL_COMPLETED"),
          4: ("failed", "PARTIAL_FAILED")}
# -1 is SWF's "unknown"; other values must be finite and below these ceilings.
_DUR, _PROCS, _KB = (-1.0, float(MAX_DURATION_S)), (-1.0, float(MAX_CPUS)), \
    (-1.0, MAX_MEM_MB * 1024)
_CODE = (-1.0, 2.0**53)
BOUNDS = {"job": (0.0, 2.0**63 - 1024), "submit": _DUR, "wait": _DUR, "run": _DUR,
          "alloc_procs": _PROCS, "avg_cpu": (-1.0, float(MAX_DURATION_S)), "used_mem_kb": _KB,
          "req_procs": _PROCS, "req_time": _DUR, "req_mem_kb": _KB,
          "status": (-1.0, float(MAX_COUNT)), "user": _CODE, "group": _CODE,
          "executable": _CODE, "queue": _CODE, "partition": _CODE, "preceding_job": _CODE,
          "think_time": (-1.0, float(MAX_DURATION_S))}
_HEADER_RE = re.compile(r"^\s*;\s*([A-Za-z]+)\s*:\s*(.*?)\s*$")


def cluster_from_path(path: str) -> str:
    """``/x/RICC-2010-2.swf.gz`` -> ``ricc`` (the name before the first '-' or '.')."""
    name = Path(path).name
    return re.split(r"[-.]", name, maxsplit=1)[0].lower() or "swf"


class SwfReader:
    name = "swf"
    description = "Standard Workload Format (Parallel Workloads Archive), plain or .gz"

    def batches(self, stream: TextIO, ctx: IngestContext) -> Iterator[Batch]:
        header: dict[str, str] = {}
        lineno = 0
        first = ""
        for line in stream:
            lineno += 1
            if line.lstrip().startswith(";"):
                m = _HEADER_RE.match(line)
                if m:
                    header.setdefault(m.group(1), m.group(2))
                continue
            if line.strip():
                first = line
                break
        if first and len(first.split()) != len(FIELDS):
            raise InputError(f"{ctx.file}: not Standard Workload Format: the first job line has "
                             f"{len(first.split())} fields, SWF has 18 ({first.strip()[:60]!r})",
                             hint="pass a .swf (or .swf.gz) log from the Parallel Workloads Archive")
        if first and not re.match(r"^\s*-?\d", first):
            raise InputError(f"{ctx.file}: not Standard Workload Format: the first job line is "
                             f"not numeric ({first.strip()[:60]!r})",
                             hint="pass a .swf (or .swf.gz) log from the Parallel Workloads Archive")
        if not first:
            if not header:
                raise InputError(f"{ctx.file}: empty input, no SWF header or job lines",
                                 hint="pass a .swf (or .swf.gz) log")
            return
        try:
            t0 = int(float(header.get("UnixStartTime", "0")))
        except ValueError:
            raise InputError(f"{ctx.file}: SWF header UnixStartTime {header['UnixStartTime']!r} "
                             "is not a number", hint="fix or delete that header line") from None
        yield from _Jobs(ctx, t0, header).batches(stream, first, lineno)


class _Jobs:
    def __init__(self, ctx: IngestContext, t0: int, header: dict[str, str]) -> None:
        self.ctx, self.t0 = ctx, t0
        default = ctx.cluster in (None, "", "default")
        self.cluster = cluster_from_path(ctx.file) if default and ctx.file != "-" else (
            "swf" if default else ctx.cluster)
        self.labels = {k: Labels(p) for k, p in (("user", "u"), ("group", "g"),
                                                  ("executable", "app-"), ("queue", "q"),
                                                  ("partition", "p"))}

    def batches(self, stream: TextIO, first: str, lineno: int) -> Iterator[Batch]:
        for chunk in line_chunks(stream, len(FIELDS), self.ctx.batch_size, first_lineno=lineno,
                                 sep=None, comment=";", pending=[first], line_chars=90):
            df = parse_chunk(chunk, FIELDS, sep=None)
            df, bad = numeric(df, FIELDS, required=("job", "submit"))
            df, more = in_range(df, BOUNDS)
            bad += more
            df, more = self._times_in_range(df)
            bad += more
            batch = Batch(read=chunk.read)
            batch.rejects = rejects_of(chunk, bad, "swf", self.ctx.file)
            if len(df):
                self._jobs(df, batch)
            yield batch

    def _times_in_range(self, df: pd.DataFrame) -> tuple[pd.DataFrame, list]:
        """The absolute times a row makes (log start + submit, + wait, + run) lie between 1970
        and now + 1 year."""
        submit = df["submit"].to_numpy(dtype=np.float64) + self.t0
        end = submit + np.maximum(df["wait"].to_numpy(dtype=np.float64), 0) + np.maximum(
            df["run"].to_numpy(dtype=np.float64), 0)
        times = pd.DataFrame({"submit time": submit, "end time": end, "_line": df["_line"]})
        times, bad = in_range(times, {"submit time": (0.0, float(epoch_max())),
                                      "end time": (0.0, float(epoch_max()))}, unit=" (epoch s)")
        return (df.loc[times.index] if bad else df), bad

    def _jobs(self, df: pd.DataFrame, batch: Batch) -> None:
        n = len(df)
        col = {c: df[c].to_numpy(dtype=np.float64) for c in FIELDS}
        known = {c: np.where(col[c] >= 0, col[c], np.nan) for c in FIELDS}
        status = col["status"]
        state = np.full(n, "unknown", dtype=object)
        raw = np.full(n, "UNKNOWN", dtype=object)
        for code, (st, r) in STATUS.items():
            m = status == code
            state[m], raw[m] = st, r
        run, req_time = known["run"], known["req_time"]
        failed = state == "failed"
        hit_limit = failed & (req_time > 0) & (run >= req_time)
        state[hit_limit] = "timeout"
        ftype = np.full(n, None, dtype=object)
        blame = np.full(n, None, dtype=object)
        ftype[failed], blame[failed] = "app_error", "job"
        ftype[hit_limit], blame[hit_limit] = "timeout", "job"
        ftype[state == "cancelled"], blame[state == "cancelled"] = "cancelled", "job"
        submit = known["submit"] + self.t0
        start = submit + known["wait"]
        end = start + run
        procs = np.where(known["req_procs"] > 0, known["req_procs"], known["alloc_procs"])
        alloc = np.where(known["alloc_procs"] > 0, known["alloc_procs"], procs)
        req_mem = np.where(known["req_mem_kb"] > 0, known["req_mem_kb"] * procs / 1024, np.nan)
        used_mem = np.where(known["used_mem_kb"] > 0, known["used_mem_kb"] * alloc / 1024, np.nan)
        ids = [str(j) for j in ints(col["job"])]
        lab = {k: f(known[k]) for k, f in self.labels.items()}
        cols: dict[str, Any] = {
            "cluster": self.cluster, "job_id": ids, "name": lab["executable"], "user": lab["user"],
            "project": lab["group"], "queue": lab["queue"], "qos": lab["partition"],
            "state": state.tolist(), "raw_state": raw.tolist(), "failure_type": ftype.tolist(),
            "blame": blame.tolist(), "submit_time": ints(submit), "start_time": ints(start),
            "end_time": ints(end), "elapsed_s": ints(run), "timelimit_s": ints(req_time),
            "req_cpus": ints(np.where(procs > 0, procs, np.nan)), "req_mem_mb": floats(req_mem),
            "max_rss_mb": floats(used_mem), "source": "swf",
        }
        batch.job_columns, batch.jobs = job_rows(cols, n)
        for i in np.flatnonzero(failed).tolist():
            why = "ran to its requested time" if hit_limit[i] else "SWF status failed"
            ev = {"cluster": self.cluster, "job_id": ids[i], "job_name": cols["name"][i],
                  "project": cols["project"][i], "user": cols["user"][i],
                  "failure_type": ftype[i], "blame": blame[i], "phase": raw[i],
                  "timestamp": cols["end_time"][i] or cols["submit_time"][i],
                  "error_message": why, "evidence": f"status {int(status[i])}",
                  "cpu_request": None if np.isnan(procs[i]) else str(int(procs[i])),
                  "source": "swf", "resolved": 0}
            batch.events.append(event_tuple(ev, f"job:{self.cluster}:{ids[i]}"))
