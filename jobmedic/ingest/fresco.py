"""FRESCO job accounting CSV (Purdue/TACC FRESCO repository; Stampede 2017 months).

Columns: ``jobID, user, account, jobname, queue, walltime, exit_status, start, end, submit,
nnodes, ncpus`` (walltime = requested minutes). Mapping: ``jobID8618020`` -> job id
``8618020`` (the Slurm id without FRESCO's prefix), account -> `project`, jobname -> `name`,
queue -> `queue`, walltime * 60 -> `timelimit_s`, nnodes -> `n_nodes`, ncpus -> `req_cpus`,
exit_status (a Slurm state: COMPLETED, CANCELLED, FAILED, TIMEOUT, NODE_FAIL) -> `state` /
`raw_state`, classified by the taxonomy like any Slurm state (TIMEOUT -> timeout/job,
NODE_FAIL -> node_failure/cluster, FAILED -> exit code 1); failed jobs get a
`failure_events` row. `elapsed_s` = end - start (NULL when end precedes start).

Times are ``MM/DD/YYYY HH:MM:SS`` without a zone. They are taken as UTC, like every naive
time jobmedic reads: on the Stampede files they carry no daylight-saving jump (the 30
TIMEOUT jobs that run across 2017-11-05 02:00 show wall-clock elapsed = limit + 14 s, the
same as every other TIMEOUT job), so they are a fixed-offset clock; if that offset is not
UTC every epoch is shifted by the same amount and no duration or ordering changes.
Cluster: ``--cluster``, else ``stampede``.
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any, TextIO

import numpy as np
import pandas as pd

from jobmedic.core.validate import MAX_CPUS, MAX_DURATION_S, MAX_NODES
from jobmedic.ingest.base import Batch, IngestContext, event_tuple
from jobmedic.ingest.frames import (
    csv_chunks,
    epochs_in_range,
    in_range,
    ints,
    job_rows,
    numeric,
    rejects_of,
    strings,
)
from jobmedic.knowledge.errors import InputError
from jobmedic.knowledge.taxonomy import FAILED_STATES

FIELDS = ("jobID", "user", "account", "jobname", "queue", "walltime", "exit_status", "start",
          "end", "submit", "nnodes", "ncpus")
NUMERIC = ("walltime", "nnodes", "ncpus")
TIMES = ("submit", "start", "end")
BOUNDS = {"walltime": (0.0, MAX_DURATION_S / 60), "nnodes": (0.0, float(MAX_NODES)),
          "ncpus": (0.0, float(MAX_CPUS))}
TIME_FORMAT = "%m/%d/%Y %H:%M:%S"
_EPOCH = pd.Timestamp("1970-01-01", tz="UTC")
_MISSING = ("", "Unknown", "None", "NaT", "NA")


class FrescoReader:
    name = "fresco"
    description = "FRESCO job accounting CSV (Stampede: jobID,user,account,jobname,...)"

    def batches(self, stream: TextIO, ctx: IngestContext) -> Iterator[Batch]:
        first = stream.readline().lstrip("\ufeff").rstrip("\r\n")
        header = tuple(h.strip() for h in first.split(","))
        # The README spells walltime as "walltime(requested, minutes)"; the files say walltime.
        if tuple(h.lower() for h in header) != tuple(f.lower() for f in FIELDS):
            raise InputError(f"{ctx.file}: not a FRESCO job accounting CSV (header "
                             f"{first[:80]!r})", hint="expected the header " + ",".join(FIELDS))
        cluster = ctx.cluster if ctx.cluster not in (None, "", "default") else "stampede"
        for df, chunk in csv_chunks(stream, FIELDS, ctx.batch_size, first_lineno=2):
            df, bad = numeric(df, NUMERIC)
            df, more = in_range(df, BOUNDS)
            bad += more
            df, more = _times(df)
            bad += more
            df, more = epochs_in_range(df, TIMES)
            bad += more
            df, more = _required(df)
            bad += more
            batch = Batch(read=chunk.read)
            batch.rejects = rejects_of(chunk, sorted(bad), self.name, ctx.file)
            if len(df):
                _jobs(df, ctx, cluster, batch)
            yield batch


def _times(df: pd.DataFrame) -> tuple[pd.DataFrame, list[tuple[int, str, str]]]:
    """Parse the three time columns to epoch seconds (float, NaN when missing)."""
    bad = np.zeros(len(df), dtype=bool)
    out = []
    for col in TIMES:
        raw = df[col].str.strip()
        unknown = (raw.isin(_MISSING) | raw.isna()).to_numpy()
        t = pd.to_datetime(raw.where(~unknown), format=TIME_FORMAT, errors="coerce", utc=True)
        wrong = t.isna().to_numpy() & ~unknown & ~bad
        out += [(int(n), f"{col}: {v!r} is not MM/DD/YYYY HH:MM:SS", "")
                for n, v in zip(df["_line"][wrong], raw[wrong])]
        bad |= wrong
        df[col] = ((t - _EPOCH) // pd.Timedelta(seconds=1)).astype("float64").to_numpy()
    return (df[~bad] if bad.any() else df), out


def _required(df: pd.DataFrame) -> tuple[pd.DataFrame, list[tuple[int, str, str]]]:
    """Rows without a job id or an exit status cannot be a job."""
    out = []
    keep = np.ones(len(df), dtype=bool)
    for col in ("jobID", "exit_status"):
        empty = (df[col].str.strip() == "").to_numpy() & keep
        out += [(int(n), f"{col}: missing", "") for n in df["_line"][empty]]
        keep &= ~empty
    return (df if keep.all() else df[keep]), out


def classify_states(raw_state: np.ndarray, ctx: IngestContext
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(state, failure_type, blame) arrays of raw Slurm states, one taxonomy call per
    distinct state (a FAILED without exit code is classified as exit code 1)."""
    tax = ctx.taxonomy
    uniq = {s: tax.normalise_state(s) for s in set(raw_state.tolist())}
    state = np.array([uniq[s] for s in raw_state], dtype=object)
    ftype = np.full(len(raw_state), None, dtype=object)
    blame = np.full(len(raw_state), None, dtype=object)
    for s, norm in uniq.items():
        if norm in FAILED_STATES or norm == "cancelled":
            c = tax.classify(s, 1 if norm == "failed" else None, None, None)
            m = raw_state == s
            ftype[m], blame[m] = c.failure_type, c.blame
    return state, ftype, blame


