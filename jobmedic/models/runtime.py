"""Runtime at submit time: quantiles of the runtime of jobs that complete, the interval they
imply, a point runtime and the walltime recommendation, compared with the requested time, the
mean of the user's last two runtimes and the global median.

Chosen on a validation slice carved from the training period (the last 20 % of the first 70 %
of RICC by submit time; bench/eval_ricc_runtime.py --validate), never on the test window:

- the point runtime (what MAE scores; models/runtime_point.py) blends, on a log scale, the
  booster's median before any conformal shift (weight `POINT_WEIGHT`) with the user's recent
  share of the request x this job's request (`user_ratio_rt`); where the request shape has an
  exact repeat (its last completed job), a stack fitted on the calibration slice replaces the
  blend (issue 18 seventh pass); the shifted q0.5 stays the coverage-calibrated median;
- the recommended `--time` spends the kill budget where the core-hours are: each job takes the
  retry budget that minimises its requested core-seconds plus a price per unit of budget, the
  price set so that the mean budget is a target (at calibrate and each recalibration;
  models/runtime_advice.py, issue 18 seventh pass); artifacts from before that: tiered by the
  user's own limit (1 % below 12 h, 5 % from it); without a budget table: the q0.95."""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from jobmedic.core.units import fmt_duration
from jobmedic.models import (
    conformal,
    metrics,
    runtime_advice,
    runtime_features,
    runtime_point,
    runtime_rolling,
)
from jobmedic.models.base import table
from jobmedic.models.features import FEATURES
from jobmedic.models.quantile import QuantileModel

ALPHAS = [0.1, 0.5, 0.9, 0.95]
RECOMMEND_ALPHA = 0.95
BUDGETS = [0.01, 0.02, 0.05]  # retry budgets evaluated on the card
POINT_WEIGHT = runtime_point.POINT_WEIGHT  # the point runtime: models/runtime_point.py
# the recommended --time's rule lives in models/runtime_advice.py (names kept here)
LONG_LIMIT_S, TIER_BUDGETS = runtime_advice.LONG_LIMIT_S, runtime_advice.TIER_BUDGETS
budget_time, is_long, tiered = runtime_advice.budget_time, runtime_advice.is_long, runtime_advice.tiered

#: Boosting rounds per quantile (ALPHAS order), not early stopping: on the latest fit rows it
#: chose ~100 for each and lost on the card's validation slice (retry-budget kills); 50 / 200
#: for q0.1 / q0.5 left MAE and median AE a few seconds worse there (docs/models.md).
ROUNDS = [300, 300, 300, 300]


