"""The sweeps behind the runtime model's settings (models/runtime.py: POINT_WEIGHT,
LONG_LIMIT_S, TIER_BUDGETS), on the RICC VALIDATION slice only: fit and calibrate on the first
80 % of the completed jobs before the test cut (70 % by submit time), score the jobs submitted
from there to the cut, as `bench.eval_ricc_runtime --validate` does; the test slice is never
read. One booster fit (about 70 s CPU), then:

- the point runtime: MAE of the log blend of the unshifted median with `user_ratio_rt` for
  weights 0.0-1.0 on the median;
- the recommended --time: kills and core-hours saved of one retry budget for all jobs, and of
  two tiers split by the user's limit (12, 24, 48 h) with a budget each, all from the
  retry-budget tables recalibrated daily on the last 5,000 ended jobs
  (models/runtime_rolling.py), and the saving net of the retries (a killed run is rerun at the
  user's request).

    .venv/bin/python -m bench.eval_ricc_choices
"""
from __future__ import annotations

import sys

import numpy as np

from bench.eval_common import OUT, report, ricc_validation_fit
from jobmedic.models import runtime, runtime_point, runtime_rolling

GRID = [0.01, 0.02, 0.03, 0.05, 0.075, 0.1]


def main(argv: list[str]) -> dict:
    sp, m, fit_cpu = ricc_validation_fit()
    frame, df, y, sub, end = sp.frame, sp.df, sp.y, sp.sub, sp.end
    fit, cal, ev = sp.fit, sp.cal, sp.ev
    Xe = m.inputs(frame, ev)
    raw = m._raw(Xe)
    ye, tl = y[ev], df["timelimit_s"].to_numpy(float)[ev]
    cpus = df["req_cpus"].to_numpy(float)[ev]
    out: dict = {"n": {"fit": len(fit), "calibration": len(cal), "validation": len(ev)},
                 "fit_cpu_s": round(fit_cpu, 1), "point_mae_h": {}, "uniform": {}, "tiers": {}}
    ratio = Xe[:, runtime_point._RATIO]
    for w in np.round(np.arange(0, 1.01, 0.1), 1):
        r = np.asarray(ratio, float)
        ok = np.isfinite(r) & (r > 0)
        pt = np.expm1(np.where(ok, w * raw[:, 1] + (1 - w) * np.log1p(np.where(ok, r, 0)), raw[:, 1]))
        out["point_mae_h"][f"{w:g}"] = round(float(np.mean(np.abs(pt - ye))) / 3600, 4)
    # the daily-recalibrated budget shifts (as runtime.online, over a finer budget grid)
    pool = runtime_rolling.pool(df, sp.mask, float(sub[cal[0]]), float(np.max(sub[ev])))
    resid = runtime_rolling.residuals(m, m.inputs(frame, pool), y[pool])
    _, bsh = runtime_rolling.online_shifts(resid, end[pool], sub[ev], m.alphas, m.shift_, GRID)
    top = raw[:, int(np.argmax(m.alphas))]
    t = {b: np.expm1(top + np.where(np.isfinite(v), v, 0.0)) for b, v in bsh.items()}

    def effect(rec: np.ndarray) -> dict:
        r = runtime.recommendation_effect(ye, (rec, np.empty(0), ""), tl, cpus)
        return {"killed_%": round(100 * r["killed_share"], 2),
                "saved_%": round(100 * r["core_hours_saved_share"], 1),
                "saved_net_of_retries_%": round(100 * r["core_hours_saved_net_of_retries_share"], 1)}

    for b in GRID:
        out["uniform"][f"{b:g}"] = effect(runtime.budget_time(t[b], tl))
    for hours in (12, 24, 48):
        long_ = tl >= hours * 3600
        cands = [effect(runtime.budget_time(np.where(long_, t[bl], t[bs]), tl)) | {"short": bs, "long": bl}
                 for bs in GRID for bl in GRID]
        ok = [c for c in cands if c["killed_%"] <= 5.0]
        out["tiers"][f"{hours}h"] = max(ok, key=lambda c: c["saved_%"]) if ok else None
    return report(out, OUT / "ricc_choices.json")


if __name__ == "__main__":
    main(sys.argv[1:])
