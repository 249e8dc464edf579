"""Runtime at submit time: quantiles of the runtime of jobs that complete, the interval they
imply, and the walltime recommendation (the upper quantile as `--time`), compared with the
requested time, the mean of the user's last two runtimes and the global median."""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from jobmedic.core.units import fmt_duration
from jobmedic.models import conformal, metrics, runtime_features, runtime_rolling
from jobmedic.models.base import table
from jobmedic.models.quantile import QuantileModel

ALPHAS = [0.1, 0.5, 0.9, 0.95]
RECOMMEND_ALPHA = 0.95
BUDGETS = [0.02, 0.05]  # retry budgets evaluated on the card


def budget_time(t: np.ndarray, timelimit: np.ndarray | None = None) -> np.ndarray:
    """A budget's --time: whole minutes plus one, never above the user's own limit."""
    rec = np.ceil(np.asarray(t, float) / 60) * 60 + 60
    if timelimit is not None:
        rec = np.where(np.isfinite(timelimit) & (timelimit > 0), np.minimum(rec, timelimit), rec)
    return rec


def labels(df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(mask of completed jobs with a runtime, runtime in seconds)."""
    y = df["elapsed_s"].to_numpy(dtype="float64")
    return ((df["state"] == "completed").to_numpy() & np.isfinite(y) & (y >= 0)
            & df["end_time"].notna().to_numpy()), y


def recommend(q: np.ndarray, timelimit: np.ndarray | None = None) -> np.ndarray:
    """The walltime to request: the upper quantile, never above the user's own limit."""
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


def _scored(y: np.ndarray, q: np.ndarray, tl: np.ndarray, cpus: np.ndarray,
            budget_t: dict[float, np.ndarray]) -> dict[str, Any]:
    """Median error, coverage and the walltime effects of quantiles `q` (and budget times)."""
    out: dict[str, Any] = metrics.regression(y, q[:, ALPHAS.index(0.5)], 3600) | {
        "coverage": metrics.quantile_coverage(y, q, ALPHAS),
        "walltime_recommendation": walltime_effect(y, recommend(q, tl), tl, cpus)}
    for b, t in budget_t.items():
        out[f"walltime_retry_budget_{b:g}"] = walltime_effect(y, budget_time(t, tl), tl, cpus)
    return out


def online(model: QuantileModel, frame, rows: np.ndarray, card: dict[str, Any]
           ) -> tuple[np.ndarray, dict[float, np.ndarray], dict[str, Any]]:
    """Quantiles and budget times of `rows` with the conformal shifts refitted daily on a
    sliding window (models/runtime_rolling.py), and what that used."""
    df = frame[0]
    mask, y = labels(df)
    since = runtime_rolling.epoch((card.get("window") or {}).get("calibration_from"))
    sub = df["submit_time"].to_numpy(dtype="float64")[rows]
    pool = runtime_rolling.pool(df, mask, since, float(np.nanmax(sub)) if len(sub) else 0.0)
    resid = runtime_rolling.residuals(model, model.inputs(frame, pool), y[pool])
    ends = df["end_time"].to_numpy(dtype="float64")[pool]
    shifts, bshift = runtime_rolling.online_shifts(resid, ends, sub, model.alphas, model.shift_,
                                                   BUDGETS)
    raw = model._raw(model.inputs(frame, rows))
    q = np.expm1(np.sort(raw + shifts, axis=1)).clip(min=0)
    top = raw[:, int(np.argmax(model.alphas))]
    budget_t: dict[float, np.ndarray] = {}
    for b, v in bshift.items():
        static = conformal.shift_for(getattr(model, "budget_", None), b)
        if static is not None or np.isfinite(v).all():
            budget_t[b] = np.expm1(top + np.where(np.isfinite(v), v, static or 0.0)).clip(min=0)
    used = {"window": runtime_rolling.WINDOW, "cadence_s": runtime_rolling.CADENCE,
            "pool_jobs": len(pool), "since": (card.get("window") or {}).get("calibration_from")}
    return q, budget_t, used


def evaluate(model: QuantileModel, inputs: np.ndarray, X: pd.DataFrame, y: np.ndarray,
             df: pd.DataFrame, global_median: float,
             online_q: tuple[np.ndarray, dict[float, np.ndarray], dict[str, Any]] | None = None
             ) -> dict[str, Any]:
    q = model.predict(inputs)
    med = q[:, ALPHAS.index(0.5)]
    tl = df["timelimit_s"].to_numpy(dtype="float64")
    out: dict[str, Any] = {"n": len(y), "model": metrics.regression(y, med, 3600)
                           | {"coverage": metrics.quantile_coverage(y, q, ALPHAS)}}
    out["model"]["interval_80_coverage"] = float(np.mean((y >= q[:, 0]) & (y <= q[:, 2])))
    last2 = X["user_last2_rt"].to_numpy()
    base = {"requested_time": np.where(np.isfinite(tl), tl, global_median),
            "user_last_two_mean": np.where(np.isfinite(last2), last2, global_median),
            "global_median": np.full(len(y), global_median)}
    for name, pred in base.items():
        out[name] = metrics.regression(y, pred, 3600)
    rec = recommend(q, tl)
    cpus = df["req_cpus"].to_numpy(dtype="float64")
    out["walltime_recommendation"] = walltime_effect(y, rec, tl, cpus)
    for b in BUDGETS:  # the conformal --time for a retry budget (calibrated on the later slice)
        t = model.for_budget(inputs, b)
        if t is not None:
            out[f"walltime_retry_budget_{b:g}"] = walltime_effect(y, budget_time(t, tl), tl, cpus)
    if online_q is not None:
        out["online_recalibrated"] = _scored(y, online_q[0], tl, cpus, online_q[1]) | online_q[2]
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


class RuntimeModel(QuantileModel):
    name = "runtime"
    ALPHAS = ALPHAS
    labels = staticmethod(labels)
    EXTRA = runtime_features.RT_FEATURES

    def extra_bulk(self, history, queries):
        return runtime_features.recent_block(history, queries)

    def extra_spec(self, store, spec, now, scope):
        return runtime_features.recent_spec(store, spec, now, scope)

    def extra_specs(self, store, queries, scope):
        from jobmedic.models import summary_recent  # specs at "now": the summary's recent runs

        fast = summary_recent.recent_block(store, queries, scope)
        return runtime_features.recent_specs(store, queries, scope) if fast is None else fast

    def evaluate(self, frame, rows, y, card, reference=None) -> dict[str, Any]:
        df, X = frame
        return evaluate(self, self.inputs(frame, rows), X.iloc[rows], y, df.iloc[rows],
                        card.get("global_median_s", float(np.median(y))),
                        online(self, frame, rows, card))

    def card_extra(self, frame, fit_rows, y_fit) -> dict[str, Any]:
        return {"global_median_s": float(np.median(y_fit))}

    @staticmethod
    def card_lines(m: dict[str, Any]) -> list[str]:
        rows = {k: v for k, v in m.items() if isinstance(v, dict) and "mae" in v}
        return table(rows, ["mae", "median_ae"]) + [
            "", f"(hours; n = {m.get('n')})", "",
            f"Coverage per quantile: {m['model'].get('coverage')}",
            f"Walltime recommendation: {m.get('walltime_recommendation')}"] + [
            f"Walltime at retry budget {k.rsplit('_', 1)[1]}: {v}" for k, v in m.items()
            if k.startswith("walltime_retry_budget_")] + _online_lines(m.get("online_recalibrated"))

    def advice_columns(self, q, timelimit):
        out = {f"runtime_q{a:g}": np.round(q[:, i], 1) for i, a in enumerate(ALPHAS)}
        out["recommended_time_s"] = recommend(q, timelimit)
        return out

    def budget_columns(self, request, timelimit):
        return {"budget_time_s": budget_time(request, timelimit)}

    def advice(self, q, spec):
        qd = {f"q{a:g}": round(float(v), 1) for a, v in zip(ALPHAS, q[0])}
        tl = spec.get("timelimit_s")
        rec = float(recommend(q, np.array([float(tl) if tl else np.nan]))[0])
        block = {"median": qd["q0.5"], "interval_80": [qd["q0.1"], qd["q0.9"]], "quantiles": qd,
                 "recommended": rec}
        return "runtime_s", block, f"--time={fmt_duration(rec, request=True)}", ("time", round(1 - RECOMMEND_ALPHA, 3))
