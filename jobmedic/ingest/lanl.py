"""LANL node failure records 1996-2005 (LA-UR-05-7318, the CFDR failure data).

One row per node interruption. Each becomes a `failure_events` row (no job): cluster
``lanl-<System>`` (``--cluster`` overrides), node ``<System>-<nodenum>`` (the node is the
subject; rows without a node number are system-wide and have none), timestamp = ``Prob Started`` (``6/21/2005 10:54``, taken
as UTC like every naive time jobmedic reads), phase = the root-cause category, error message
= ``<category>: <sub-cause>; down <Down Time> min (fixed <Prob Fixed>)``.

Root cause -> failure type (blame):
Hardware -> node_failure (cluster), or gpu_error for graphics / GPU hardware;
Software: Parallel / Cluster File System, NFS, Scratch FS, Disk IO -> filesystem_error
(cluster); Network / Interconnect / MPI services -> network_error (unclear); User code ->
app_error (job); any other software (OS, kernel, DST, scheduler, upgrades) -> node_failure
(cluster); Network -> network_error (unclear); Facilities (power, UPS, chillers) ->
node_failure (cluster); Human Error -> unknown (cluster: an operator's mistake);
Undetermined -> unknown (unclear).
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import TextIO

import numpy as np
import pandas as pd

from jobmedic.core.validate import MAX_COUNT, MAX_DURATION_S
from jobmedic.ingest.base import Batch, IngestContext, event_tuple
from jobmedic.ingest.frames import (
    csv_chunks,
    epochs_in_range,
    in_range,
    ints,
    numeric,
    rejects_of,
    strings,
)
from jobmedic.knowledge.errors import InputError

FIELDS = ("System", "machine type", "nodes", "procstot", "procsinnode", "nodenum", "nodenumz",
          "node install", "node prod", "node decom", "fru type", "mem", "cputype", "memtype",
          "num intercon", "purpose", "Prob Started", "Prob Fixed", "Down Time", "Facilities",
          "Hardware", "Human Error", "Network", "Undetermined", "Software", "Same Event")
CATEGORIES = ("Facilities", "Hardware", "Human Error", "Network", "Undetermined", "Software")
FS_SOFTWARE = ("parallel file system", "cluster file system", "nfs", "scratch fs", "disk io")
NET_SOFTWARE = ("network", "interconnect", "mpi")
GPU_HARDWARE = ("graphics", "gpu")
_EPOCH = pd.Timestamp("1970-01-01", tz="UTC")
BOUNDS = {"System": (0.0, float(MAX_COUNT)), "nodenum": (0.0, float(MAX_COUNT)),
          "Down Time": (0.0, MAX_DURATION_S / 60)}


def failure_type_of(category: str, sub: str) -> tuple[str, str]:
    """(failure_type, blame) of one LANL root cause."""
    s = sub.lower()
    if category == "Hardware":
        return ("gpu_error", "cluster") if any(k in s for k in GPU_HARDWARE) else (
            "node_failure", "cluster")
    if category == "Software":
        if any(k in s for k in FS_SOFTWARE):
            return "filesystem_error", "cluster"
        if any(k in s for k in NET_SOFTWARE):
            return "network_error", "unclear"
        if "user code" in s:
            return "app_error", "job"
        return "node_failure", "cluster"
    return {"Network": ("network_error", "unclear"), "Facilities": ("node_failure", "cluster"),
            "Human Error": ("unknown", "cluster")}.get(category, ("unknown", "unclear"))


class LanlReader:
    name = "lanl"
    description = "LANL node failure records 1996-2005 (LA-UR-05-7318 CSV)"

    def batches(self, stream: TextIO, ctx: IngestContext) -> Iterator[Batch]:
        first = stream.readline().rstrip("\r\n")
        if tuple(h.strip() for h in first.split(",")) != FIELDS:
            raise InputError(f"{ctx.file}: not the LANL failure CSV (header {first[:80]!r})",
                             hint="expected the header of LA-UR-05-7318-failure-data-1996-2005.csv")
        cache: dict[tuple[str, str], tuple[str, str]] = {}
        for df, chunk in csv_chunks(stream, FIELDS, ctx.batch_size, first_lineno=2):
            df, bad = numeric(df, ("System", "nodenum", "Down Time"), required=("System",))
            df, more = in_range(df, BOUNDS)
            bad += more
            started = pd.to_datetime(df["Prob Started"].str.strip(), format="%m/%d/%Y %H:%M",
                                     errors="coerce", utc=True)
            wrong = started.isna().to_numpy()
            bad += [(int(n), f"Prob Started: {v!r} is not M/D/YYYY H:MM", "")
                    for n, v in zip(df["_line"][wrong], df["Prob Started"][wrong])]
            df = df[~wrong].copy()
            df["Prob Started s"] = ((started[~wrong] - _EPOCH) // pd.Timedelta(seconds=1)
                                    ).to_numpy(dtype=np.float64)
            df, more = epochs_in_range(df, ["Prob Started s"])
            bad += more
            started = started.loc[df.index]
            batch = Batch(read=chunk.read)
            batch.rejects = rejects_of(chunk, bad, "lanl", ctx.file)
            if len(df):
                self._events(df, started, ctx, cache, batch)
            yield batch

    def _events(self, df: pd.DataFrame, started: pd.Series, ctx: IngestContext,
                cache: dict, batch: Batch) -> None:
        cats = np.full(len(df), "Undetermined", dtype=object)
        subs = np.full(len(df), "", dtype=object)
        for c in reversed(CATEGORIES):  # the first non-empty category column wins
            v = df[c].fillna("").str.strip().to_numpy(dtype=object)
            m = v != ""
            cats[m], subs[m] = c, v[m]
        ts = ints(((started - _EPOCH) // pd.Timedelta(seconds=1)).to_numpy())
        system = ints(df["System"])
        node = ints(df["nodenum"])
        down = ints(df["Down Time"])
        fixed = strings(df["Prob Fixed"].str.strip())
        raw_start = df["Prob Started"].str.strip().tolist()
        purpose = strings(df["purpose"])
        default = ctx.cluster in (None, "", "default")
        for i in range(len(df)):
            cat, sub = cats[i], subs[i]
            key = (cat, sub)
            if key not in cache:
                cache[key] = failure_type_of(cat, sub)
            ftype, blame = cache[key]
            cluster = f"lanl-{system[i]}" if default else ctx.cluster
            node_name = None if node[i] is None else f"{system[i]}-{node[i]}"  # None: system-wide
            msg = f"{cat}: {sub or cat}" + (f"; down {down[i]} min" if down[i] is not None else "") \
                + (f" (fixed {fixed[i]})" if fixed[i] else "")
            ev = {"cluster": cluster, "failure_type": ftype, "blame": blame, "phase": cat,
                  "timestamp": ts[i], "node_name": node_name, "error_message": msg,
                  "evidence": f"{cat} / {sub}" if sub else cat,
                  "events_snippet": f"node purpose {purpose[i]}" if purpose[i] else None,
                  "source": "lanl", "resolved": 0}
            batch.events.append(event_tuple(
                ev, f"lanl:{system[i]}:{node[i]}:{raw_start[i]}:{fixed[i]}:{cat}:{sub}"))
