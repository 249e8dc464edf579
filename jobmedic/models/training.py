"""Train and evaluate the models on a store, split by time.

`train` uses the jobs submitted AND ended before `until` (default: all but the most recent
`holdout_fraction` of submissions); its last `cal_fraction` (by submit time) is the later slice
the calibration or conformal shift is fitted on. `--tune` searches parameters with Optuna on a
validation slice cut from the fit part, never touching the calibration slice or the test window.
`evaluate` scores the current artifact on jobs submitted in [start, end).
"""
from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from jobmedic.knowledge.errors import ModelError
from jobmedic.models import artifacts, failure, memory, registry, runtime
from jobmedic.models.features import FEATURES, build_features

if TYPE_CHECKING:
    from jobmedic.knowledge.store import Store


def _iso(t: float | None) -> str | None:
    return None if t is None or not np.isfinite(t) else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def load(store: Store, scope: Sequence[str] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    df = store.jobs_frame(scope)
    if df.empty:
        raise ModelError("the store holds no jobs to learn from",
                         "ingest accounting data first, e.g. `jobmedic ingest slurm sacct.txt`")
    return df, build_features(df)


def default_until(df: pd.DataFrame, holdout_fraction: float) -> int:
    return int(np.quantile(df["submit_time"].dropna().to_numpy(), 1 - holdout_fraction))


def _labels(kind: str, df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    mod = {"failure": failure, "runtime": runtime, "memory": memory}[kind]
    mask, y = mod.labels(df)
    return mask, y


def _tune(kind: str, Xf: np.ndarray, yf: np.ndarray, trials: int, budget: float,
          max_rounds: int = 600) -> dict[str, Any]:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    cut = int(len(Xf) * 0.8)
    args = (Xf[:cut], yf[:cut], Xf[cut:], yf[cut:])
    if kind == "failure":
        obj, direction = failure.tune_objective(*args, max_rounds), "maximize"
    else:
        from jobmedic.models.quantile import tune_objective

        alphas = runtime.ALPHAS if kind == "runtime" else memory.ALPHAS
        obj, direction = tune_objective(*args, alphas, max_rounds), "minimize"
    study = optuna.create_study(direction=direction, sampler=optuna.samplers.TPESampler(seed=0))
    study.optimize(obj, n_trials=trials, timeout=budget)
    return {"trials": len(study.trials), "best_value": float(study.best_value),
            "params": study.best_params, "validation": "last 20% (by submit time) of the fit slice"}


def train(store: Store, kind: str, models_dir: str, until: int | None = None,
          scope: Sequence[str] | None = None, *, tune: bool = False, trials: int = 20,
          time_budget: float = 300, holdout_fraction: float = 0.2, cal_fraction: float = 0.2,
          params: dict[str, Any] | None = None,
          frame: tuple[pd.DataFrame, pd.DataFrame] | None = None) -> dict[str, Any]:
    """Fit one model kind, write its artifact, refresh the history summary; returns the card."""
    if kind == "gnn":
        from jobmedic.models import gnn

        return gnn.train(store, models_dir, until, scope, frame=frame, cal_fraction=cal_fraction,
                         holdout_fraction=holdout_fraction, params=params)
    t0 = time.perf_counter()
    df, X = frame if frame is not None else load(store, scope)
    until = default_until(df, holdout_fraction) if until is None else int(until)
    mask, y = _labels(kind, df)
    sel = mask & (df["submit_time"].to_numpy() < until) & (df["end_time"].to_numpy() < until)
    idx = df.index[sel]
    order = df.loc[idx, "submit_time"].sort_values(kind="stable").index
    cut = int(len(order) * (1 - cal_fraction))
    fit_i, cal_i = order[:cut], order[cut:]
    if len(fit_i) < 50 or len(cal_i) < 10:
        raise ModelError(f"too few labelled jobs before {_iso(until)} to train the {kind} model "
                         f"({len(order)}; need about 100)", "ingest more history or pass a later --until")
    yv = pd.Series(y, index=df.index)
    Xf, yf = X.loc[fit_i, FEATURES].to_numpy(), yv.loc[fit_i].to_numpy()
    Xc, yc = X.loc[cal_i, FEATURES].to_numpy(), yv.loc[cal_i].to_numpy()
    tuned = (_tune(kind, Xf, yf, trials, time_budget, int((params or {}).get("num_boost_round", 600)))
             if tune else None)
    p = (tuned or {}).get("params") or params or {}
    model = failure.FailureModel(p) if kind == "failure" else registry.new_quantile(kind, p)
    model.fit(Xf, yf, Xc, yc)
    card: dict[str, Any] = {
        "window": {"train_from": _iso(df["submit_time"].min()), "until": _iso(until),
                   "calibration_from": _iso(df.loc[cal_i[0], "submit_time"]),
                   "until_epoch": until},
        "counts": {"fit": len(fit_i), "calibration": len(cal_i)},
        "train_seconds": round(time.perf_counter() - t0, 2), "tuning": tuned}
    if kind == "failure":
        card["counts"]["fit_positives"] = int(yf.sum())
        card["prior"] = float(yf.mean())
        card["validation"] = failure.evaluate(model, X.loc[cal_i], yc, card["prior"])
    elif kind == "runtime":
        card["global_median_s"] = float(np.median(yf))
        card["validation"] = runtime.evaluate(model, X.loc[cal_i], yc, df.loc[cal_i], card["global_median_s"])
    else:
        card["validation"] = memory.evaluate(model, X.loc[cal_i], yc, df.loc[cal_i])
    path = artifacts.save(models_dir, kind, model.writers(), model.meta() | {"card": card})
    card["version"], card["path"] = path.name, str(path)
    last_end = df["end_time"].max()
    if np.isfinite(last_end):
        store.refresh_entity_stats(int(last_end) + 1)
    return card


def evaluate(store: Store, kind: str, models_dir: str, start: int, end: int | None = None,
             scope: Sequence[str] | None = None,
             frame: tuple[pd.DataFrame, pd.DataFrame] | None = None) -> dict[str, Any]:
    """Score the current artifact on jobs submitted in [start, end) that have an outcome."""
    if kind == "gnn":
        from jobmedic.models import gnn

        return gnn.evaluate(store, models_dir, start, end, scope, frame=frame)
    model, meta = registry.load(models_dir, kind)
    df, X = frame if frame is not None else load(store, scope)
    mask, y = _labels(kind, df)
    sub = df["submit_time"].to_numpy()
    sel = mask & (sub >= start) & ((sub < end) if end is not None else True)
    if not sel.any():
        raise ModelError(f"no {kind}-labelled jobs submitted between {_iso(start)} and {_iso(end)}",
                         "check --from/--to against `jobmedic db info`")
    idx = df.index[sel]
    card = meta.get("card", {})
    res: dict[str, Any] = {"kind": kind, "version": meta["version"],
                           "test_window": {"from": _iso(start), "to": _iso(end) if end else None},
                           "train_window": card.get("window")}
    if card.get("window", {}).get("until_epoch", -np.inf) > start:
        res["warning"] = "the test window overlaps the training window: these figures are optimistic"
    Xt, yt = X.loc[idx], y[sel]
    if kind == "failure":
        res["metrics"] = failure.evaluate(model, Xt, yt.astype(int), card.get("prior", float(yt.mean())))
    elif kind == "runtime":
        res["metrics"] = runtime.evaluate(model, Xt, yt, df.loc[idx], card.get("global_median_s", float(np.median(yt))))
    else:
        res["metrics"] = memory.evaluate(model, Xt, yt, df.loc[idx])
    return res
