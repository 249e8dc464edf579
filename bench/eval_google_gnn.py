"""The GraphSAGE failure model on the Google Borg 2011 split (train days 0-14, test 15-20),
beside the XGBoost model of `bench.eval_google_failure` (run that first: it trains the
XGBoost artifact this compares with) and their average; then what `jobmedic evaluate failure`
reports on the test days (the ensemble, when the gnn card says it won on validation), and the
latency of one `predict` with the ensemble (numpy scorer from the serving state) vs without.

    .venv/bin/python -m bench.eval_google_gnn [--epochs N]
"""
from __future__ import annotations

import json
import os
import sys
import time

import numpy as np
import torch

from bench.eval_common import DATA, models_dir, store_for
from jobmedic.ingest.google2011 import EPOCH_OFFSET
from jobmedic.models import training

DAY = 86400


def main(argv: list[str]) -> dict:
    torch.set_num_threads(2)
    s = store_for("google", "google2011", DATA / "google_clusterdata_2011" / "google2011_jobs.csv.gz")
    until, end = EPOCH_OFFSET + 15 * DAY, EPOCH_OFFSET + 21 * DAY
    params = {}
    if "--epochs" in argv:
        params["epochs"] = int(argv[argv.index("--epochs") + 1])
    frame = training.load(s)
    t = time.perf_counter()
    card = training.train(s, "gnn", models_dir("google"), until, frame=frame, params=params)
    train_s = time.perf_counter() - t
    cpu = time.process_time()
    res = training.evaluate(s, "gnn", models_dir("google"), until, end, frame=frame)
    fail = training.evaluate(s, "failure", models_dir("google"), until, end, frame=frame)
    out = {"train_s": round(train_s, 1), "process_cpu_s_so_far": round(cpu, 1),
           "loadavg": os.getloadavg()[0], "train_card": card, "test": res,
           "evaluate_failure": {k: fail.get(k) for k in ("metrics", "ensemble", "test_window")},
           "predict_one": _predict_latency(s, frame[0])}
    print(json.dumps(out, indent=1, default=str))
    return out


def _predict_latency(s, df) -> dict:
    """p50 / p95 (wall, CPU) of one prediction at the end of the trace with and without the
    GNN (the same specs, interleaved)."""
    from jobmedic.models import gnn_serving
    from jobmedic.models.predictor import predict_one

    now = int(df["end_time"].max()) + 60
    levels = {"moderate": 0.3, "high": 0.6, "critical": 0.8}
    rows = df.sample(300, random_state=0)
    lat: dict[str, list] = {"ensemble": [], "xgboost_only": []}
    used = 0
    real = gnn_serving.ensemble_one
    for i, (_, r) in enumerate(rows.iterrows()):
        spec = {k: r[k] for k in ("user", "name", "project", "queue", "qos", "image", "req_cpus",
                                  "timelimit_s") if isinstance(r[k], str) or (
                    isinstance(r[k], float) and np.isfinite(r[k]))}
        for which in ("ensemble", "xgboost_only") if i % 2 else ("xgboost_only", "ensemble"):
            gnn_serving.ensemble_one = real if which == "ensemble" else (
                lambda *a, **k: (a[5], None))
            t, c = time.perf_counter(), time.process_time()
            out = predict_one(s, spec, now, models_dir("google"), levels)
            w, cc = time.perf_counter() - t, time.process_time() - c
            if i >= 20:
                lat[which].append((w, cc))
            used += bool(which == "ensemble" and (out.get("ensemble") or {}).get("used"))
    gnn_serving.ensemble_one = real
    return {k: {"wall_p50_ms": round(float(np.percentile([a for a, _ in v], 50)) * 1000, 2),
                "wall_p95_ms": round(float(np.percentile([a for a, _ in v], 95)) * 1000, 2),
                "cpu_p50_ms": round(float(np.percentile([b for _, b in v], 50)) * 1000, 2),
                "cpu_p95_ms": round(float(np.percentile([b for _, b in v], 95)) * 1000, 2)}
            for k, v in lat.items()} | {"ensemble_used": used, "calls": 300}


if __name__ == "__main__":
    main(sys.argv[1:])
