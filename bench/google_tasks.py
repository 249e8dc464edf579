"""A bench-only loader: Google 2011 raw task events -> one `jobs` row per task attempt (SCHEDULE
to its next terminal event) and one `job_nodes` row with its machine, written through Store
methods. Borg schedules tasks, not jobs, onto machines, so a task attempt is the unit whose
outcome says something about the machine it ran on (the jobmedic google2011 reader keeps
whole jobs, whose tasks span hundreds of machines). Vectorised with pandas."""
from __future__ import annotations

import glob
from pathlib import Path

import numpy as np
import pandas as pd

from jobmedic.knowledge.migrations import JOB_COLUMNS
from jobmedic.knowledge.store import Store

EPOCH_OFFSET = 1_304_290_200  # trace second 0 in epoch seconds (as jobmedic.ingest.google2011)
TERMINAL = {2: ("preempted", "preempted", "cluster"), 3: ("failed", "app_error", "job"),
            4: ("completed", None, None), 5: ("cancelled", "cancelled", "job"),
            6: ("node_fail", "node_failure", "cluster")}


def attempts(folder: Path) -> pd.DataFrame:
    """One row per task attempt with an outcome: job, task, machine, user, class, start, end, type."""
    files = sorted(glob.glob(str(folder / "task_events_part-*.csv.gz")))
    df = pd.concat([pd.read_csv(f, header=None, usecols=[0, 2, 3, 4, 5, 6, 7]) for f in files],
                   ignore_index=True)
    df.columns = ["t", "job", "task", "machine", "type", "user", "cls"]
    df = df[df["type"].isin([1, *TERMINAL])].sort_values(["job", "task", "t", "type"], kind="stable")
    same = (df["job"].shift(-1) == df["job"]) & (df["task"].shift(-1) == df["task"])
    nxt_type, nxt_t = df["type"].shift(-1), df["t"].shift(-1)
    ok = (df["type"] == 1) & same & nxt_type.isin(list(TERMINAL)) & df["machine"].notna()
    out = df[ok].copy()
    out["end"] = nxt_t[ok].astype(np.int64)
    out["outcome"] = nxt_type[ok].astype(int)
    out["start_s"] = (out["t"] // 1_000_000 + EPOCH_OFFSET).astype(np.int64)
    out["end_s"] = (out["end"] // 1_000_000 + EPOCH_OFFSET).astype(np.int64)
    return out.reset_index(drop=True)


def load(store: Store, folder: Path, cluster: str = "g11tasks") -> dict:
    """Write the attempts into `store`; returns counts."""
    a = attempts(folder)
    users = pd.factorize(a["user"])[0]
    ids = (a["job"].astype(str) + "." + a["task"].astype(str) + "." +
           a.groupby(["job", "task"]).cumcount().astype(str))
    state = a["outcome"].map({k: v[0] for k, v in TERMINAL.items()})
    ftype = a["outcome"].map({k: v[1] for k, v in TERMINAL.items()})
    blame = a["outcome"].map({k: v[2] for k, v in TERMINAL.items()})
    cols = {
        "cluster": cluster, "job_id": ids, "name": "job-" + a["job"].astype(str),
        "user": ["g" + str(u) for u in users], "project": ["g" + str(u) for u in users],
        "queue": "class-" + a["cls"].astype(str), "state": state,
        "failure_type": ftype.where(ftype.notna(), None), "blame": blame.where(blame.notna(), None),
        "submit_time": a["start_s"], "start_time": a["start_s"], "end_time": a["end_s"],
        "elapsed_s": a["end_s"] - a["start_s"], "n_nodes": 1, "source": "google2011-tasks",
    }
    frame = pd.DataFrame({c: cols.get(c) for c in JOB_COLUMNS})
    frame = frame.astype(object).where(frame.notna(), None)
    rows = list(frame.itertuples(index=False, name=None))
    nodes = list(zip([cluster] * len(a), ids, "m" + a["machine"].astype(np.int64).astype(str)))
    for i in range(0, len(rows), 50_000):
        store.upsert_jobs(rows[i:i + 50_000])
        store.add_job_nodes(nodes[i:i + 50_000])
    return {"attempts": len(a), "machines": int(a["machine"].nunique()),
            "first": int(a["end_s"].min()), "last": int(a["end_s"].max())}
