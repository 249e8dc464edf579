"""The sweep behind the runtime model's point (models/runtime_point.py), on the RICC VALIDATION
slice only: fit and calibrate on the completed jobs before 2010-08-26T13:12Z (the first 80 % of
those before the test cut, itself 70 % by submit time; the booster on the first 80 % of them,
the calibration slice the rest), score the 62,019 jobs submitted from there to the test cut, as
`bench.eval_ricc_runtime --validate` does; the test slice is never read. One booster fit (about
65-90 s CPU, one thread), cached as .npy under --cache (no pickle), then each candidate in
seconds. Every stack is fitted on the CALIBRATION rows only (jobs the booster never saw);
validation rows only score. Candidates (point runtime in s; MAE and median AE in hours):

- blend: the point before this pass (unshifted median x 0.4 + user_ratio_rt x 0.6, log1p);
- repeat: the runtime of the shape's last completed job (the blend where there is none);
- stack ...: a least-absolute-deviation fit on log1p over the listed inputs where the shape has
  a repeat (the blend elsewhere), weighted by the blend in hours (`hours`) or not (`logs`);
  `ended repeat` uses the last ENDED job of the shape (any end state: RT_FEATURES'
  shape_last_ratio x limit) instead of the last completed one.

    .venv/bin/python -m bench.eval_ricc_point [--cache DIR]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from bench.eval_common import OUT, report, ricc_validation_fit, save_arrays
from jobmedic.models import runtime, runtime_features, runtime_point
from jobmedic.models.runtime_point import _RATIO, _WIDTH, blend, lad

_SHAPE_LAST = len(runtime.FEATURES) + runtime_features.RT_FEATURES.index("shape_last_ratio")
_TL = runtime.FEATURES.index("timelimit_s")


def cached(cache: Path) -> dict[str, np.ndarray]:
    """Inputs, raw booster outputs and runtimes of the calibration and validation rows."""
    names = ["Xc", "rawc", "yc", "Xv", "rawv", "yv"]
    if all((cache / f"{n}.npy").exists() for n in names):
        return {n: np.load(cache / f"{n}.npy") for n in names}
    sp, m, fit_cpu = ricc_validation_fit(calibrate=False)
    print(f"booster fit: {fit_cpu:.1f} s CPU ({len(sp.fit)} jobs)", flush=True)
    Xc, Xv = m.inputs(sp.frame, sp.cal), m.inputs(sp.frame, sp.ev)
    out = {"Xc": Xc, "rawc": m._raw(Xc), "yc": sp.y[sp.cal], "Xv": Xv, "rawv": m._raw(Xv),
           "yv": sp.y[sp.ev]}
    save_arrays(cache, out)
    return out


def _cols(X: np.ndarray, raw: np.ndarray, rep: np.ndarray, names: list[str]) -> np.ndarray:
    med = raw[:, 1]
    r = X[:, _RATIO]
    lur = np.where(np.isfinite(r) & (r > 0), np.log1p(np.where(r > 0, r, 0.0)), med)
    c = {"median": med, "q0.1": raw[:, 0], "q0.9": raw[:, 2], "q0.95": raw[:, 3],
         "user_ratio_rt": lur, "repeat": np.log1p(np.where(np.isfinite(rep), rep, 0.0)),
         "limit": np.log1p(np.nan_to_num(X[:, _TL], nan=0.0))}
    return np.column_stack([c[n] for n in names] + [np.ones(len(X))])


def main(argv: list[str]) -> dict:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cache", default="/tmp/jobmedic-point")
    a = ap.parse_args(argv)
    d = cached(Path(a.cache))
    Xc, Xv, yc, yv = d["Xc"], d["Xv"], d["yc"], d["yv"]
    bc, bv = blend(d["rawc"][:, 1], Xc[:, _RATIO]), blend(d["rawv"][:, 1], Xv[:, _RATIO])

    def score(pt: np.ndarray) -> dict:
        e = np.abs(pt - yv) / 3600
        return {"mae_h": round(float(e.mean()), 4), "median_ae_h": round(float(np.median(e)), 4)}

    reps = {"completed": (Xc[:, _WIDTH], Xv[:, _WIDTH]),
            "ended": (Xc[:, _SHAPE_LAST] * Xc[:, _TL], Xv[:, _SHAPE_LAST] * Xv[:, _TL])}
    out: dict = {"n": {"calibration": len(yc), "validation": len(yv),
                       "validation_with_repeat": int(np.isfinite(reps["completed"][1]).sum())},
                 "blend (before)": score(bv),
                 "repeat alone": score(np.where(np.isfinite(reps["completed"][1]), reps["completed"][1], bv))}
    cands = [("completed", ["median", "user_ratio_rt", "repeat"], "hours"),
             ("completed", ["median", "user_ratio_rt", "repeat"], "logs"),
             ("completed", ["median", "repeat"], "hours"),
             ("completed", ["median", "q0.1", "q0.9", "q0.95", "user_ratio_rt", "repeat", "limit"], "hours"),
             ("ended", ["median", "user_ratio_rt", "repeat"], "hours")]
    for which, names, wt in cands:
        rc, rv = reps[which]
        hc, hv = np.isfinite(rc) & (rc >= 0), np.isfinite(rv) & (rv >= 0)
        Ac, Av = _cols(Xc, d["rawc"], rc, names), _cols(Xv, d["rawv"], rv, names)
        w = bc / 3600 + 0.05 if wt == "hours" else np.ones(len(yc))
        coef = lad(Ac[hc], np.log1p(yc[hc]), w[hc])
        pt = np.where(hv, np.expm1(np.clip(Av @ coef, 0, None)), bv)
        key = f"stack {'+'.join(names)}, {which} repeat, {wt}"
        out[key] = score(pt) | {"coef": [round(float(c), 3) for c in coef]}
    # the product's own fit (runtime_point.fit_stack) must equal the first stack above
    st = runtime_point.fit_stack(d["rawc"][:, 1], Xc, yc)
    out["product fit_stack"] = score(runtime_point.stacked(st, d["rawv"][:, 1], Xv)) | {
        "coef": [round(c, 3) for c in st["coef"]] if st else None}
    return report(out, OUT / "ricc_point.json")


if __name__ == "__main__":
    main(sys.argv[1:])
