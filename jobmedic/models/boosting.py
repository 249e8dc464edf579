"""XGBoost helpers shared by the models: training with plain parameters, safe UBJ load and
save, and probability calibration stored as JSON numbers (isotonic steps or Platt a, b)."""
from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import numpy as np
import xgboost as xgb
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

from jobmedic.knowledge.errors import ModelError

TREE_PARAMS = {"max_depth": 6, "eta": 0.05, "min_child_weight": 5.0, "subsample": 0.9,
               "colsample_bytree": 0.8, "lambda": 2.0, "num_boost_round": 300}


#: Another way to train with the same parameters, set for the duration of a run (e.g.
#: engines/dask_engine.py: `xgboost.dask` on a cluster): called as (params, X, y, rounds).
TRAINER: ContextVar[Callable[..., xgb.Booster] | None] = ContextVar("boosting_trainer", default=None)


def train(X: np.ndarray, y: np.ndarray, objective: dict[str, Any], params: dict[str, Any],
          nthread: int = 2) -> xgb.Booster:
    p = dict(TREE_PARAMS) | {"nthread": nthread} | dict(params)
    rounds = int(p.pop("num_boost_round"))
    p |= objective | {"tree_method": "hist", "verbosity": 0, "seed": 0}
    trainer = TRAINER.get()
    if trainer is not None:
        return trainer(p, X, y, rounds)
    return xgb.train(p, xgb.DMatrix(X, label=y, missing=np.nan), num_boost_round=rounds)


def save_booster(booster: xgb.Booster) -> Any:
    return lambda path: booster.save_model(str(path))


def load_booster(path: Path, n_features: int, kind: str, outputs: int = 1,
                 version: str = "") -> xgb.Booster:
    """The booster in `path`, refused (ModelError naming the kind, not the path) unless it reads
    as XGBoost and has the feature count and outputs the metadata says."""
    b = xgb.Booster()
    try:
        b.load_model(str(path))
    except xgb.core.XGBoostError as exc:
        raise ModelError(f"cannot read the {kind} model {version!r}: {str(exc).splitlines()[0][:200]}",
                         f"retrain with `jobmedic train {kind}`") from None
    if b.num_features() != n_features:
        raise ModelError(f"the {kind} model {version!r} expects {b.num_features()} features, the "
                         f"metadata lists {n_features}", f"retrain with `jobmedic train {kind}`")
    try:
        got = b.inplace_predict(np.zeros((1, n_features), dtype="float32")).size
    except xgb.core.XGBoostError as exc:
        raise ModelError(f"cannot use the {kind} model {version!r}: {str(exc).splitlines()[0][:200]}",
                         f"retrain with `jobmedic train {kind}`") from None
    if got != outputs:
        raise ModelError(f"the {kind} model {version!r} gives {got} outputs per job, a {kind} model "
                         f"gives {outputs} (a model of another kind?)",
                         f"retrain with `jobmedic train {kind}`")
    return b


def checked_numbers(v: Any, n: int, what: str) -> list[float]:
    """`n` finite numbers from the metadata, or a ModelError naming `what`."""
    if (not isinstance(v, list) or len(v) != n
            or not all(isinstance(x, (int, float)) and not isinstance(x, bool) and np.isfinite(x)
                       for x in v)):
        raise ModelError(f"the {what} in the model metadata is malformed",
                         f"retrain with `jobmedic train {what.split()[0]}`")
    return [float(x) for x in v]


def checked_calibration(cal: Any, kind: str, version: str = "") -> dict[str, Any]:
    """The calibration from the metadata if it is one this module can apply, else ModelError."""
    m = cal.get("method") if isinstance(cal, dict) else None
    ok = m == "identity"
    if m == "isotonic":
        x, y = cal.get("x"), cal.get("y")
        n = len(x) if isinstance(x, list) else -1
        ok = n > 0 and isinstance(y, list) and len(y) == n
        if ok:
            xs = checked_numbers(x, n, f"{kind} calibration")
            ys = checked_numbers(y, n, f"{kind} calibration")
            ok = bool(np.all(np.diff(xs) >= 0)) and all(0 <= v <= 1 for v in ys)
    elif m == "platt":
        ok = all(isinstance(cal.get(k), (int, float)) and np.isfinite(cal.get(k)) for k in "ab")
    if not ok:
        raise ModelError(f"the calibration of the {kind} model {version!r} is malformed",
                         f"retrain with `jobmedic train {kind}`")
    return cal


def fit_calibration(raw: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    """Isotonic when the slice has enough positives, else Platt scaling on the logit."""
    y = np.asarray(y, int)
    if y.sum() >= 50 and (len(y) - y.sum()) >= 50:
        iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(raw, y)
        return {"method": "isotonic", "x": iso.X_thresholds_.tolist(), "y": iso.y_thresholds_.tolist()}
    if len(np.unique(y)) < 2:
        return {"method": "identity"}
    z = _logit(raw).reshape(-1, 1)
    lr = LogisticRegression(C=1e4).fit(z, y)
    return {"method": "platt", "a": float(lr.coef_[0, 0]), "b": float(lr.intercept_[0])}


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, float), 1e-7, 1 - 1e-7)
    return np.log(p / (1 - p))


def apply_calibration(cal: dict[str, Any], raw: np.ndarray) -> np.ndarray:
    m = cal.get("method")
    if m == "isotonic":  # never state certainty a finite slice cannot support
        return np.interp(raw, np.asarray(cal["x"]), np.asarray(cal["y"])).clip(1e-3, 1 - 1e-3)
    if m == "platt":
        return 1.0 / (1.0 + np.exp(-(cal["a"] * _logit(raw) + cal["b"])))
    if m == "identity":
        return np.asarray(raw, float)
    raise ModelError(f"unknown calibration method {m!r} in the model metadata",
                     "retrain with `jobmedic train failure`")


def suggest_params(trial: Any, max_rounds: int) -> dict[str, Any]:
    """The Optuna search space shared by the boosted models (tuned on a validation slice)."""
    return {"max_depth": trial.suggest_int("max_depth", 3, 10),
            "eta": trial.suggest_float("eta", 0.02, 0.3, log=True),
            "min_child_weight": trial.suggest_float("min_child_weight", 0.5, 20, log=True),
            "subsample": trial.suggest_float("subsample", 0.5, 1.0),
            "colsample_bytree": trial.suggest_float("colsample_bytree", 0.4, 1.0),
            "num_boost_round": trial.suggest_int("num_boost_round", min(50, max_rounds),
                                                 max_rounds, log=True)}
