"""The recommended --time: how the runtime model spends its kill budget across jobs.

Chosen on the RICC validation slice (bench/eval_ricc_alloc.py; docs/models.md, issue 18
seventh pass), never on the test window:

- **allocated** (the rule served when the model carries a budget table and the calibration
  slice's request scale): each job takes the retry budget b of `ALLOC_BUDGETS` (the conformal
  grid up to 10 %) that minimises  cpus x t(b) / scale + `ALLOC_LAMBDA` x b,  where t(b) is
  the job's conformal request at budget b (whole minutes plus one, never above the user's own
  limit) and scale the mean requested core-seconds of the calibration slice. A job with more
  core-hours at stake takes more risk, a small one almost none; a spec without a CPU count
  counts as one CPU (as `runtime.walltime_effect` does). The price lambda is set to a TARGET
  mean budget (`ALLOC_TARGET`, issue 18 seventh pass follow-up): the lambda at which the mean
  budget the jobs take is the target, on the calibration slice at `calibrate`, on the sliding
  window at each recalibration (`lambda_for_target`); artifacts from before the target keep
  their fixed lambda (0.5). The mean budget is NOT the expected kill share: the tables are
  calibrated over all jobs, not per budget taken, and the jobs that take large budgets (many
  core-hours at stake) are killed more often than their budget (the card: realised kills
  1.7-2.6x the mean budget on validation); so predict's chance of too low a --time is the
  kill share MEASURED per budget taken on the calibration slice (`kill_shares`), not the
  budget.
- The recommendation starts from the booster's RAW top quantile (`Served.raw`), the one the
  budget table was fitted on, never from the sorted shifted quantiles (they differ where the
  quantiles cross): predict, batch, the card and the daily replay apply one rule.
- **tiers** (artifacts written before the scale existed): the request at a 1 % retry budget
  below a 12 h limit, at 5 % from it (`LONG_LIMIT_S`, `TIER_BUDGETS`, the third pass).
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from jobmedic.knowledge.errors import ModelError
from jobmedic.models import conformal
from jobmedic.models.features import FEATURES

LONG_LIMIT_S = 12 * 3600  # the tier boundary on the user's limit (validation: 6, 12, 24 h)
TIER_BUDGETS = (0.01, 0.05)  # retry budget below / from LONG_LIMIT_S
#: the budgets a job may take, and the price of one unit of budget in units of the mean
#: requested core-seconds (validation: 61 values from 0.001 to 1000; the most core-hours saved
#: at <= 4.5 % of jobs killed, recalibrated daily)
ALLOC_BUDGETS = tuple(b for b in conformal.GRID if b <= 0.1)
ALLOC_LAMBDA = 0.5  # the fixed price of artifacts written before the target
#: the mean budget (the expected kill share, were the tables calibrated per job) the price is
#: set to; chosen on validation among 2, 3, 3.5, 4, 4.5 % by the rule fixed first (recalibrated
#: daily: the most saved at <= 4.5 % killed): only 2 % qualified (3.30 % killed, 59.0 % saved;
#: 3 % killed 5.59 %): the jobs that take large budgets are killed more often than their budget
ALLOC_TARGET = 0.02
LAMBDA_RANGE = (1e-4, 1e4)  # the log bisection's bounds
#: False serves the limit tiers again (the rule before the allocation) from the same artifacts
ALLOCATE = True
_CPUS, _LIMIT = FEATURES.index("req_cpus"), FEATURES.index("timelimit_s")


def budget_time(t: np.ndarray, timelimit: np.ndarray | None = None) -> np.ndarray:
    """A budget's --time: whole minutes plus one, never above the user's own limit."""
    rec = np.ceil(np.asarray(t, float) / 60) * 60 + 60
    if timelimit is not None:
        rec = np.where(np.isfinite(timelimit) & (timelimit > 0), np.minimum(rec, timelimit), rec)
    return rec


def is_long(timelimit: np.ndarray) -> np.ndarray:
    tl = np.asarray(timelimit, float)
    return np.isfinite(tl) & (tl >= LONG_LIMIT_S)


def tiered(t_short: np.ndarray, t_long: np.ndarray, timelimit: np.ndarray) -> np.ndarray:
    """The recommended --time from the budget times of the two tiers (`TIER_BUDGETS`)."""
    return budget_time(np.where(is_long(timelimit), t_long, t_short), timelimit)


def cpus_or_one(cpus: Any, n: int) -> np.ndarray:
    c = np.full(n, np.nan) if cpus is None else np.broadcast_to(np.asarray(cpus, float), (n,))
    return np.where(np.isfinite(c) & (c > 0), c, 1.0)


def request_scale(X: np.ndarray) -> float | None:
    """The mean requested core-seconds (CPUs x limit) of model inputs `X` with a limit."""
    X = np.asarray(X, float)
    if not len(X):
        return None
    tl = X[:, _LIMIT]
    ok = np.isfinite(tl) & (tl > 0)
    v = float(np.mean((cpus_or_one(X[:, _CPUS], len(X)) * tl)[ok])) if ok.any() else 0.0
    return v if np.isfinite(v) and v > 0 else None


def _positive(v: Any) -> bool:
    """A finite number > 0 in an artifact's meta (not a bool)."""
    return not isinstance(v, bool) and isinstance(v, (int, float)) and bool(np.isfinite(v)) and v > 0


