"""Smaller quantile boosters against the current ones, on the cards' VALIDATION slices (never
the test slice): the runtime model on RICC (bench/eval_ricc_runtime.py's split: first 70 % of
completed jobs by submit time, its last 20 % for validation) and the memory model on MGnify
(bench/eval_mgnify_memory.py's split). Each variant is fitted on the fit slice and scored on the
validation slice: pinball loss per quantile of the unshifted log-scale booster, median and mean
absolute error of the calibrated median, the runtime card's walltime effects, CPU per row.
Works on a copy of the bench store (bench/out/data/<data>.db, built by the eval scripts).

    .venv/bin/python -m bench.eval_quantile_structure ricc|mgnify [VARIANT ...]
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.eval_common import OUT
from jobmedic.knowledge.store import Store
from jobmedic.models import registry, training

VARIANTS = {
    "current_300x_per_quantile": {"nthread": 1},
    "multi_output_tree_300": {"nthread": 1, "multi_strategy": "multi_output_tree"},
    "multi_output_tree_600": {"nthread": 1, "multi_strategy": "multi_output_tree", "num_boost_round": 600},
    "per_quantile_100_eta0.15": {"nthread": 1, "num_boost_round": 100, "eta": 0.15},
}


def main(argv: list[str]) -> dict:
    data = argv[0]
    kind = {"ricc": "runtime", "mgnify": "memory"}[data]
    tmp = Path(tempfile.mkdtemp())
    shutil.copy(OUT / f"{data}.db", tmp / "s.db")
    s = Store(tmp / "s.db")
    frame = training._positional(training.load(s))
    df = frame[0]
    cls = registry.kind(kind)
    mask, y = cls.labels(df)
    sub = df["submit_time"].to_numpy()
    if kind == "runtime":
        subs = np.sort(df.loc[mask, "submit_time"].to_numpy())
        until = int(subs[int(len(subs) * 0.7)])
    else:
        until = int(np.sort(sub)[int(len(df) * 0.7)])
    lab = np.flatnonzero(mask & (sub < until) & (df["end_time"].to_numpy() < until))
    order = lab[np.argsort(sub[lab], kind="stable")]
    cut = int(len(order) * 0.8)  # training.train's cal_fraction: the card's validation slice
    fit_i, val_i = order[:cut], order[cut:]
    res = {}
    for name, p in VARIANTS.items():
        if argv[1:] and name not in argv[1:]:
            continue
        m = cls(p)
        Xf, Xv = m.inputs(frame, fit_i), m.inputs(frame, val_i)
        t, c = time.perf_counter(), time.process_time()
        m.fit(Xf, y[fit_i]).calibrate(Xv, y[val_i])
        fw, fc = time.perf_counter() - t, time.process_time() - c
        raw = m._raw(Xv)
        a = np.asarray(m.alphas)
        r = np.log1p(y[val_i])[:, None] - raw
        pin = np.mean(np.maximum(a * r, (a - 1) * r), axis=0)
        med = m.predict(Xv)[:, m.alphas.index(0.5)]
        X20 = np.asarray(Xv[:20000], dtype="float32")
        m.booster_.set_param({"nthread": 1})
        t0 = time.process_time()
        m.booster_.inplace_predict(X20)
        pc = time.process_time() - t0
        out = {"fit_wall_s": round(fw, 1), "fit_cpu_s": round(fc, 1),
               "rounds": int(m.booster_.num_boosted_rounds()),
               "pinball_log_raw": [round(float(x), 5) for x in pin],
               "median_abs_err": float(np.median(np.abs(y[val_i] - med))),
               "mae": float(np.mean(np.abs(y[val_i] - med))),
               "predict_us_per_row_cpu": round(pc / len(X20) * 1e6, 2), "load": os.getloadavg()[0]}
        if kind == "runtime":
            ev = m.evaluate(frame, val_i, y[val_i], {"global_median_s": float(np.median(y[fit_i]))})
            out["card_validation"] = {"mae_h": ev["model"]["mae"], "coverage": ev["model"]["coverage"],
                                      "walltime": ev["walltime_recommendation"],
                                      **{k: v for k, v in ev.items() if k.startswith("walltime_retry")}}
        res[name] = out
        print(name, json.dumps(out), flush=True)
    s.close()
    shutil.rmtree(tmp, ignore_errors=True)
    (OUT / f"quantile_structure_{data}.json").write_text(json.dumps(res, indent=1))
    return res


if __name__ == "__main__":
    main(sys.argv[1:])
