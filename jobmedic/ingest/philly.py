"""Microsoft Philly GPU jobs with their telemetry windows (`jobmedic ingest philly DIR`).

DIR holds ``philly_jobs.csv`` (jobid, status Pass/Failed, vc, user, submitted_time,
start_time, end_time, runtime_min, n_machines, n_gpus, machines ';'-separated) and
``philly_job_windows_long.csv`` (jobid, metric, name, machine_type, trace, then one column a
minute relative to the job's start rounded down to the minute: -10 .. 3). The path may also
be the jobs file itself; the windows file is read from beside it.

Jobs: cluster ``philly`` (``--cluster`` overrides), vc -> `project`, Pass -> completed,
Failed -> failed (failure type unknown, blame unclear: the trace does not say why; each
failed job gets a `failure_events` row), runtime_min * 60 -> `elapsed_s`, n_machines ->
`n_nodes`, n_gpus -> `req_gpus`, machines -> `node_list` and `job_nodes`. Times
``YYYY-MM-DD HH:MM:SS`` are taken as UTC like every naive time jobmedic reads (the trace is a
local clock: its 2017-11-05 01:xx hour occurs twice).

Telemetry (one sample per minute and series, t = start minute + offset * 60):
gpu_util (name ``m127_gpu0`` -> node m127, device gpu0) -> ``gpu_util_pct``; cpu_util ->
``cpu_util_pct`` (node); mem_util's ``memory`` trace is percent FREE of the whole machine
and becomes ``mem_used_pct`` = 100 - free; any other trace -> ``<metric>_<trace>_pct``.
Values are whole-machine figures shared with co-located jobs. Empty cells and -1 are
missing (no sample). A cell that is not a number (the source has cells holding a printed
pandas Series for the repeated DST hour) is missing too, and its row is listed in the
rejects; a row of a job not in philly_jobs.csv, or a percentage outside [0, 100], is a
reject.
"""
from __future__ import annotations

import csv
import os
from collections.abc import Iterator
from typing import Any, TextIO

import numpy as np
import pandas as pd

from jobmedic.ingest.base import Batch, IngestContext, event_tuple
from jobmedic.ingest.frames import (
    csv_chunks,
    epochs_in_range,
    ints,
    job_rows,
    numeric,
    rejects_of,
    strings,
)
from jobmedic.ingest.inputs import open_input
from jobmedic.knowledge.errors import InputError

JOB_FIELDS = ("jobid", "status", "vc", "user", "submitted_time", "start_time", "end_time",
              "runtime_min", "n_machines", "n_gpus", "machines")
WINDOW_KEYS = ("jobid", "metric", "name", "machine_type", "trace")
JOBS_FILE, WINDOWS_FILE = "philly_jobs.csv", "philly_job_windows_long.csv"
TIMES = ("submitted_time", "start_time", "end_time")
_EPOCH = pd.Timestamp("1970-01-01", tz="UTC")
_STATES = {"Pass": ("completed", None, None), "Failed": ("failed", "unknown", "unclear")}


def metric_name(metric: str, trace: str) -> str:
    """The stored metric of a (metric, trace) pair of the windows file."""
    if metric == "mem_util" and trace == "memory":
        return "mem_used_pct"
    if trace == "utilization" and metric in ("gpu_util", "cpu_util"):
        return f"{metric}_pct"
    return f"{metric}_{trace}_pct"


