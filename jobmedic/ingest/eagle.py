"""NREL Eagle Slurm jobs (the CSV schema of github:NREL/eagle-jobs and OEDI submission 5860).

Columns: ``job_id, user, account, partition, qos, wallclock_req, nodes_req, processors_req,
gpus_req, mem_req, submit_time, start_time, end_time, run_time, state, name, work_dir,
submit_line``. Mapping: account -> `project`, partition -> `queue`, wallclock_req (seconds)
-> `timelimit_s`, nodes_req -> `n_nodes`, processors_req -> `req_cpus`, gpus_req ->
`req_gpus`, mem_req (MB for the whole job; 0 = not requested -> NULL) -> `req_mem_mb`,
run_time -> `elapsed_s`, submit_line -> `script`; times ``YYYY-MM-DD HH:MM:SS`` are taken
as UTC, as the sacct reader does (the dataset does not state its zone). States are Slurm's,
normalised and classified by the taxonomy (TIMEOUT -> timeout, OUT_OF_MEMORY -> oom, ...);
failed jobs get a `failure_events` row. Cluster: ``--cluster``, else ``eagle``. Repeated
job ids are array tasks whose task ids the dataset dropped (see `_Repeats`).
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any, TextIO

import numpy as np
import pandas as pd

from jobmedic.core.validate import MAX_CPUS, MAX_DURATION_S, MAX_GPUS, MAX_MEM_MB, MAX_NODES
from jobmedic.ingest.base import Batch, IngestContext, event_tuple
from jobmedic.ingest.frames import (
    csv_chunks,
    epochs_in_range,
    floats,
    in_range,
    ints,
    job_rows,
    numeric,
    rejects_of,
    strings,
)
from jobmedic.knowledge.errors import InputError
from jobmedic.knowledge.taxonomy import FAILED_STATES

FIELDS = ("job_id", "user", "account", "partition", "qos", "wallclock_req", "nodes_req",
          "processors_req", "gpus_req", "mem_req", "submit_time", "start_time", "end_time",
          "run_time", "state", "name", "work_dir", "submit_line")
NUMERIC = ("wallclock_req", "nodes_req", "processors_req", "gpus_req", "mem_req", "run_time")
TIMES = ("submit_time", "start_time", "end_time")
BOUNDS = {"wallclock_req": (0.0, float(MAX_DURATION_S)), "nodes_req": (0.0, float(MAX_NODES)),
          "processors_req": (0.0, float(MAX_CPUS)), "gpus_req": (0.0, float(MAX_GPUS)),
          "mem_req": (0.0, MAX_MEM_MB), "run_time": (0.0, float(MAX_DURATION_S))}
_EPOCH = pd.Timestamp("1970-01-01", tz="UTC")


class EagleReader:
    name = "eagle"
    description = "NREL Eagle Slurm job CSV (eagle-jobs schema)"

    def batches(self, stream: TextIO, ctx: IngestContext) -> Iterator[Batch]:
        first = stream.readline().rstrip("\r\n")
        header = [h.strip() for h in first.split(",")]
        if tuple(header) != FIELDS:
            raise InputError(f"{ctx.file}: not the NREL Eagle job CSV (header "
                             f"{first[:80]!r})", hint="expected the header " + ",".join(FIELDS))
        cluster = ctx.cluster if ctx.cluster not in (None, "", "default") else "eagle"
        repeats = _Repeats()
        for df, chunk in csv_chunks(stream, FIELDS, ctx.batch_size, first_lineno=2):
            df, bad = numeric(df, NUMERIC)
            df, more = in_range(df, BOUNDS)
            bad += more
            df, more = _times(df)
            bad += more
            df, more = epochs_in_range(df, TIMES)
            bad += more
            empty_id = df["job_id"].str.strip() == ""
            if empty_id.any():
                bad += [(int(n), "job_id: missing", "") for n in df["_line"][empty_id]]
                df = df[~empty_id.to_numpy()]
            batch = Batch(read=chunk.read)
            batch.rejects = rejects_of(chunk, bad, "eagle", ctx.file)
            if len(df):
                _jobs(df, ctx, cluster, batch, repeats)
            yield batch


class _Repeats:
    """The public dataset dropped array task ids: one array's tasks are consecutive rows with
    the same job_id. The k-th repeat (k >= 1, file order) becomes ``<job_id>_<k>`` with
    `array_id` ``<job_id>``. Only the previous chunk's ids are remembered (flat memory)."""

    def __init__(self) -> None:
        self.last: dict[str, int] = {}

    def __call__(self, ids: pd.Series) -> tuple[list, list]:
        k = ids.groupby(ids, sort=False).cumcount().to_numpy()
        if self.last:
            k = k + ids.map(self.last).fillna(0).astype(np.int64).to_numpy()
        self.last = dict(zip(ids.tolist(), (k + 1).tolist()))
        vals = ids.tolist()
        dup = set(ids[ids.duplicated(keep=False)].tolist()) | {
            v for v, n in zip(vals, k.tolist()) if n > 0}
        out = [v if n == 0 else f"{v}_{n}" for v, n in zip(vals, k.tolist())]
        arr = [v if v in dup else None for v in vals]
        return out, arr


