"""Dask engine figures (issue 17; docs/scale.md): feature extraction and failure-model
training on a local Dask cluster of 1 and 2 worker processes against the single-machine path,
on a copy of a bench store; checks the features are equal and the held-out AUROC of the Dask
model is within 0.01 of the single-machine model on the same split.

    .venv/bin/python -m bench.bench_dask fresco        # bench/out/data/fresco.db (FRESCO Stampede)
    .venv/bin/python -m bench.bench_dask synth_200000  # bench/synthetic.py shapes
Writes bench/out/dask_<name>.json.
"""
from __future__ import annotations

import json
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from jobmedic.engines import dask_engine
from jobmedic.engines.dask_features import build_features_dask
from jobmedic.knowledge.store import Store
from jobmedic.models import training
from jobmedic.models.features import FEATURES, build_features

OUT = Path(__file__).resolve().parent / "out"


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _equal(a, b) -> bool:
    x, y = a[FEATURES].to_numpy(), b[FEATURES].to_numpy()
    same_nan = np.array_equal(np.isnan(x), np.isnan(y))
    ok = ~np.isnan(x)
    return bool(same_nan and np.allclose(x[ok], y[ok], rtol=1e-12, atol=1e-9))


def main(argv: list[str]) -> dict:
    name = argv[0] if argv else "fresco"
    rounds = int(argv[1]) if len(argv) > 1 else 300
    tmp = Path(tempfile.mkdtemp(prefix="jm_dask_"))
    db = tmp / "s.db"
    shutil.copy(OUT / "data" / f"{name}.db", db)
    s = Store(db)
    df = s.jobs_frame()
    n = len(df)
    res: dict = {"store": name, "jobs": n, "rounds": rounds}
    t = time.perf_counter()
    X1 = build_features(df)
    res["features_single_s"] = round(time.perf_counter() - t, 2)
    frame = (df, X1)
    until = training.default_until(df, 0.2)
    end = int(df["submit_time"].max()) + 1
    t = time.perf_counter()
    card = training.train(s, "failure", str(tmp / "m-single"), until, frame=frame,
                          params={"num_boost_round": rounds})
    res["train_single_s"] = round(time.perf_counter() - t, 2)
    ev = training.evaluate(s, "failure", str(tmp / "m-single"), until, end, frame=frame)
    res["single"] = {"val_auroc": card["validation"]["model"]["auroc"],
                     "test_auroc": ev["metrics"]["model"]["auroc"]}
    for k in (1, 2):
        with dask_engine.cluster(workers=k, memory_per_worker="6GiB") as client:
            t = time.perf_counter()
            Xd = build_features_dask(df, client=client, npartitions=2 * k)
            fs = time.perf_counter() - t
            eq = _equal(X1, Xd)
            t = time.perf_counter()
            c = dask_engine.train(s, "failure", str(tmp / f"m-dask{k}"), client, until=until,
                                  frame=(df, Xd), params={"num_boost_round": rounds})
            ts = time.perf_counter() - t
            wrss = client.run(lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        ev = training.evaluate(s, "failure", str(tmp / f"m-dask{k}"), until, end, frame=frame)
        res[f"dask_{k}"] = {"features_s": round(fs, 2), "features_equal": eq,
                            "features_jobs_per_s": round(n / fs), "train_s": round(ts, 2),
                            "train_rows_per_s": round(c["counts"]["fit"] / ts),
                            "worker_peak_rss_mb": [round(v) for v in wrss.values()],
                            "val_auroc": c["validation"]["model"]["auroc"],
                            "test_auroc": ev["metrics"]["model"]["auroc"]}
        res[f"dask_{k}"]["test_auroc_diff"] = round(
            abs(res[f"dask_{k}"]["test_auroc"] - res["single"]["test_auroc"]), 4)
    res["driver_peak_rss_mb"] = round(_rss_mb())
    s.close()
    shutil.rmtree(tmp, ignore_errors=True)
    (OUT / f"dask_{name}.json").write_text(json.dumps(res, indent=2))
    print(json.dumps(res, indent=2))
    return res


if __name__ == "__main__":
    main(sys.argv[1:])