class PhillyReader:
    name = "philly"
    description = "Microsoft Philly GPU jobs and their per-minute telemetry windows (DIR)"
    entry_file = JOBS_FILE  # `jobmedic ingest philly DIR` opens DIR/philly_jobs.csv

    def batches(self, stream: TextIO, ctx: IngestContext) -> Iterator[Batch]:
        first = stream.readline().lstrip("\ufeff").rstrip("\r\n")
        if tuple(h.strip() for h in first.split(",")) != JOB_FIELDS:
            raise InputError(f"{ctx.file}: not philly_jobs.csv (header {first[:80]!r})",
                             hint="pass the folder holding philly_jobs.csv and "
                                  "philly_job_windows_long.csv")
        folder = ctx.file if os.path.isdir(ctx.file) else os.path.dirname(ctx.file) or "."
        windows = os.path.join(folder, WINDOWS_FILE)
        if not os.path.isfile(windows):
            raise InputError(f"{windows} not found: the Philly telemetry windows are read from "
                             "beside philly_jobs.csv", hint="pass the folder holding both files")
        cluster = ctx.cluster if ctx.cluster not in (None, "", "default") else "philly"
        starts: dict[str, int] = {}
        for df, chunk in csv_chunks(stream, JOB_FIELDS, ctx.batch_size, first_lineno=2):
            df, bad = numeric(df, ("runtime_min", "n_machines", "n_gpus"))
            df, more = _times(df)
            bad += more
            df, more = epochs_in_range(df, TIMES)
            bad += more
            status = df["status"].str.strip()
            wrong = ~status.isin(list(_STATES)) | df["start_time"].isna()
            bad += [(int(n), f"status {s!r} is not Pass/Failed" if s not in _STATES else
                     "start_time: missing", "") for n, s in zip(df["_line"][wrong], status[wrong])]
            df = df[~wrong.to_numpy()]
            batch = Batch(read=chunk.read)
            batch.rejects = [(src, f, n, f"{JOBS_FILE}: {why}", raw) for src, f, n, why, raw
                             in rejects_of(chunk, sorted(bad), self.name, ctx.file)]
            if len(df):
                _jobs(df, cluster, batch)
                starts.update(zip(batch_ids(df), (df["start_time"].to_numpy() // 60 * 60)
                                  .astype(np.int64).tolist()))
            yield batch
        wstream, _counter, _total = open_input(windows)
        try:
            # rejects carry ctx.file (what a re-ingest clears), their reason names the file
            yield from _windows(wstream, ctx.file, cluster, starts, ctx.batch_size, self.name)
        finally:
            wstream.close()


def batch_ids(df: pd.DataFrame) -> list[str]:
    return df["jobid"].str.strip().tolist()


def _times(df: pd.DataFrame) -> tuple[pd.DataFrame, list[tuple[int, str, str]]]:
    bad = np.zeros(len(df), dtype=bool)
    out = []
    for col in TIMES:
        raw = df[col].str.strip()
        empty = (raw == "").to_numpy()
        t = pd.to_datetime(raw.where(~empty), format="%Y-%m-%d %H:%M:%S", errors="coerce",
                           utc=True)
        wrong = t.isna().to_numpy() & ~empty & ~bad
        out += [(int(n), f"{col}: {v!r} is not YYYY-MM-DD HH:MM:SS", "")
                for n, v in zip(df["_line"][wrong], raw[wrong])]
        bad |= wrong
        df[col] = ((t - _EPOCH) // pd.Timedelta(seconds=1)).astype("float64").to_numpy()
    return (df[~bad] if bad.any() else df), out


def _jobs(df: pd.DataFrame, cluster: str, batch: Batch) -> None:
    n = len(df)
    ids = batch_ids(df)
    raw = df["status"].str.strip().tolist()
    state = [_STATES[s][0] for s in raw]
    machines = [[m for m in str(v).split(";") if m] for v in df["machines"].tolist()]
    cols: dict[str, Any] = {
        "cluster": cluster, "job_id": ids, "user": strings(df["user"].str.strip()),
        "project": strings(df["vc"].str.strip()), "state": state, "raw_state": raw,
        "failure_type": [_STATES[s][1] for s in raw], "blame": [_STATES[s][2] for s in raw],
        "submit_time": ints(df["submitted_time"]), "start_time": ints(df["start_time"]),
        "end_time": ints(df["end_time"]), "elapsed_s": ints(np.round(
            df["runtime_min"].to_numpy(dtype=np.float64) * 60)),
        "n_nodes": ints(df["n_machines"]), "req_gpus": ints(df["n_gpus"]),
        "node_list": [",".join(m) or None for m in machines], "source": "philly",
    }
    batch.job_columns, batch.jobs = job_rows(cols, n)
    batch.nodes = [(cluster, j, m) for j, ms in zip(ids, machines) for m in ms]
    for i, s in enumerate(state):
        if s != "failed":
            continue
        ev = {"cluster": cluster, "job_id": ids[i], "project": cols["project"][i],
              "user": cols["user"][i], "failure_type": "unknown", "blame": "unclear",
              "phase": raw[i], "timestamp": cols["end_time"][i] or cols["start_time"][i] or 0,
              "node_name": machines[i][0] if machines[i] else None,
              "error_message": "Philly job status Failed", "evidence": "status Failed",
              "gpu_count": cols["req_gpus"][i], "source": "philly", "resolved": 0}
        batch.events.append(event_tuple(ev, f"job:{cluster}:{ids[i]}"))


def _windows(stream: TextIO, path: str, cluster: str, starts: dict[str, int], size: int,
             source: str) -> Iterator[Batch]:
    """The windows file in batches of samples. csv.reader keeps a quoted cell that runs over
    several lines inside its row (the source has such cells), so line numbers stay right."""
    reader = csv.reader(stream)
    header = next(reader, None) or []
    if tuple(header[:5]) != WINDOW_KEYS or len(header) < 6:
        raise InputError(f"{WINDOWS_FILE} beside {path} has the wrong header "
                         f"{','.join(header)[:80]!r}")
    try:
        offsets = np.array([int(h) for h in header[5:]], dtype=np.int64) * 60
    except ValueError:
        raise InputError(f"{WINDOWS_FILE}: minute columns {header[5:]} are not integers"
                         ) from None
    width = len(header)
    rows: list[list[str]] = []
    lines: list[int] = []
    rejects: list[tuple] = []
    line = reader.line_num + 1
    for row in reader:
        if len(row) == width:
            rows.append(row)
            lines.append(line)
        elif any(f.strip() for f in row):
            why = f"{WINDOWS_FILE}: expected {width} fields, found {len(row)}"
            rejects.append((source, path, line, why, ",".join(row)[:2000]))
        line = reader.line_num + 1
        if len(rows) >= size:
            yield _window_batch(rows, lines, rejects, offsets, cluster, starts, path, source)
            rows, lines, rejects = [], [], []
    if rows or rejects:
        yield _window_batch(rows, lines, rejects, offsets, cluster, starts, path, source)


def _window_batch(rows: list[list[str]], lines: list[int], rejects: list[tuple],
                  offsets: np.ndarray, cluster: str, starts: dict[str, int], path: str,
                  source: str) -> Batch:
    batch = Batch(read=len(rows) + len(rejects), rejects=rejects)
    if not rows:
        return batch
    arr = np.array(rows, dtype=object)
    keys, cells = arr[:, :5], arr[:, 5:]
    flat = pd.Series(cells.ravel()).str.strip()
    num = pd.to_numeric(flat, errors="coerce").to_numpy(dtype=np.float64).reshape(cells.shape)
    notnum = np.isnan(num) & (flat != "").to_numpy().reshape(cells.shape)
    missing = np.isnan(num) | (num == -1)
    outside = ~missing & ((num < 0) | (num > 100))
    start = np.array([starts.get(j.strip(), -1) for j in keys[:, 0]], dtype=np.int64)
    unknown = start < 0
    drop = unknown | outside.any(axis=1)
    for i in np.flatnonzero(unknown | outside.any(axis=1) | notnum.any(axis=1)).tolist():
        if unknown[i]:
            why = f"job {keys[i, 0]} is not in {JOBS_FILE}: its window has no start time"
        elif outside[i].any():
            why = f"a percentage outside [0, 100]: {num[i][outside[i]][0]:g}"
        else:
            bad = [str(int(o // 60)) for o in offsets[notnum[i]]]
            why = f"minute {', '.join(bad)}: not a number, taken as missing"
        batch.rejects.append((source, path, lines[i], f"{WINDOWS_FILE}: {why}",
                              ",".join(keys[i])))
    keep = ~drop[:, None] & ~missing
    r, c = np.nonzero(keep)
    metric = np.array([metric_name(m.strip(), t.strip()) for m, t in zip(keys[:, 1], keys[:, 4])],
                      dtype=object)
    name = keys[:, 2]
    is_gpu = np.array(["_gpu" in n for n in name])
    node = np.array([n.rsplit("_", 1)[0] if g else n for n, g in zip(name, is_gpu)], dtype=object)
    device = np.array([n.rsplit("_", 1)[1] if g else "" for n, g in zip(name, is_gpu)],
                      dtype=object)
    value = num[r, c]
    value = np.where(metric[r] == "mem_used_pct", 100.0 - value, value)
    t = start[r] + offsets[c]
    ids = np.array([k.strip() for k in keys[:, 0]], dtype=object)
    batch.samples = list(zip([cluster] * len(r), ids[r].tolist(), node[r].tolist(),
                             device[r].tolist(), metric[r].tolist(), t.tolist(), value.tolist(),
                             [source] * len(r)))
    return batch