def _times(df: pd.DataFrame) -> tuple[pd.DataFrame, list[tuple[int, str, str]]]:
    bad = np.zeros(len(df), dtype=bool)
    out = []
    for col in TIMES:
        raw = df[col].str.strip()
        unknown = raw.isin(["", "Unknown", "None", "NaT"]) | raw.isna()
        t = pd.to_datetime(raw.where(~unknown), format="%Y-%m-%d %H:%M:%S", errors="coerce",
                           utc=True)
        wrong = (t.isna() & ~unknown).to_numpy() & ~bad
        out += [(int(n), f"{col}: {v!r} is not YYYY-MM-DD HH:MM:SS", "")
                for n, v in zip(df["_line"][wrong], raw[wrong])]
        bad |= wrong
        df[col] = ((t - _EPOCH) // pd.Timedelta(seconds=1)).astype("float64").to_numpy()
    return (df[~bad] if bad.any() else df), out


def _jobs(df: pd.DataFrame, ctx: IngestContext, cluster: str, batch: Batch,
          repeats: _Repeats) -> None:
    n = len(df)
    tax = ctx.taxonomy
    raw_state = df["state"].str.strip().to_numpy(dtype=object)
    uniq = {s: tax.normalise_state(s) for s in set(raw_state.tolist())}
    state = np.array([uniq[s] for s in raw_state], dtype=object)
    ftype = np.full(n, None, dtype=object)
    blame = np.full(n, None, dtype=object)
    for s, norm in uniq.items():  # one classification per distinct raw state
        if norm in FAILED_STATES or norm == "cancelled":
            c = tax.classify(s, 1 if norm == "failed" else None, None, None)
            m = raw_state == s
            ftype[m], blame[m] = c.failure_type, c.blame
    mem = df["mem_req"].to_numpy(dtype=np.float64)
    ids, array_ids = repeats(df["job_id"].str.strip())
    cols: dict[str, Any] = {
        "cluster": cluster, "job_id": ids, "array_id": array_ids, "name": strings(df["name"]),
        "user": strings(df["user"]), "project": strings(df["account"]),
        "queue": strings(df["partition"]), "qos": strings(df["qos"]), "state": state.tolist(),
        "raw_state": raw_state.tolist(), "failure_type": ftype.tolist(), "blame": blame.tolist(),
        "submit_time": ints(df["submit_time"]), "start_time": ints(df["start_time"]),
        "end_time": ints(df["end_time"]), "elapsed_s": ints(df["run_time"]),
        "timelimit_s": ints(df["wallclock_req"]), "req_cpus": ints(df["processors_req"]),
        "req_gpus": ints(df["gpus_req"]), "req_mem_mb": floats(np.where(mem > 0, mem, np.nan)),
        "n_nodes": ints(df["nodes_req"]), "work_dir": strings(df["work_dir"]),
        "script": strings(df["submit_line"]), "source": "eagle",
    }
    batch.job_columns, batch.jobs = job_rows(cols, n)
    for i in np.flatnonzero(np.isin(state, list(FAILED_STATES))).tolist():
        ev = {"cluster": cluster, "job_id": ids[i], "job_name": cols["name"][i],
              "project": cols["project"][i], "user": cols["user"][i],
              "failure_type": ftype[i] or "unknown", "blame": blame[i] or "unclear",
              "phase": raw_state[i], "timestamp": cols["end_time"][i] or cols["submit_time"][i] or 0,
              "error_message": raw_state[i], "evidence": f"state {raw_state[i]}",
              "cpu_request": None if cols["req_cpus"][i] is None else str(cols["req_cpus"][i]),
              "gpu_count": cols["req_gpus"][i], "source": "eagle", "resolved": 0}
        batch.events.append(event_tuple(ev, f"job:{cluster}:{ids[i]}"))
