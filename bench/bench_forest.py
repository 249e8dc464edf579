"""One job through the boosters: XGBoost's `inplace_predict` (and `pred_contribs` with
`approx_contribs`) against the numpy walk of models/forest.py, per model of a models folder,
on the same rows, interleaved. Medians and p95 of wall and CPU time per call; the answers are
checked equal.

    .venv/bin/python -m bench forest [--models DIR] [--calls N]

(default DIR: bench/out/data/models-synth-200000, written by `python -m bench predict --jobs
200000`; the boosters are read directly, so artifacts of any feature layout serve.)
"""
from __future__ import annotations

import os
import time
from functools import partial
from pathlib import Path

import numpy as np
import xgboost as xgb

from jobmedic.models.forest import Forest

OUT = Path(__file__).resolve().parent / "out" / "data"


def _time(fn, rows, out):
    for x in rows:
        t, c = time.perf_counter(), time.process_time()
        fn(x)
        out.append((time.perf_counter() - t, time.process_time() - c))


def _contribs(b, x):
    return b.predict(xgb.DMatrix(x, missing=np.nan), pred_contribs=True, approx_contribs=True)


def _stats(v):
    w, c = np.array(v).T * 1000
    return {"wall_p50_ms": round(float(np.median(w)), 3), "wall_p95_ms": round(float(np.percentile(w, 95)), 3),
            "cpu_p50_ms": round(float(np.median(c)), 3), "cpu_p95_ms": round(float(np.percentile(c, 95)), 3)}


def main(argv: list[str]) -> dict:
    mdir = Path(argv[argv.index("--models") + 1]) if "--models" in argv else OUT / "models-synth-200000"
    calls = int(argv[argv.index("--calls") + 1]) if "--calls" in argv else 500
    rng = np.random.default_rng(0)
    out: dict = {"models": str(mdir), "loadavg_start": round(os.getloadavg()[0], 2)}
    for kind in ("failure", "runtime", "memory"):
        cur = mdir / kind / "CURRENT"
        if not cur.exists():
            continue
        b = xgb.Booster()
        b.load_model(str(mdir / kind / cur.read_text().split()[0] / "model.ubj"))
        b.set_param({"nthread": 1})
        t = time.perf_counter()
        f = Forest.from_booster(b)
        compile_s = time.perf_counter() - t
        n = b.num_features()
        X = rng.lognormal(3, 3, size=(calls, n)).astype("float32")
        X[rng.random(X.shape) < 0.3] = np.nan
        rows = [X[i:i + 1] for i in range(calls)]
        ref = b.inplace_predict(X).reshape(calls, -1)
        got = np.vstack([f.predict(r).reshape(1, -1) for r in rows])
        assert np.allclose(got, ref, rtol=1e-4, atol=1e-4), kind
        xg, fw = [], []
        for i in range(0, calls, 50):  # interleaved blocks: both see the same load
            _time(b.inplace_predict, rows[i:i + 50], xg)
            _time(f.predict, rows[i:i + 50], fw)
        res = {"trees": len(f.fi), "depth": f.depth, "outputs": f.n_out, "compile_s": round(compile_s, 2),
               "xgboost": _stats(xg), "numpy_walk": _stats(fw)}
        if f.n_out == 1:
            xc, fc = [], []
            for i in range(0, calls, 50):
                _time(partial(_contribs, b), rows[i:i + 50], xc)
                _time(f.contributions, rows[i:i + 50], fc)
            res["contribs_xgboost"], res["contribs_numpy_walk"] = _stats(xc), _stats(fc)
        out[kind] = res
    out["loadavg_end"] = round(os.getloadavg()[0], 2)
    print(out)
    return out


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
