"""Predict and training benchmarks on a 1,000,000-job synthetic store.

* predict: p50 / p95 of one `predict` action (features from indexed history lookups plus the
  entity summary, three models, SHAP factors, the report) over 1,000 specs;
* batch scoring: jobs/s of `models.batch.score` on 200,000 specs (history read once), and of
  the model part alone (features given).

    .venv/bin/python -m bench predict [--jobs N] [--reuse]   (--reuse: keep trained models)
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from jobmedic.knowledge.store import Store
from jobmedic.knowledge.taxonomy import Taxonomy
from jobmedic.models import registry, training
from jobmedic.models.batch import score
from jobmedic.models.features import FEATURES, build_features
from jobmedic.models.synthetic import synthetic_jobs
from jobmedic.settings import config_path
from jobmedic.tools import run_action
from jobmedic.tools.base import ToolContext

OUT = Path(__file__).resolve().parent / "out" / "data"
LEVELS = {"moderate": 0.3, "high": 0.6, "critical": 0.8}
START = 1_700_000_000


def _store(n: int) -> Store:
    OUT.mkdir(parents=True, exist_ok=True)
    db = OUT / f"synth_{n}.db"
    s = Store(db)
    if s.table_counts()["jobs"] < n:  # built once, then reused
        t = time.perf_counter()
        for i in range(0, n, 200_000):
            s.upsert_jobs(synthetic_jobs(min(200_000, n - i), seed=i, n_users=2000, names_per_user=10,
                                         first_id=100_000 + i,
                                         start=START + int(i / n * 365 * 86400), days=365 * min(200_000, n - i) / n))
        print(f"built {n} jobs in {time.perf_counter() - t:.0f}s")
    return s


def main(argv: list[str]) -> dict:
    n = int(argv[argv.index("--jobs") + 1]) if "--jobs" in argv else 1_000_000
    s = _store(n)
    mdir = str(OUT / f"models-synth-{n}")
    frame = training.load(s)
    df = frame[0]
    # full-size models (300 trees) trained on the first 10 % of the year to keep this quick
    until = int(np.quantile(df["submit_time"], 0.1))
    t = time.perf_counter()
    reuse = "--reuse" in argv and (Path(mdir) / "memory" / "CURRENT").exists()
    for kind in ("failure", "runtime", "memory") if not reuse else ():
        training.train(s, kind, mdir, until, frame=frame)
    train_s = None if reuse else round(time.perf_counter() - t, 1)
    s.refresh_entity_stats(int(df["end_time"].max()) + 1)
    ctx = ToolContext(store=s, taxonomy=Taxonomy.from_yaml(config_path("taxonomy.yaml")),
                      now=int(df["end_time"].max()) + 60, models_dir=Path(mdir), risk_levels=LEVELS)
    rng = np.random.default_rng(0)
    users, names = df["user"].unique(), df["name"].unique()
    lat = []
    for i in range(1000):
        spec = {"action": "predict", "user": str(rng.choice(users)) if i % 10 else f"new{i}",
                "name": str(rng.choice(names)), "queue": "normal", "qos": "normal",
                "req_cpus": int(rng.integers(1, 64)), "req_mem_mb": float(rng.integers(1, 64) * 1024),
                "req_walltime_s": int(rng.integers(1, 48) * 3600)}
        t = time.perf_counter()
        r = run_action(spec, ctx)
        lat.append(time.perf_counter() - t)
        assert r.status == "ok", r.error
    lat_ms = np.array(lat[50:]) * 1000
    specs = df.sample(200_000, random_state=0)[["user", "name", "project", "queue", "qos", "req_cpus",
                                                 "req_mem_mb", "timelimit_s"]].rename(
        columns={"timelimit_s": "req_walltime_s"}).reset_index(drop=True)
    t = time.perf_counter()
    res = score(s, specs, mdir, ctx.now, LEVELS, history=df)
    batch_s = time.perf_counter() - t
    X = build_features(df, df.iloc[:200_000])[FEATURES].to_numpy()
    t = time.perf_counter()
    for kind in ("failure", "runtime", "memory"):
        m, _ = registry.load(mdir, kind)
        m.predict(X)
    model_s = time.perf_counter() - t
    out = {"store_jobs": len(df), "train_three_models_s": train_s,
           "predict_p50_ms": round(float(np.percentile(lat_ms, 50)), 2),
           "predict_p95_ms": round(float(np.percentile(lat_ms, 95)), 2),
           "batch_jobs_per_s_end_to_end": round(len(res) / batch_s),
           "batch_jobs_per_s_models_only": round(200_000 / model_s)}
    print(out)
    return out


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