def loaded_scale(meta_value: Any) -> float | None:
    """The stored scale, checked (None for artifacts written before it)."""
    if meta_value is None:
        return None
    v = meta_value.get("scale_core_s") if isinstance(meta_value, Mapping) else meta_value
    if v is None:
        return None
    if not _positive(v):
        raise ModelError("the walltime allocation scale in the runtime model artifact is malformed",
                         "retrain with `jobmedic train runtime`")
    return float(v)


def loaded_lambda(meta_value: Any) -> tuple[float, float | None]:
    """(lambda, target) stored in the artifact: (`ALLOC_LAMBDA`, None) for artifacts written
    before them; ModelError when it was fitted on another budget grid (`check_budgets`)."""
    if not isinstance(meta_value, Mapping):
        return ALLOC_LAMBDA, None
    check_budgets(meta_value)
    lam, target = meta_value.get("lambda", ALLOC_LAMBDA), meta_value.get("target")
    for v, what in ((lam, "lambda"), (target, "target")):
        if v is None and what == "target":
            continue
        if not _positive(v):
            raise ModelError(f"the walltime allocation {what} in the runtime model artifact is "
                             "malformed", "retrain with `jobmedic train runtime`")
    return float(lam), None if target is None else float(target)


def check_budgets(meta_value: Any) -> None:
    """A stored allocation fitted on another budget grid than `ALLOC_BUDGETS` is refused (its
    price and kill shares belong to that grid); artifacts without a stored grid pass."""
    if not isinstance(meta_value, Mapping) or meta_value.get("budgets") is None:
        return
    b = meta_value["budgets"]
    ok = (isinstance(b, list) and len(b) == len(ALLOC_BUDGETS)
          and all(not isinstance(v, bool) and isinstance(v, (int, float)) for v in b)
          and np.allclose(np.asarray(b, float), ALLOC_BUDGETS, rtol=0, atol=1e-12))
    if not ok:
        raise ModelError("the walltime allocation in the runtime model artifact was fitted on "
                         f"other retry budgets ({b!r}) than this jobmedic serves "
                         f"({list(ALLOC_BUDGETS)})", "retrain with `jobmedic train runtime`")


#: a budget taken by fewer calibration jobs than this serves its nominal budget as the chance
#: of too low a --time (a share of a handful of jobs says little)
KILL_MIN_JOBS = 20


def kill_shares(y: np.ndarray, rec: np.ndarray, taken: np.ndarray) -> dict[str, list]:
    """Per `ALLOC_BUDGETS` budget: the number of jobs that took it and the share of them the
    recommended --time `rec` would have killed (None without jobs); measured where the
    allocation was priced (the calibration slice, the recalibration window), in-sample for the
    tables fitted there; not a bound on later jobs' kill share, budget by budget (RICC
    validation: higher at 5 of the 9 budgets, lower at 4; docs/models.md)."""
    y, rec, taken = (np.asarray(v, float) for v in (y, rec, taken))
    jobs, share = [], []
    for b in ALLOC_BUDGETS:
        m = np.abs(taken - b) <= 1e-12  # (np.isclose costs ~30 us a call: per predict)
        jobs.append(int(m.sum()))
        share.append(float(np.mean(y[m] > rec[m])) if m.any() else None)
    return {"kill_share": share, "jobs": jobs}


def loaded_kills(meta_value: Any) -> dict[str, list] | None:
    """The stored measured kill shares (`kill_shares`), checked; None for artifacts before them."""
    k = meta_value.get("kills") if isinstance(meta_value, Mapping) else None
    if k is None:
        return None
    n = len(ALLOC_BUDGETS)
    share, jobs = (k.get("kill_share"), k.get("jobs")) if isinstance(k, Mapping) else (None, None)
    ok = isinstance(share, list) and isinstance(jobs, list) and len(share) == len(jobs) == n
    for s, j in zip(share or [], jobs or []):
        ok = ok and not isinstance(j, bool) and isinstance(j, int) and j >= 0 and (
            (s is None and j == 0) or (j > 0 and not isinstance(s, bool)
                                       and isinstance(s, (int, float)) and 0 <= s <= 1))
    if not ok:
        raise ModelError("the measured kill shares of the walltime allocation in the runtime "
                         "model artifact are malformed", "retrain with `jobmedic train runtime`")
    return {"kill_share": [None if s is None else float(s) for s in share], "jobs": list(jobs)}


def chance_too_low(taken: np.ndarray, kills: Mapping[str, list] | None) -> np.ndarray:
    """The chance of too low a --time served for the budget each job took: the kill share
    measured for that budget (`kill_shares`) where at least `KILL_MIN_JOBS` jobs took it, else
    the budget itself (also for artifacts without measured shares)."""
    taken = np.asarray(taken, float)
    out = taken.copy()
    if kills is None:
        return out
    for b, s, j in zip(ALLOC_BUDGETS, kills["kill_share"], kills["jobs"]):
        if s is not None and j >= KILL_MIN_JOBS:
            out[np.abs(taken - b) <= 1e-12] = s
    return out


