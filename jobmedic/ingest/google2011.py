"""Google Borg cluster trace 2011 (clusterdata-2011-2): the per-job table and raw task events.

One reader, two inputs, told apart by their first line:

* the derived **jobs table** (`google2011_jobs.csv.gz`, header line starting `job_id,user,`):
  one `jobs` row per Borg job, its state from the last terminal event; FAIL / EVICT / LOST
  jobs also get a `failure_events` row (key ``job:<cluster>:<job_id>``);
* raw **task events** (`task_events/part-*.csv.gz`, no header, 13 comma-separated fields, the
  first an integer): SCHEDULE events put their machine into `job_nodes` (node ``m<machine
  id>``); FAIL, EVICT, KILL and LOST task events become `failure_events` with that node
  (key ``g11task:<job>:<task>:<time_us>:<type>``, so re-ingesting adds nothing).

Trace times are seconds since the trace start; the trace's 600 s is 2011-05-01 19:00 US/Eastern
(EDT, UTC-4) = 23:00 UTC = epoch 1304290800, so epoch = trace seconds + 1304290200
(`EPOCH_OFFSET`). Trace time 0 means "before the trace began" and stays 1304290200.

Names: the table's dense integer codes become strings: user 17 -> ``u17`` (also the
`project`: Borg has no accounts, the trace's "user" is the accounting entity), logical job
name 90 -> ``job-90`` (`name`; the logical name groups the runs of one program), scheduling
class 0-3 -> queue ``class-0`` .. ``class-3``. The whole path is vectorised: pandas parses a
chunk, numpy maps it, one list of tuples per batch.
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any, TextIO

import numpy as np
import pandas as pd

from jobmedic.core.validate import MAX_COUNT, epoch_max
from jobmedic.ingest.base import Batch, IngestContext, event_tuple
from jobmedic.ingest.frames import (
    Labels,
    in_range,
    ints,
    job_rows,
    line_chunks,
    numeric,
    parse_chunk,
    rejects_of,
)
from jobmedic.knowledge.errors import InputError

EPOCH_OFFSET = 1_304_290_200  # epoch seconds at trace time 0 (see module docstring)
DEFAULT_CLUSTER = "google2011"

JOB_FIELDS = ("job_id", "user", "scheduling_class", "logical_job_name", "job_name", "submit_s",
              "schedule_s", "end_s", "final_event", "n_schedule", "n_evict", "n_fail", "n_kill",
              "n_lost", "missing_info")
TASK_FIELDS = ("timestamp_us", "missing_info", "job_id", "task_index", "machine_id",
               "event_type", "user_hash", "scheduling_class", "priority", "cpu_request",
               "memory_request", "disk_space_request", "different_machine_constraint")

# final_event -> (state, failure_type, blame)
FINAL = {
    "FINISH": ("completed", None, None),
    "FAIL": ("failed", "app_error", "job"),
    "EVICT": ("preempted", "preempted", "cluster"),
    "LOST": ("node_fail", "node_failure", "cluster"),
    "KILL": ("cancelled", "cancelled", "job"),
}
# task event_type -> (name, failure_type, blame); 1 = SCHEDULE (gives the machine)
TASK_FAILURES = {2: ("EVICT", "preempted", "cluster"), 3: ("FAIL", "app_error", "job"),
                 5: ("KILL", "cancelled", "job"), 6: ("LOST", "node_failure", "cluster")}
SCHEDULE = 1
_FINAL_NAMES = ", ".join(FINAL) + " or empty"
_TRACE_END_US = 2**62  # the trace marks "after the end" with 2^63-1 µs
_ID = (0.0, 2.0**63 - 1024)  # a 64-bit id (the largest float below 2^63)
_CODE = (0.0, 2.0**53)  # a dense integer code (user, logical name, class, machine)
_N = (0.0, float(MAX_COUNT))


def _job_bounds() -> dict[str, tuple[float, float]]:
    """Trace seconds (0 = before the trace) whose epoch (+ EPOCH_OFFSET) is before now + 1 year."""
    t = (0.0, float(epoch_max() - EPOCH_OFFSET))
    return {"job_id": _ID, "user": _CODE, "scheduling_class": _CODE, "logical_job_name": _CODE,
            "job_name": _CODE, "submit_s": t, "schedule_s": t, "end_s": t, "n_schedule": _N,
            "n_evict": _N, "n_fail": _N, "n_kill": _N, "n_lost": _N, "missing_info": _N}


_TASK_BOUNDS = {"timestamp_us": (0.0, 2.0**63), "job_id": _ID, "task_index": _N,
                "machine_id": _CODE, "event_type": (0.0, 8.0)}


def _cluster(ctx: IngestContext) -> str:
    return ctx.cluster if ctx.cluster not in (None, "", "default") else DEFAULT_CLUSTER


class Google2011Reader:
    name = "google2011"
    description = ("Google Borg 2011 trace: the per-job table (header line) or raw task_events "
                   "part files (13 fields, no header)")

    def batches(self, stream: TextIO, ctx: IngestContext) -> Iterator[Batch]:
        first = stream.readline()
        head = first.rstrip("\r\n")
        fields = head.split(",")
        if fields[:2] == ["job_id", "user"]:
            missing = [f for f in JOB_FIELDS if f not in fields]
            if missing:
                raise InputError(f"{ctx.file}: Google 2011 jobs table without columns "
                                 f"{', '.join(missing)}", hint="expected the header " + ",".join(JOB_FIELDS))
            if tuple(fields) != JOB_FIELDS:
                raise InputError(f"{ctx.file}: Google 2011 jobs table columns are not in the "
                                 f"expected order", hint="expected the header " + ",".join(JOB_FIELDS))
            yield from _JobsTable(ctx).batches(stream)
        elif len(fields) == len(TASK_FIELDS) and fields[0].isdigit() and fields[2].isdigit():
            yield from _TaskEvents(ctx).batches(stream, first)
        else:
            raise InputError(
                f"{ctx.file}: neither the Google 2011 jobs table (header 'job_id,user,...') nor a "
                f"task_events part (13 fields, no header); first line: {head[:80]!r}",
                hint="pass google2011_jobs.csv.gz or task_events/part-*.csv.gz")


class _JobsTable:
    def __init__(self, ctx: IngestContext) -> None:
        self.ctx = ctx
        self.cluster = _cluster(ctx)
        self.users, self.names = Labels("u"), Labels("job-")
        self.queues = Labels("class-")

    def batches(self, stream: TextIO) -> Iterator[Batch]:
        num_cols = [c for c in JOB_FIELDS if c != "final_event"]
        dtype = {"final_event": object}
        for chunk in line_chunks(stream, len(JOB_FIELDS), self.ctx.batch_size, first_lineno=2,
                                 line_chars=60):
            df = parse_chunk(chunk, JOB_FIELDS, dtype=dtype)
            df, bad = numeric(df, num_cols, required=("job_id", "user", "submit_s"))
            df, more = in_range(df, _job_bounds())
            bad += more
            unknown = ~df["final_event"].isna() & ~df["final_event"].isin(list(FINAL))
            if unknown.any():
                bad += [(int(n), f"final_event: unknown value {v!r} (expected {_FINAL_NAMES})", "")
                        for n, v in zip(df["_line"][unknown], df["final_event"][unknown])]
                df = df[~unknown.to_numpy()]
            batch = Batch(read=chunk.read)
            batch.rejects = rejects_of(chunk, bad, "google2011", self.ctx.file)
            if len(df):
                self._jobs(df, batch)
            yield batch

    def _jobs(self, df: pd.DataFrame, batch: Batch) -> None:
        n = len(df)
        final = df["final_event"].to_numpy(dtype=object)
        ended = pd.notna(final)
        state = np.full(n, "running", dtype=object)
        ftype = np.full(n, None, dtype=object)
        blame = np.full(n, None, dtype=object)
        for ev, (st, ft, bl) in FINAL.items():
            m = final == ev
            state[m], ftype[m], blame[m] = st, ft, bl
        n_evict, n_fail, n_lost = (df[c].to_numpy() for c in ("n_evict", "n_fail", "n_lost"))
        # A FAIL after the job's tasks were also evicted or lost: the cluster may have a part.
        blame[(final == "FAIL") & ((n_evict > 0) | (n_lost > 0))] = "unclear"
        submit = df["submit_s"].to_numpy(dtype=np.float64) + EPOCH_OFFSET
        start = df["schedule_s"].to_numpy(dtype=np.float64) + EPOCH_OFFSET
        end = df["end_s"].to_numpy(dtype=np.float64) + EPOCH_OFFSET
        end = np.where(ended, end, np.nan)
        elapsed = np.round(end - start)
        raw_state = np.where(ended, final, "RUNNING")
        eventful = (n_evict > 0) | (n_fail > 0) | (n_lost > 0)
        reason = np.full(n, None, dtype=object)
        if eventful.any():
            sub = df.loc[eventful, ["n_schedule", "n_evict", "n_fail", "n_kill", "n_lost"]]
            reason[eventful] = [f"job events: {a} schedule, {b} evict, {c} fail, {d} kill, {e} lost"
                                for a, b, c, d, e in sub.itertuples(index=False, name=None)]
        users = self.users(df["user"].to_numpy())
        ids = df["job_id"].to_numpy().astype(np.int64).astype(str).astype(object).tolist()
        cols: dict[str, Any] = {
            "cluster": self.cluster, "job_id": ids, "name": self.names(df["logical_job_name"].to_numpy()),
            "user": users, "project": users, "queue": self.queues(df["scheduling_class"].to_numpy()),
            "state": state.tolist(), "raw_state": raw_state.tolist(), "failure_type": ftype.tolist(),
            "blame": blame.tolist(), "reason": reason.tolist(), "submit_time": ints(np.floor(submit)),
            "start_time": ints(np.floor(start)), "end_time": ints(np.floor(end)),
            "elapsed_s": ints(elapsed), "source": "google2011",
        }
        batch.job_columns, batch.jobs = job_rows(cols, n)
        failed = np.flatnonzero(np.isin(final, ("FAIL", "EVICT", "LOST")))
        for i in failed.tolist():
            ev = {"cluster": self.cluster, "job_id": ids[i], "job_name": cols["name"][i],
                  "project": users[i], "user": users[i], "failure_type": ftype[i],
                  "blame": blame[i], "phase": final[i],
                  "timestamp": cols["end_time"][i] or cols["submit_time"][i],
                  "error_message": f"Borg job {final[i]}" + (f" ({reason[i]})" if reason[i] else ""),
                  "evidence": f"final_event {final[i]}", "source": "google2011", "resolved": 0}
            batch.events.append(event_tuple(ev, f"job:{self.cluster}:{ids[i]}"))


class _TaskEvents:
    def __init__(self, ctx: IngestContext) -> None:
        self.ctx = ctx
        self.cluster = _cluster(ctx)
        self.machines = Labels("m")

    def batches(self, stream: TextIO, first: str) -> Iterator[Batch]:
        dtype = {"user_hash": object}
        num_cols = ("timestamp_us", "job_id", "task_index", "machine_id", "event_type")
        for chunk in line_chunks(stream, len(TASK_FIELDS), self.ctx.batch_size, first_lineno=1,
                                 pending=[first], line_chars=110):
            df = parse_chunk(chunk, TASK_FIELDS, dtype=dtype)
            df, bad = numeric(df, num_cols, required=("timestamp_us", "job_id", "task_index", "event_type"))
            df, more = in_range(df, _TASK_BOUNDS)
            bad += more
            batch = Batch(read=chunk.read)
            batch.rejects = rejects_of(chunk, bad, "google2011", self.ctx.file)
            if len(df):
                self._events(df, batch)
            yield batch

    def _events(self, df: pd.DataFrame, batch: Batch) -> None:
        etype = df["event_type"].to_numpy().astype(np.int64)
        job = df["job_id"].to_numpy().astype(np.int64)
        machine = df["machine_id"].to_numpy(dtype=np.float64)
        sched = (etype == SCHEDULE) & ~np.isnan(machine)
        if sched.any():
            pairs = pd.DataFrame({"j": job[sched], "m": machine[sched]}).drop_duplicates()
            nodes = self.machines(pairs["m"].to_numpy())
            batch.nodes = list(zip([self.cluster] * len(pairs),
                                   pairs["j"].astype(str).tolist(), nodes))
        fail = np.isin(etype, list(TASK_FAILURES))
        if not fail.any():
            return
        sub = df[fail]
        ts_us = sub["timestamp_us"].to_numpy(dtype=np.float64)
        ts = ints(np.floor(np.minimum(ts_us, _TRACE_END_US) / 1e6) + EPOCH_OFFSET)
        nodes = self.machines(sub["machine_id"].to_numpy(dtype=np.float64))
        jobs = sub["job_id"].to_numpy().astype(np.int64).astype(str).tolist()
        tasks = sub["task_index"].to_numpy().astype(np.int64).tolist()
        types = etype[fail].tolist()
        raw_ts = ts_us.astype(np.int64).tolist()
        for j, t, node, tsec, e, rts in zip(jobs, tasks, nodes, ts, types, raw_ts):
            name, ft, bl = TASK_FAILURES[e]
            ev = {"cluster": self.cluster, "job_id": j, "failure_type": ft, "blame": bl,
                  "phase": name, "timestamp": tsec, "pod_name": f"{j}/{t}", "node_name": node,
                  "error_message": f"Borg task {name}" + (f" on {node}" if node else ""),
                  "evidence": f"task event {name}", "source": "google2011", "resolved": 0}
            batch.events.append(event_tuple(ev, f"g11task:{j}:{t}:{rts}:{e}"))
