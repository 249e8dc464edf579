"""The kill share per retry budget taken: what a validation runtime model stored at calibrate
(`walltime_allocation.kills`, what predict serves as `chance_too_low.time`) against the share of
the validation jobs killed at the same budget under the static table (the product's path,
RuntimeModel.recommendation), and the share of those kills where the user's own limit capped
the --time; and the share of jobs whose shifted top quantile is not the largest (where the
sorted and the raw top differ). The calibration share is recomputed on the split's calibration
rows as a check.

    .venv/bin/python -m bench.eval_ricc_runtime --validate --nthread 1 --models DIR
    .venv/bin/python -m bench.eval_ricc_kills --models DIR [--out FILE.json]
"""
from __future__ import annotations

import argparse
import sys

import numpy as np

from bench.eval_common import OUT, report, ricc_validation_split
from jobmedic.models import registry, runtime_advice


def kills(model, split, rows: np.ndarray) -> dict:
    """runtime_advice.kill_shares of `rows` under `model`'s recommendation, with the share of
    each budget's kills at the user's own limit."""
    df = split.df
    X = model.inputs(split.frame, rows)
    tl = df["timelimit_s"].to_numpy(float)[rows]
    raw = model._raw(X)
    rec, taken, rule = model.recommendation(raw, tl, df["req_cpus"].to_numpy(float)[rows])
    y = split.y[rows]
    top = int(np.argmax(model.alphas))  # where the shifted quantiles cross at the top
    crossed = np.argmax(raw + np.asarray(model.shift_), axis=1) != top
    out = runtime_advice.kill_shares(y, rec, taken) | {
        "rule": rule, "n": len(rows), "top_quantile_not_largest_share": float(np.mean(crossed))}
    killed = y > rec
    out["killed_at_own_limit"] = [
        float(np.mean((rec >= tl)[killed & np.isclose(taken, b)]))
        if (killed & np.isclose(taken, b)).any() else None for b in runtime_advice.ALLOC_BUDGETS]
    return out


def main(argv: list[str]) -> dict:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", required=True, help="a models dir of eval_ricc_runtime --validate")
    ap.add_argument("--out", default=str(OUT / "ricc_kills.json"))
    a = ap.parse_args(argv)
    split = ricc_validation_split()
    m, meta = registry.load(a.models, "runtime")
    cal = kills(m, split, split.cal)
    return report({"model": meta["version"], "budgets": list(runtime_advice.ALLOC_BUDGETS),
                   "stored_calibration": m.alloc_kills_,
                   "recomputed_calibration_matches": {k: cal[k] for k in ("kill_share", "jobs")}
                   == m.alloc_kills_,
                   "calibration": cal, "validation": kills(m, split, split.ev)}, a.out)


if __name__ == "__main__":
    main(sys.argv[1:])