def _per_job(v: Any) -> Any:
    a = np.asarray(v, float)  # one value, or one per job (walk-forward / daily replay)
    return a[:, None] if a.ndim else a


def _costs(times: np.ndarray, timelimit: np.ndarray, cpus: Any, scale: Any
           ) -> tuple[np.ndarray, np.ndarray]:
    """(the --time at each budget, its core-seconds over `scale`), jobs x `ALLOC_BUDGETS`."""
    tl = np.asarray(timelimit, float)
    rec = budget_time(np.asarray(times, float), tl[:, None])
    return rec, cpus_or_one(cpus, len(rec))[:, None] * rec / _per_job(scale)


def allocate(times: np.ndarray, timelimit: np.ndarray, cpus: Any, scale: float | np.ndarray,
             lam: float | np.ndarray = ALLOC_LAMBDA) -> tuple[np.ndarray, np.ndarray]:
    """(recommended --time, the budget each job took) from `times`, the conformal requests
    (jobs x `ALLOC_BUDGETS`); `scale` and `lam` one value or one per job."""
    rec, cost = _costs(times, timelimit, cpus, scale)
    j = np.argmin(cost + _per_job(lam) * np.asarray(ALLOC_BUDGETS)[None, :], axis=1)
    return rec[np.arange(len(rec)), j], np.asarray(ALLOC_BUDGETS)[j]


def lambda_for_target(times: np.ndarray, timelimit: np.ndarray, cpus: Any, scale: float,
                      target: float, iters: int = 50) -> float | None:
    """The smallest lambda (bisection on a log scale over `LAMBDA_RANGE`) at which the mean
    budget the jobs of `times` (jobs x `ALLOC_BUDGETS`) take is at most `target`: each job's
    budget, hence the mean, falls as lambda grows. None without jobs."""
    if not len(times):
        return None
    _, cost = _costs(times, timelimit, cpus, scale)
    b = np.asarray(ALLOC_BUDGETS)

    def mean_budget(lam: float) -> float:
        return float(np.mean(b[np.argmin(cost + lam * b[None, :], axis=1)]))

    lo, hi = LAMBDA_RANGE
    if mean_budget(lo) <= target:
        return lo
    if mean_budget(hi) > target:
        return hi
    for _ in range(iters):
        mid = float(np.sqrt(lo * hi))
        lo, hi = (lo, mid) if mean_budget(mid) <= target else (mid, hi)
    return hi


def table_times(top: np.ndarray, table: Mapping[str, Any] | None) -> np.ndarray | None:
    """jobs x `ALLOC_BUDGETS` conformal requests from the log-scale top quantile before its
    shift and a budget table; None when the table lacks a budget."""
    shifts = [conformal.shift_for(table, b) for b in ALLOC_BUDGETS]
    if any(s is None for s in shifts):
        return None
    return times_at(top, shifts)


def times_at(top: np.ndarray, shifts: Any) -> np.ndarray:
    """jobs x budgets conformal requests: the log-scale top quantile before its shift `top`
    moved to each budget's shift (a budget table's, or a recalibrated window's)."""
    return np.expm1(np.asarray(top, float)[:, None] + np.asarray(shifts, float)[None, :]).clip(min=0)


def from_times(budget_t: Mapping[float, np.ndarray], timelimit: np.ndarray, cpus: Any,
               scale: float | np.ndarray | None, lam: float | np.ndarray = ALLOC_LAMBDA
               ) -> tuple[np.ndarray, np.ndarray, str] | None:
    """The recommendation from per-budget request times (recalibrated tables): allocated at
    price `lam` when every `ALLOC_BUDGETS` time and a scale are there, else the tiers; None
    without those."""
    tl = np.asarray(timelimit, float)
    ok = scale is not None and bool(np.all(np.isfinite(scale)) and np.all(np.asarray(scale) > 0))
    if ALLOCATE and ok and all(b in budget_t for b in ALLOC_BUDGETS):
        rec, b = allocate(np.stack([budget_t[b] for b in ALLOC_BUDGETS], axis=1), tl, cpus, scale,
                          lam)
        return rec, b, "allocated"
    s, lo = TIER_BUDGETS
    if s in budget_t and lo in budget_t:
        return (tiered(budget_t[s], budget_t[lo], tl), np.where(is_long(tl), lo, s), "tiers")
    return None


def from_table(top: np.ndarray, table: Mapping[str, Any] | None, timelimit: np.ndarray, cpus: Any,
               scale: float | None, lam: float = ALLOC_LAMBDA
               ) -> tuple[np.ndarray, np.ndarray, str] | None:
    """The same from the log-scale top quantile before its shift and a budget table."""
    grid = sorted(set(ALLOC_BUDGETS) | set(TIER_BUDGETS))
    shifts = {b: conformal.shift_for(table, b) for b in grid}
    t = {b: np.expm1(np.asarray(top, float) + s).clip(min=0) for b, s in shifts.items() if s is not None}
    return from_times(t, timelimit, cpus, scale, lam)