def labels(df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(mask of completed jobs with a runtime, runtime in seconds)."""
    y = df["elapsed_s"].to_numpy(dtype="float64")
    return ((df["state"] == "completed").to_numpy() & np.isfinite(y) & (y >= 0)
            & df["end_time"].notna().to_numpy()), y


def recommend(q: np.ndarray, timelimit: np.ndarray | None = None) -> np.ndarray:
    """The q0.95 walltime (the rule before the tiers; still the one without a budget table),
    never above the user's own limit."""
    rec = np.ceil(q[:, ALPHAS.index(RECOMMEND_ALPHA)] / 60) * 60 + 60
    if timelimit is not None:
        rec = np.where(np.isfinite(timelimit) & (timelimit > 0), np.minimum(rec, timelimit), rec)
    return rec


def walltime_effect(y: np.ndarray, rec: np.ndarray, timelimit: np.ndarray, cpus: np.ndarray) -> dict:
    """Share of jobs the recommended --time would have killed, and requested core-hours saved."""
    ok = np.isfinite(timelimit) & (timelimit > 0)
    c = np.where(np.isfinite(cpus) & (cpus > 0), cpus, 1)
    req = float(np.sum(timelimit[ok] * c[ok]))
    new = float(np.sum(rec[ok] * c[ok]))
    return {"killed_share": float(np.mean(y > rec)),
            "requested_core_hours": req / 3600, "recommended_core_hours": new / 3600,
            "core_hours_saved_share": (1 - new / req) if req else None,
            "n_with_limit": int(ok.sum())}


def recommendation_effect(y: np.ndarray, rec: tuple[np.ndarray, np.ndarray, str], tl: np.ndarray,
                          cpus: np.ndarray) -> dict[str, Any]:
    """`walltime_effect` of a recommendation, with its rule, the mean budget the jobs took and
    the saving net of the retries (a killed run reruns at the user's limit)."""
    t, b, rule = rec
    out = walltime_effect(y, t, tl, cpus)
    retried = np.where(y > t, t + np.where(np.isfinite(tl) & (tl > 0), tl, 0.0), t)
    net = walltime_effect(y, retried, tl, cpus)["core_hours_saved_share"]
    return out | {"rule": rule, "mean_budget": float(np.mean(b)) if len(b) else None,
                  "core_hours_saved_net_of_retries_share": net}


def _scored(y: np.ndarray, q: np.ndarray, tl: np.ndarray, cpus: np.ndarray,
            budget_t: dict[float, np.ndarray], pt: np.ndarray,
            scale: float | None = None, lam: Any = runtime_advice.ALLOC_LAMBDA) -> dict[str, Any]:
    """Point error, coverage and the walltime effects of quantiles `q` (and budget times;
    the recommendation allocated with request `scale` at price `lam`, else tiered)."""
    out: dict[str, Any] = metrics.regression(y, pt, 3600) | {
        "coverage": metrics.quantile_coverage(y, q, ALPHAS),
        "walltime_q0.95": walltime_effect(y, recommend(q, tl), tl, cpus)}
    rec = runtime_advice.from_times(budget_t, tl, cpus, scale, lam)
    out["walltime_recommendation"] = (out["walltime_q0.95"] if rec is None
                                      else recommendation_effect(y, rec, tl, cpus))
    for b, t in budget_t.items():
        if b in BUDGETS:
            out[f"walltime_retry_budget_{b:g}"] = walltime_effect(y, budget_time(t, tl), tl, cpus)
    return out


def online(model: QuantileModel, frame, rows: np.ndarray, card: dict[str, Any]
           ) -> tuple[np.ndarray, dict[float, np.ndarray], dict[str, Any]]:
    """Quantiles and budget times of `rows` with the conformal shifts refitted daily on a
    sliding window (models/runtime_rolling.py), and what that used (`lambda`: each job's
    --time allocation price, re-set with the tables when the model has a target)."""
    df = frame[0]
    mask, y = labels(df)
    since = runtime_rolling.epoch((card.get("window") or {}).get("calibration_from"))
    sub = df["submit_time"].to_numpy(dtype="float64")[rows]
    pool = runtime_rolling.pool(df, mask, since, float(np.nanmax(sub)) if len(sub) else 0.0)
    resid = runtime_rolling.residuals(model, model.inputs(frame, pool), y[pool])
    ends = df["end_time"].to_numpy(dtype="float64")[pool]
    shifts, bshift = runtime_rolling.online_shifts(
        resid, ends, sub, model.alphas, model.shift_,
        sorted(set(BUDGETS) | set(runtime_advice.ALLOC_BUDGETS)))
    raw = model._raw(model.inputs(frame, rows))
    q = np.expm1(np.sort(raw + shifts, axis=1)).clip(min=0)
    top = raw[:, int(np.argmax(model.alphas))]
    budget_t: dict[float, np.ndarray] = {}
    for b, v in bshift.items():
        static = conformal.shift_for(getattr(model, "budget_", None), b)
        if static is not None or np.isfinite(v).all():
            budget_t[b] = np.expm1(top + np.where(np.isfinite(v), v, static or 0.0)).clip(min=0)
    lam = np.full(len(rows), float(getattr(model, "alloc_lambda_", runtime_advice.ALLOC_LAMBDA)))
    target, scale = getattr(model, "alloc_target_", None), getattr(model, "alloc_scale_", None)
    if target is not None and scale is not None:
        i = int(np.argmax(model.alphas))
        lam = runtime_rolling.online_lambdas(
            np.log1p(y[pool]) - resid[:, i], df["timelimit_s"].to_numpy(dtype="float64")[pool],
            df["req_cpus"].to_numpy(dtype="float64")[pool], ends, sub, bshift, lam[0] if len(lam)
            else runtime_advice.ALLOC_LAMBDA, scale, target)
    used = {"window": runtime_rolling.WINDOW, "cadence_s": runtime_rolling.CADENCE,
            "pool_jobs": len(pool), "since": (card.get("window") or {}).get("calibration_from"),
            "lambda": lam}
    return q, budget_t, used


def baselines(y: np.ndarray, tl: np.ndarray, last2: np.ndarray,
              global_median: float | np.ndarray) -> dict[str, dict[str, Any]]:
    """The card's baselines: the requested time, the user's last two runs' mean and the global
    median (the global median where a job has no request or no last runs)."""
    return {name: metrics.regression(y, pred, 3600) for name, pred in (
        ("requested_time", np.where(np.isfinite(tl), tl, global_median)),
        ("user_last_two_mean", np.where(np.isfinite(last2), last2, global_median)),
        ("global_median", np.broadcast_to(np.asarray(global_median, dtype="float64"),
                                          np.shape(y))))}


def evaluate(model: QuantileModel, inputs: np.ndarray, X: pd.DataFrame, y: np.ndarray,
             df: pd.DataFrame, global_median: float,
             online_q: tuple[np.ndarray, dict[float, np.ndarray], dict[str, Any]] | None = None
             ) -> dict[str, Any]:
    raw = model._raw(inputs)  # one pass: the quantiles, the point and the --time start from it
    q = model.quantiles(raw)
    med = q[:, ALPHAS.index(0.5)]
    pt = model.point_from(raw, inputs)
    tl = df["timelimit_s"].to_numpy(dtype="float64")
    out: dict[str, Any] = {"n": len(y), "model": metrics.regression(y, pt, 3600)
                           | {"coverage": metrics.quantile_coverage(y, q, ALPHAS)}}
    out["model_median_q0.5"] = metrics.regression(y, med, 3600)
    out["model"]["interval_80_coverage"] = float(np.mean((y >= q[:, 0]) & (y <= q[:, 2])))
    out.update(baselines(y, tl, X["user_last2_rt"].to_numpy(), global_median))
    cpus = df["req_cpus"].to_numpy(dtype="float64")
    out["walltime_q0.95"] = walltime_effect(y, recommend(q, tl), tl, cpus)
    bt: dict[float, np.ndarray] = {}
    for b in BUDGETS:  # the conformal --time for a retry budget (calibrated on the later slice)
        t = model._budget(raw, b)
        if t is not None:
            bt[b] = t
            out[f"walltime_retry_budget_{b:g}"] = walltime_effect(y, budget_time(t, tl), tl, cpus)
    # what predict and batch serve (RuntimeModel.recommendation: from the raw top quantile)
    out["walltime_recommendation"] = recommendation_effect(y, model.recommendation(raw, tl, cpus),
                                                           tl, cpus)
    if online_q is not None:
        # the point runtime is not shifted, so it is the same as above
        used = dict(online_q[2])
        lam = used.pop("lambda", getattr(model, "alloc_lambda_", runtime_advice.ALLOC_LAMBDA))
        la = np.atleast_1d(np.asarray(lam, float))
        used["allocation_lambda"] = ({"min": float(la.min()), "median": float(np.median(la)),
                                      "max": float(la.max())} if la.size else None)
        out["online_recalibrated"] = _scored(y, online_q[0], tl, cpus, online_q[1], pt,
                                             getattr(model, "alloc_scale_", None), lam) | used
    out["unit"] = "hours"
    return out


def _online_lines(o: dict[str, Any] | None) -> list[str]:
    if not o:
        return []
    return ["", (f"Recalibrated daily on the last {o.get('window')} completed jobs "
                 f"(`online_recalibrated`): coverage {o.get('coverage')}"),
            f"  walltime recommendation: {o.get('walltime_recommendation')}"] + [
        f"  at retry budget {k.rsplit('_', 1)[1]}: {v}" for k, v in o.items()
        if k.startswith("walltime_retry_budget_")]


class RuntimeModel(runtime_point.PointStack, QuantileModel):
    name = "runtime"
    ALPHAS = ALPHAS
    labels = staticmethod(labels)
    EXTRA = runtime_features.RT_FEATURES
    ROUNDS = ROUNDS

    # RT_FEATURES (the booster's), then the point's repeat (runtime_point.REPEAT)
    def extra_bulk(self, history, queries):
        return np.hstack([runtime_features.recent_block(history, queries),
                          runtime_point.repeat_bulk(history, queries)])

    # (the spec paths look the repeat up only where it can change the point: a model with a
    # stack that is served; else a NaN column, the same point, one SQL query fewer)
    def extra_spec(self, store, spec, now, scope):
        rep = (runtime_point.repeat_spec(store, spec, now, scope) if self.uses_repeat()
               else np.full((1, 1), np.nan))
        return np.hstack([runtime_features.recent_spec(store, spec, now, scope), rep])

    def extra_specs(self, store, queries, scope):
        from jobmedic.models import summary_recent  # specs at "now": the summary's recent runs

        fast = summary_recent.recent_block(store, queries, scope)
        block = runtime_features.recent_specs(store, queries, scope) if fast is None else fast
        rep = (runtime_point.repeat_specs(store, queries, scope) if self.uses_repeat()
               else np.full((len(block), 1), np.nan))
        return np.hstack([block, rep])

    def evaluate(self, frame, rows, y, card, reference=None) -> dict[str, Any]:
        df, X = frame
        return evaluate(self, self.inputs(frame, rows), X.iloc[rows], y, df.iloc[rows],
                        card.get("global_median_s", float(np.median(y))),
                        online(self, frame, rows, card))

    def card_extra(self, frame, fit_rows, y_fit) -> dict[str, Any]:
        return {"global_median_s": float(np.median(y_fit))}

    POINT_FIELD = "expected"  # runtime_s.expected: the point runtime (s); "median" stays q0.5
    POINT_COLUMN = "runtime_expected_s"

    def calibrate_raw(self, raw: np.ndarray, X: np.ndarray, y: np.ndarray) -> RuntimeModel:
        super().calibrate_raw(raw, X, y)
        self.alloc_scale_ = runtime_advice.request_scale(X)  # the allocation's unit of cost
        self.alloc_target_ = runtime_advice.ALLOC_TARGET
        self.reset_allocation(X, y, raw)
        return self

    def reset_allocation(self, X: np.ndarray, y: np.ndarray,
                         raw: np.ndarray | None = None) -> dict[str, Any]:
        """Set the --time allocation's price so that the mean budget the jobs of `X` take
        under this model's budget table is its target, and measure the share of those jobs
        killed per budget taken (runtime_advice.kill_shares; runtimes `y`), at calibrate and
        at `train runtime --recalibrate` on the sliding window; a model without a target (an
        older artifact) keeps its fixed price and what it served. `raw`: the booster's output
        on `X` when the caller has it. Returns what was set."""
        target, scale = getattr(self, "alloc_target_", None), getattr(self, "alloc_scale_", None)
        times = None
        tl, cpus = X[:, FEATURES.index("timelimit_s")], X[:, FEATURES.index("req_cpus")]
        if target is not None and scale is not None and len(X):
            raw = self._raw(X) if raw is None else raw
            times = runtime_advice.table_times(raw[:, int(np.argmax(self.alphas))],
                                               getattr(self, "budget_", None))
        lam = None if times is None else runtime_advice.lambda_for_target(
            times, tl, cpus, scale, target)
        self.alloc_lambda_ = lam if lam is not None else getattr(
            self, "alloc_lambda_", runtime_advice.ALLOC_LAMBDA)
        if lam is not None and runtime_advice.ALLOCATE:
            rec, taken = runtime_advice.allocate(times, tl, cpus, scale, lam)
            self.alloc_kills_ = runtime_advice.kill_shares(y, rec, taken)
        return {"allocation_lambda": self.alloc_lambda_, "allocation_target": target,
                "allocation_kills": getattr(self, "alloc_kills_", None)}

    def meta(self) -> dict[str, Any]:
        return super().meta() | {"walltime_allocation": {
            "scale_core_s": getattr(self, "alloc_scale_", None),
            "lambda": getattr(self, "alloc_lambda_", runtime_advice.ALLOC_LAMBDA),
            "target": getattr(self, "alloc_target_", None),
            "budgets": list(runtime_advice.ALLOC_BUDGETS),
            "kills": getattr(self, "alloc_kills_", None)}}

    @classmethod
    def load(cls, d, meta: dict[str, Any]) -> RuntimeModel:
        m = super().load(d, meta)
        m.alloc_scale_ = runtime_advice.loaded_scale(meta.get("walltime_allocation"))
        m.alloc_lambda_, m.alloc_target_ = runtime_advice.loaded_lambda(
            meta.get("walltime_allocation"))
        m.alloc_kills_ = runtime_advice.loaded_kills(meta.get("walltime_allocation"))
        return m

    def recommendation(self, raw: np.ndarray, timelimit: np.ndarray, cpus=None
                       ) -> tuple[np.ndarray, np.ndarray, str]:
        """(recommended --time, the retry budget each job took, the rule) from the booster's
        raw output `raw` (`Served.raw`) and the jobs' limits and CPU counts (None: one CPU
        each): the RAW top quantile, the one the budget table was fitted on, plus each budget's
        shift (models/runtime_advice.py); the q0.95 without a budget table."""
        tl = np.asarray(timelimit, float)
        top = np.asarray(raw, float)[:, int(np.argmax(self.alphas))]
        rec = runtime_advice.from_table(top, getattr(self, "budget_", None), tl, cpus,
                                        getattr(self, "alloc_scale_", None),
                                        getattr(self, "alloc_lambda_", runtime_advice.ALLOC_LAMBDA))
        if rec is None:
            return (recommend(self.quantiles(raw), tl),
                    np.full(len(top), round(1 - RECOMMEND_ALPHA, 3)), "q0.95")
        return rec

    def tier_times(self, raw: np.ndarray, timelimit: np.ndarray, cpus=None) -> np.ndarray:
        """The recommended --time (see `recommendation`)."""
        return self.recommendation(raw, timelimit, cpus)[0]

    @staticmethod
    def card_lines(m: dict[str, Any]) -> list[str]:
        rows = {k: v for k, v in m.items() if isinstance(v, dict) and "mae" in v}
        return table(rows, ["mae", "median_ae"]) + [
            "", f"(hours; n = {m.get('n')})", "",
            f"Coverage per quantile: {m['model'].get('coverage')}",
            f"Walltime recommendation: {m.get('walltime_recommendation')}"] + [
            f"Walltime at retry budget {k.rsplit('_', 1)[1]}: {v}" for k, v in m.items()
            if k.startswith("walltime_retry_budget_")] + _online_lines(m.get("online_recalibrated"))

    def advice_columns(self, q, timelimit, raw, cpus=None):
        out = {f"runtime_q{a:g}": np.round(q[:, i], 1) for i, a in enumerate(ALPHAS)}
        out["recommended_time_s"] = self.tier_times(raw, timelimit, cpus)
        return out

    def advice_frame(self, q, queries, raw):
        return self.advice_columns(q, queries["timelimit_s"].to_numpy(dtype="float64"), raw,
                                   queries["req_cpus"].to_numpy(dtype="float64"))

    def budget_columns(self, request, timelimit):
        return {"budget_time_s": budget_time(request, timelimit)}

    def advice(self, q, spec, raw):
        """The runtime block: `recommended` the --time, `retry_budget_taken` the budget the
        allocation gave the job; the chance of too low a --time is the kill share measured for
        that budget at calibration (runtime_advice.chance_too_low; the budget itself for
        artifacts without it and for the tiers)."""
        qd = {f"q{a:g}": round(float(v), 1) for a, v in zip(ALPHAS, q[0])}
        tl = spec.get("timelimit_s")
        tla = np.array([float(tl) if tl else np.nan])
        cpus = spec.get("req_cpus")
        t, b, rule = self.recommendation(raw, tla, np.array([float(cpus) if cpus else np.nan]))
        rec, taken = float(t[0]), float(b[0])
        low = (float(runtime_advice.chance_too_low(b, getattr(self, "alloc_kills_", None))[0])
               if rule == "allocated" else taken)
        block = {"median": qd["q0.5"], "interval_80": [qd["q0.1"], qd["q0.9"]], "quantiles": qd,
                 "recommended": rec, "retry_budget_taken": taken}
        return "runtime_s", block, f"--time={fmt_duration(rec, request=True)}", ("time", low)
