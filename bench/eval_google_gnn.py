"""The GraphSAGE failure model on the Google Borg 2011 split (train days 0-14, test 15-20),
beside the XGBoost model of `bench.eval_google_failure` (run that first: it trains the
XGBoost artifact this compares with) and their average; then what `jobmedic evaluate failure`
reports on the test days (the ensemble, when the gnn card says it won on validation), and the
latency of one `predict` with the ensemble (numpy scorer from the serving state) vs without.

    .venv/bin/python -m bench.eval_google_gnn [--epochs N] [--threads N] [--eval-only]

(--eval-only: evaluate the current artifacts without training; results are also written to
bench/out/google_gnn.json, so the training and the evaluation can run as two commands.)
`--days N` works on a copy of the store holding the jobs submitted in the first N days
(bench/out/data/google_dN.db; train on the first 5/7 of them, test on the rest) with its own
models, `--failure` trains the XGBoost model there first: a smaller check for a busy machine.
`--tag T --param K=V ...` trains with other gnn parameters on a copy of the store with its own
models (bench/out/data/google_T.db, models-google_T), so choices can be compared on the
validation slice their cards report without touching the main artifacts.
"""
from __future__ import annotations

import json
import os
import sys
import time

import numpy as np
import torch

from bench.eval_common import DATA, OUT, models_dir, store_for
from jobmedic.ingest.google2011 import EPOCH_OFFSET
from jobmedic.models import training

DAY = 86400
OUT_JSON = OUT.parent / "google_gnn.json"


def main(argv: list[str]) -> dict:
    threads = int(argv[argv.index("--threads") + 1]) if "--threads" in argv else 2
    torch.set_num_threads(threads)
    s = store_for("google", "google2011", DATA / "google_clusterdata_2011" / "google2011_jobs.csv.gz")
    until, end = EPOCH_OFFSET + 15 * DAY, EPOCH_OFFSET + 21 * DAY
    name = "google"
    if "--days" in argv:
        days = int(argv[argv.index("--days") + 1])
        s, name = _subset(s, days), f"google_d{days}"
        until, end = EPOCH_OFFSET + round(days * 15 / 21) * DAY, EPOCH_OFFSET + days * DAY
    if "--tag" in argv:  # an experiment on its own copy of the store, with its own models
        base, name = name, f"{name}_{argv[argv.index('--tag') + 1]}"
        s = _copy(s, name)
        if not os.path.isdir(os.path.join(models_dir(name), "failure")):  # the same XGBoost
            import shutil

            shutil.copytree(os.path.join(models_dir(base), "failure"), os.path.join(models_dir(name), "failure"))
    mdir = models_dir(name)
    params: dict = {"threads": threads}
    if "--epochs" in argv:
        params["epochs"] = int(argv[argv.index("--epochs") + 1])
    for i, a in enumerate(argv):
        if a == "--param":  # --param hidden=64 (numbers only)
            k, v = argv[i + 1].split("=", 1)
            params[k] = float(v) if "." in v else int(v)
    frame = training.load(s)
    out_json = OUT_JSON.with_name(f"{name}_gnn.json")
    saved = out_json.exists() and json.loads(out_json.read_text()) or {}
    if "--failure" in argv:
        t = time.process_time()
        fc = training.train(s, "failure", mdir, until, frame=frame)
        saved = {"failure_train_cpu_s": round(time.process_time() - t, 1), "failure_card": fc}
        out_json.write_text(json.dumps(saved, indent=1, default=str))
        print("failure trained", saved["failure_train_cpu_s"], flush=True)
        return saved
    if "--eval-only" not in argv:
        t, c = time.perf_counter(), time.process_time()
        card = training.train(s, "gnn", mdir, until, frame=frame, params=params)
        saved = saved | {"train_s": round(time.perf_counter() - t, 1),
                 "train_cpu_s": round(time.process_time() - c, 1),
                 "loadavg_after_train": os.getloadavg()[0], "train_card": card}
        out_json.write_text(json.dumps(saved, indent=1, default=str))
        print(json.dumps({k: v for k, v in saved.items() if not k.endswith("card")}), flush=True)
        if "--train-only" in argv:
            return saved
    t, c = time.perf_counter(), time.process_time()
    res = training.evaluate(s, "gnn", mdir, until, end, frame=frame)
    fail = training.evaluate(s, "failure", mdir, until, end, frame=frame)
    out = saved | {"eval_s": round(time.perf_counter() - t, 1), "eval_cpu_s": round(time.process_time() - c, 1),
                   "loadavg": os.getloadavg()[0], "test": res,
                   "evaluate_failure": {k: fail.get(k) for k in ("metrics", "ensemble", "test_window")},
                   "predict_one": _predict_latency(s, frame[0], mdir)}
    out_json.write_text(json.dumps(out, indent=1, default=str))
    print(json.dumps({k: v for k, v in out.items() if not k.endswith("card")}, indent=1, default=str))
    return out


def _subset(s, days: int):
    """A copy of the Google store holding the jobs submitted in its first `days` days."""
    import shutil

    from jobmedic.knowledge.store import Store

    db = OUT / f"google_d{days}.db"
    if not db.exists():
        s.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        shutil.copyfile(OUT / "google.db", db)
        sub = Store(db)
        with sub.transaction() as conn:
            conn.execute("DELETE FROM jobs WHERE submit_time >= ?", (EPOCH_OFFSET + days * DAY,))
        return sub
    return Store(db)


def _copy(s, name: str):
    """A copy of the store `s` as bench/out/data/<name>.db (made once)."""
    import shutil

    from jobmedic.knowledge.store import Store

    db = OUT / f"{name}.db"
    if not db.exists():
        s.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        shutil.copyfile(s.path, db)
    return Store(db)


def _predict_latency(s, df, mdir: str) -> dict:
    """p50 / p95 (wall, CPU) of one prediction at the end of the trace with and without the
    GNN (the same specs, interleaved)."""
    from jobmedic.models import ensemble as gnn_serving
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
            out = predict_one(s, spec, now, mdir, levels)
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
