"""Peak memory on MGnify metaSPAdes production jobs (../shared/data/mgnify_metaspades).

The data has no scheduler fields: no submit time, no user, no per-job request. This
evaluation-only loader fills a store through `Store.upsert_jobs` with what the data allows:
job name = the biome lineage, user = its first three levels (the biome group), request = the
MGnify production heuristic for the biome, peak = peak_mem_in_gbs; jobs are ordered by their
ERZ accession number (assigned in submission order) and spaced one hour apart, and their real
wall-clock time gives the end, so history only holds jobs that would have finished. Input
size exists for only 296 runs and is not used. Split: first 70 % by accession to train (its
last 20 % for the conformal shift), last 30 % to test.

    .venv/bin/python -m bench.eval_mgnify_memory
"""
from __future__ import annotations

import json
import sys

import numpy as np
import pandas as pd

from bench.eval_common import DATA, OUT
from jobmedic.knowledge.migrations import JOB_COLUMNS
from jobmedic.knowledge.store import Store
from jobmedic.models import memory, training

T0 = 1_600_000_000


def load_store() -> Store:
    folder = DATA / "mgnify_metaspades"
    df = pd.read_csv(folder / "mgnify_metaspades_3.15.3_jobs_with_heuristic.csv")
    df = df[df["peak_mem_in_gbs"] > 0].copy()
    df["acc"] = df["primary_accession"].str.extract(r"(\d+)").astype(np.int64)
    df = df.sort_values("acc", kind="stable").reset_index(drop=True)
    submit = T0 + np.arange(len(df)) * 3600
    lineage = df["lineage"].astype(str)
    rows = pd.DataFrame({
        "cluster": "mgnify", "job_id": df["primary_accession"], "name": lineage,
        "user": lineage.str.split(":").str[:3].str.join(":"), "project": "mgnify",
        "queue": df["assembler"], "state": "completed", "raw_state": "COMPLETED",
        "submit_time": submit, "start_time": submit,
        "end_time": submit + df["wall_clock_seconds"].fillna(0).astype(np.int64),
        "elapsed_s": df["wall_clock_seconds"], "req_mem_mb": df["heuristic_mem_gb"] * 1024.0,
        "max_rss_mb": df["peak_mem_in_gbs"] * 1024.0, "req_cpus": 1, "n_nodes": 1, "source": "mgnify"})
    OUT.mkdir(parents=True, exist_ok=True)
    db = OUT / "mgnify.db"
    db.unlink(missing_ok=True)
    s = Store(db)
    tuples = [tuple(None if (isinstance(v, float) and np.isnan(v)) else (v.item() if hasattr(v, "item") else v)
                    for v in (r.get(c) for c in JOB_COLUMNS))
              for r in rows.to_dict("records")]
    s.upsert_jobs(tuples)
    return s


def main(argv: list[str]) -> dict:
    s = load_store()
    frame = training.load(s)
    df = frame[0]
    until = int(np.sort(df["submit_time"].to_numpy())[int(len(df) * 0.7)])
    mdir = str(OUT / "models-mgnify")
    card = training.train(s, "memory", mdir, until, frame=frame)
    res = training.evaluate(s, "memory", mdir, until, None, frame=frame)
    # RMSE / R2 of the median beside the published figures (other split and subset: context only)
    model, _ = __import__("jobmedic.models.registry", fromlist=["load"]).load(mdir, "memory")
    test = df["submit_time"].to_numpy() >= until
    from jobmedic.models.features import FEATURES

    q = model.predict(frame[1].loc[test, FEATURES].to_numpy())
    y = df.loc[test, "max_rss_mb"].to_numpy() / 1024
    med = q[:, memory.ALPHAS.index(0.5)] / 1024
    rmse = float(np.sqrt(np.mean((med - y) ** 2)))
    r2 = float(1 - np.sum((med - y) ** 2) / np.sum((y - y.mean()) ** 2))
    heur = df.loc[test, "req_mem_mb"].to_numpy() / 1024
    pub = pd.read_csv(DATA / "mgnify_metaspades" / "published_model_performance.csv")
    out = {"n_jobs": len(df), "test": res, "median_rmse_gb": rmse, "median_r2": r2,
           "heuristic_rmse_gb": float(np.sqrt(np.mean((heur - y) ** 2))),
           "published": pub[["raw_name", "R²", "RMSE"]].to_dict("records"), "train_card": card}
    print(json.dumps({k: v for k, v in out.items() if k not in ("train_card", "published")},
                     indent=1, default=str))
    return out


if __name__ == "__main__":
    main(sys.argv[1:])
