"""Conformal recalibration on a sliding window, for the quantile (request) models.

The static conformal shift is fitted once, on the calibration slice just before the training
cut; when the workload drifts (RICC's test months run shorter than its calibration weeks) the
stated coverage no longer holds. Here the shift of each quantile, and the retry-budget table,
are refitted from the residuals of the most recent `WINDOW` labelled jobs that had ENDED
before a moment, counting only jobs submitted from the calibration slice on (never a job the
booster was fitted on): leakage-safe and online, the booster itself is not refitted.

- `jobmedic train <kind> --recalibrate` does it once, as of now (or `--until`), and writes a
  new artifact version with the same booster: what predict and batch scoring then serve. Run
  it on a schedule (e.g. daily, under cron or `watch`).
- `evaluate` reports, beside the static figures, the `online` ones: every test job scored with
  the shift of the window that had ended by the start of its submit day (`CADENCE`), i.e. a
  daily recalibration replayed over the test window; the runtime model's --time allocation
  price is re-set with each table as `--recalibrate` sets it (`online_lambdas`).
"""
from __future__ import annotations

import calendar
import time
from typing import Any

import numpy as np
import pandas as pd

from jobmedic.models import conformal, runtime_advice

WINDOW = 5000
MIN_N = 500
CADENCE = 86400


def epoch(iso: str | None) -> float | None:
    """Epoch seconds of a card's ISO time (None when absent)."""
    if not iso:
        return None
    return float(calendar.timegm(time.strptime(iso, "%Y-%m-%dT%H:%M:%SZ")))


def pool(df: pd.DataFrame, mask: np.ndarray, since: float | None, before: float) -> np.ndarray:
    """Positions of the labelled jobs submitted at or after `since` that ended before
    `before`, ordered by end time (then position)."""
    sub = df["submit_time"].to_numpy(dtype="float64")
    end = df["end_time"].to_numpy(dtype="float64")
    ok = mask & np.isfinite(end) & (end < before)
    if since is not None:
        ok &= sub >= since
    rows = np.flatnonzero(ok)
    return rows[np.lexsort((rows, end[rows]))]


def residuals(model: Any, X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """log1p(y) minus the booster's raw quantiles (jobs x alphas)."""
    return np.log1p(y)[:, None] - model._raw(X)


def refit(model: Any, resid: np.ndarray, window: int = WINDOW) -> dict[str, Any]:
    """Set `model`'s shift and budget table from the last `window` residual rows (time order);
    returns what was used."""
    r = resid[-window:]
    model.shift_ = [float(np.quantile(r[:, i], a)) for i, a in enumerate(model.alphas)]
    model.budget_ = conformal.fit_table(r[:, int(np.argmax(model.alphas))], window)
    return {"n": len(r), "window": window}


def online_shifts(resid: np.ndarray, ends: np.ndarray, times: np.ndarray, alphas: list[float],
                  static: list[float], budgets: list[float], window: int = WINDOW,
                  cadence: float = CADENCE) -> tuple[np.ndarray, dict[float, np.ndarray]]:
    """Per query time: the shift of each quantile and the budget shifts, from the last
    `window` residuals (rows ordered by `ends`) that ended before the start of the query's
    `cadence` period; `static` where fewer than MIN_N had (budgets: fewer than `window`)."""
    t = np.floor(np.asarray(times, float) / cadence) * cadence if cadence else np.asarray(times, float)
    p = np.searchsorted(ends, t, side="left") - 1
    pc = np.clip(p, 0, None)
    shifts = np.empty((len(t), len(alphas)))
    for i, a in enumerate(alphas):
        rq = (pd.Series(resid[:, i]).rolling(window, min_periods=min(window, MIN_N)).quantile(a)
              .to_numpy() if len(resid) else np.zeros(1))
        v = np.where(p >= 0, rq[pc] if len(resid) else np.nan, np.nan)
        shifts[:, i] = np.where(np.isfinite(v), v, static[i])
    top = resid[:, int(np.argmax(alphas))] if len(resid) else np.zeros(0)
    out: dict[float, np.ndarray] = {}
    for b in budgets:
        level = min(np.ceil((window + 1) * (1 - b)) / window, 1.0)
        rq = (pd.Series(top).rolling(window, min_periods=window).quantile(level, interpolation="higher")
              .to_numpy() if len(top) else np.zeros(1))
        v = np.where(p >= 0, rq[pc] if len(top) else np.nan, np.nan)
        out[b] = v  # NaN: no full window yet (the caller uses the static table)
    return shifts, out


def online_lambdas(top: np.ndarray, timelimit: np.ndarray, cpus: np.ndarray, ends: np.ndarray,
                   times: np.ndarray, bshift: dict[float, np.ndarray], static: float,
                   scale: float, target: float, window: int = WINDOW,
                   cadence: float = CADENCE) -> np.ndarray:
    """Per query time: the --time allocation's price (runtime_advice.lambda_for_target) re-set
    as `train runtime --recalibrate` sets it at the start of the query's `cadence` period: on
    the last `window` jobs that had ended by then (rows ordered by `ends`; `top` their
    log-scale top quantile before its shift, their limits and CPU counts) with that period's
    budget shifts `bshift` (`online_shifts`); `static` where those are not refitted (NaN)."""
    t = np.floor(np.asarray(times, float) / cadence) * cadence if cadence else np.asarray(times, float)
    p = np.searchsorted(ends, t, side="left")  # rows [p - window, p) had ended by t
    lam = np.full(len(t), float(static))
    for pp in np.unique(p):
        q = np.flatnonzero(p == pp)
        sh = np.array([bshift[b][q[0]] for b in runtime_advice.ALLOC_BUDGETS], float)
        if pp < window or not np.isfinite(sh).all():
            continue
        r = slice(pp - window, pp)
        v = runtime_advice.lambda_for_target(runtime_advice.times_at(np.asarray(top, float)[r], sh),
                                             timelimit[r], cpus[r], scale, target)
        lam[q] = static if v is None else v
    return lam
