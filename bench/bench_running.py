"""Scoring one running job: `predict`'s early warning (the early model on the job's first
minutes) and memory-kill estimate, i.e. `models.early_running.assess`, per job, warm (model
loaded once per process).

A synthetic store (users with their own failure propensity; GPU and memory samples from 10
minutes before to 3 minutes after each start), the early kind trained on it with small
settings, then running jobs with a per-minute GPU window and a 5-second memory series (sstat
style, 36 samples in the last 180 s, growing towards the request) are scored, each one many
times; p50 / p95 of one call, CPU and wall. `--before` also times the pre-optimisation path
(`assess_before` below, kept verbatim for this comparison) in the same run.

    .venv/bin/python -m bench running [--jobs N] [--running N] [--reps N] [--before]
"""
from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from jobmedic.models.synthetic import TELEMETRY_COLUMNS as COLS
from jobmedic.models.synthetic import TELEMETRY_T0 as T0

OUT = Path(__file__).resolve().parent / "out" / "data"


def _running(store: Any, n: int, now: int, seed: int = 1) -> list[str]:
    """n running jobs started 5 minutes before `now`: a GPU window and a memory series."""
    rng = np.random.default_rng(seed)
    start = now - 300
    jobs, samples = [], []
    for i in range(n):
        jid = f"r{i}"
        jobs.append(("philly", jid, f"u{i % 40}", "vc1", "running", now - 360, start, None, 1,
                     4096.0, "philly"))
        for k in range(-10, 6):
            samples.append(("philly", jid, "m1", "gpu0", "gpu_util_pct",
                            start // 60 * 60 + 60 * k, float(rng.uniform(0, 100)), "philly"))
        rate = rng.uniform(0, 12e6)  # bytes/s
        for s in range(36):
            t = now - 180 + 5 * s
            samples.append(("philly", jid, "m1", "0", "mem_rss_bytes", t,
                            1.0e9 + rate * (t - start) + rng.normal(0, 5e6), "sstat"))
    store.upsert_jobs(jobs, columns=COLS)
    store.add_samples(samples)
    return [j[1] for j in jobs]


def _window_stats_before(seq: np.ndarray) -> pd.DataFrame:
    """early_data.window_stats as it was: one metric at a time into a frame."""
    import warnings

    from jobmedic.models.early_data import FIRST_MIN, METRICS, WINDOW_STATS

    split = -FIRST_MIN + 1
    cols: dict[str, np.ndarray] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for p, part in (("pre", seq[:, :split]), ("post", seq[:, split:])):
            for i, m in enumerate(METRICS):
                x = part[:, :, i]
                have = np.isfinite(x)
                idx = np.arange(x.shape[1])
                last_i = np.where(have, idx, -1).max(axis=1)
                first_i = np.where(have, idx, 10**6).min(axis=1)
                rows = np.arange(len(x))
                last = np.where(last_i >= 0, x[rows, np.maximum(last_i, 0)], np.nan)
                first = np.where(first_i < 10**6, x[rows, np.minimum(first_i, x.shape[1] - 1)],
                                 np.nan)
                cols |= {f"{p}_{m}_mean": np.nanmean(x, axis=1),
                         f"{p}_{m}_std": np.nanstd(x, axis=1),
                         f"{p}_{m}_min": np.nanmin(x, axis=1),
                         f"{p}_{m}_max": np.nanmax(x, axis=1),
                         f"{p}_{m}_last": last, f"{p}_{m}_change": last - first,
                         f"{p}_{m}_missing": 1.0 - have.mean(axis=1)}
    return pd.DataFrame(cols)[WINDOW_STATS]


def _envelope_before(t, v, t0, t1, bins):
    """memkill.envelope as it was: a loop over the bins."""
    edges = np.linspace(t0, t1, bins + 1)
    idx = np.clip(np.searchsorted(edges, t, side="right") - 1, 0, bins - 1)
    bt, bv = [], []
    for b in np.unique(idx):
        m = idx == b
        k = int(np.argmax(v[m]))
        bt.append(t[m][k])
        bv.append(v[m][k])
    return np.array(bt), np.array(bv)


def _theil_sen_before(t, v, alpha=0.90):
    """memkill.theil_sen as it was: scipy.stats.theilslopes."""
    import math

    from scipy.stats import theilslopes

    if len(t) < 3 or float(np.ptp(t)) <= 0:
        return 0.0, -math.inf, math.inf
    slope, _icpt, lo, hi = theilslopes(v, t, alpha=alpha)
    return float(slope), float(lo), float(hi)


def assess_before(store: Any, job: dict[str, Any], now: int, models_dir: Any,
                  scope: Any = None) -> dict[str, Any]:
    """The path as it was before the latency work (commit 7cae292), for the comparison: the
    frame-building window statistics and predict, scipy's Theil-Sen and the per-bin loop."""
    from jobmedic.models import memkill, registry
    from jobmedic.models.early_data import HORIZONS, METRICS, SEQ_COLS, TAB_COLS, window
    from jobmedic.models.features import spec_features as features_of

    rows = store.job_samples(job["job_id"], job["cluster"], scope=scope, until=now + 1)
    out: dict[str, Any] = {"samples": len(rows), "metrics": sorted({r["metric"] for r in rows})}
    keep = memkill.envelope, memkill.theil_sen
    memkill.envelope, memkill.theil_sen = _envelope_before, _theil_sen_before
    try:
        out["memory_kill"] = memkill.job_estimate(rows, job.get("req_mem_mb"), now)
    finally:
        memkill.envelope, memkill.theil_sen = keep
    start = job.get("start_time")
    win = [r for r in rows if r["metric"] in METRICS]
    horizon = float(min(max(now - start, 0), HORIZONS["start+3min"]))
    seq = window([(job["cluster"], job["job_id"], r["metric"], r["device"], r["t"],
                   r["value"]) for r in win], {(job["cluster"], job["job_id"]): 0},
                 np.array([float(start)]), horizon)
    model, meta = registry.load(models_dir, "early")
    spec = {k: job.get(k) for k in ("user", "project", "queue", "qos", "image", "name",
                                    "req_cpus", "req_gpus", "req_mem_mb", "timelimit_s",
                                    "n_nodes")}
    feats, _ = features_of(store, spec, int(job.get("submit_time") or start), scope)
    X = pd.concat([pd.DataFrame([feats], columns=TAB_COLS[:len(feats)]),
                   _window_stats_before(seq), pd.DataFrame(seq.reshape(1, -1), columns=SEQ_COLS)],
                  axis=1)
    p = float(model.predict(X)[0])
    out["early_warning"] = {"status": "scored", "probability": round(p, 4),
                            "model": meta.get("chosen"), "horizon_s": horizon}
    return out


def _time(fns: dict[str, Any], jobs: list[dict], reps: int) -> dict[str, dict[str, float]]:
    """p50 / p95 wall and p50 CPU of one call of each fn, the fns interleaved job by job (the
    shared machine's load falls on all of them alike)."""
    for fn in fns.values():
        for j in jobs[:3]:
            fn(j)  # warm: model loaded, statements prepared
    wall: dict[str, list[float]] = {k: [] for k in fns}
    cpu: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(reps):
        for j in jobs:
            for k, fn in fns.items():
                w, c = time.perf_counter(), time.process_time()
                fn(j)
                cpu[k].append(time.process_time() - c)
                wall[k].append(time.perf_counter() - w)
    out = {}
    for k in fns:
        w_ms, c_ms = np.array(wall[k]) * 1000, np.array(cpu[k]) * 1000
        out[k] = {"p50_ms": round(float(np.median(w_ms)), 2),
                  "p95_ms": round(float(np.percentile(w_ms, 95)), 2),
                  "cpu_p50_ms": round(float(np.median(c_ms)), 2),
                  "cpu_p95_ms": round(float(np.percentile(c_ms, 95)), 2), "calls": len(w_ms)}
    return out


def main(argv: list[str]) -> dict:
    from jobmedic.knowledge.store import Store
    from jobmedic.models import early_data, training
    from jobmedic.models.early_running import assess
    from jobmedic.models.synthetic import fill_telemetry

    n = int(argv[argv.index("--jobs") + 1]) if "--jobs" in argv else 3000
    n_run = int(argv[argv.index("--running") + 1]) if "--running" in argv else 20
    reps = int(argv[argv.index("--reps") + 1]) if "--reps" in argv else 10
    OUT.mkdir(parents=True, exist_ok=True)
    db, mdir = OUT / f"running_{n}.db", OUT / f"models-running-{n}"
    fresh = not db.exists() or not (mdir / "early" / "CURRENT").exists()
    if fresh:
        for p in (db, mdir):
            if p.is_dir():
                shutil.rmtree(p)
            elif p.exists():
                p.unlink()
    store = Store(db)
    now = T0 + (n + 100) * 600
    train_s = None
    if fresh:
        fill_telemetry(store, n, seed=0, n_users=40, req_mem_mb=4096.0)
        frame = early_data.frame(store, horizon_s=180)
        until = int(np.quantile(frame[0]["submit_time"], 0.8))
        t = time.perf_counter()
        training.train(store, "early", str(mdir), until=until, frame=frame,
                       params={"gru_epochs": 3, "ae_epochs": 3, "num_boost_round": 60})
        train_s = round(time.perf_counter() - t, 1)
        _running(store, n_run, now)
    store.refresh_entity_stats(now)
    jobs = [store.get_job(f"r{i}", "philly") for i in range(n_run)]
    res: dict[str, Any] = {"history_jobs": n, "running_jobs": n_run, "train_s": train_s,
                           "load_avg": [round(x, 2) for x in os.getloadavg()]}
    fns = {"after": lambda j: assess(store, j, now, str(mdir))}
    if "--before" in argv:
        fns["before"] = lambda j: assess_before(store, j, now, str(mdir))
        same = True
        for j in jobs:
            a, b = assess_before(store, j, now, str(mdir)), assess(store, j, now, str(mdir))
            same &= abs(a["early_warning"]["probability"] - b["early_warning"]["probability"]) < 1e-4
            same &= a["memory_kill"]["eta_s"] == b["memory_kill"]["eta_s"]
            same &= a["memory_kill"]["status"] == b["memory_kill"]["status"]
        res["same_answers"] = same
    res |= _time(fns, jobs, reps)
    r = assess(store, jobs[0], now, str(mdir))
    res["example"] = {"early": r["early_warning"].get("probability"),
                      "model": r["early_warning"].get("model"),
                      "memkill": r["memory_kill"]["status"], "eta_s": r["memory_kill"].get("eta_s")}
    res["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]
    print(res)
    return res


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