def _jobs(df: pd.DataFrame, ctx: IngestContext, cluster: str, batch: Batch) -> None:
    n = len(df)
    raw_state = df["exit_status"].str.strip().to_numpy(dtype=object)
    state, ftype, blame = classify_states(raw_state, ctx)
    ids = df["jobID"].str.strip().str.replace(r"^jobID", "", regex=True).tolist()
    start, end = df["start"].to_numpy(), df["end"].to_numpy()
    elapsed = np.where(end >= start, end - start, np.nan)  # NaN when either is missing
    cols: dict[str, Any] = {
        "cluster": cluster, "job_id": ids, "name": strings(df["jobname"].str.strip()),
        "user": strings(df["user"].str.strip()), "project": strings(df["account"].str.strip()),
        "queue": strings(df["queue"].str.strip()), "state": state.tolist(),
        "raw_state": raw_state.tolist(), "failure_type": ftype.tolist(), "blame": blame.tolist(),
        "submit_time": ints(df["submit"]), "start_time": ints(start), "end_time": ints(end),
        "elapsed_s": ints(elapsed), "timelimit_s": ints(df["walltime"].to_numpy() * 60),
        "req_cpus": ints(df["ncpus"]), "n_nodes": ints(df["nnodes"]), "source": "fresco",
    }
    batch.job_columns, batch.jobs = job_rows(cols, n)
    for i in np.flatnonzero(np.isin(state, list(FAILED_STATES))).tolist():
        ev = {"cluster": cluster, "job_id": ids[i], "job_name": cols["name"][i],
              "project": cols["project"][i], "user": cols["user"][i],
              "failure_type": ftype[i] or "unknown", "blame": blame[i] or "unclear",
              "phase": raw_state[i],
              "timestamp": cols["end_time"][i] or cols["start_time"][i] or cols["submit_time"][i] or 0,
              "error_message": raw_state[i], "evidence": f"state {raw_state[i]}",
              "cpu_request": None if cols["req_cpus"][i] is None else str(cols["req_cpus"][i]),
              "source": "fresco", "resolved": 0}
        batch.events.append(event_tuple(ev, f"job:{cluster}:{ids[i]}"))
