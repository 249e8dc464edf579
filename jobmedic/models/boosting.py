"""XGBoost helpers shared by the models: training with plain parameters, safe UBJ load and
save, and probability calibration stored as JSON numbers (isotonic steps or Platt a, b)."""
from __future__ import annotations

import json
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


def _xgb_params(objective: dict[str, Any], params: dict[str, Any], nthread: int
                ) -> tuple[dict[str, Any], int]:
    """(XGBoost's parameters, rounds): TREE_PARAMS under `params`, with the objective."""
    p = dict(TREE_PARAMS) | {"nthread": nthread} | dict(params)
    rounds = int(p.pop("num_boost_round"))
    return p | objective | {"tree_method": "hist", "verbosity": 0, "seed": 0}, rounds


def train(X: np.ndarray, y: np.ndarray, objective: dict[str, Any], params: dict[str, Any],
          nthread: int = 2) -> xgb.Booster:
    p, rounds = _xgb_params(objective, params, nthread)
    trainer = TRAINER.get()
    if trainer is not None:
        return trainer(p, X, y, rounds)
    return xgb.train(p, xgb.DMatrix(X, label=y, missing=np.nan), num_boost_round=rounds)


#: Early stopping for the quantile models when no `num_boost_round` is given, per quantile:
#: up to `ES_MAX_ROUNDS` rounds fitted on the first rows and scored on the LAST `ES_FRACTION`
#: of the fit rows (they come in time order: the most recent part of the fit slice, never the
#: calibration slice); each quantile keeps the rounds of its lowest pinball loss there, and the
#: probe stops once every quantile went `ES_PATIENCE` rounds without a better one. The booster
#: is then refitted on all fit rows and each output cut to its own count (`keep_rounds`): with
#: one tree per quantile and round, a quantile's trees depend on its own gradients only, so
#: the cut booster is what that quantile alone with that many rounds gives. Fewer trees: each
#: costs ~20 ns per row in batch scoring.
ES_FRACTION = 0.2
ES_PATIENCE = 25
ES_MAX_ROUNDS = 300
ES_MIN_ROWS = 500


def _pinball_log(alphas: np.ndarray, y: np.ndarray, curve: list[np.ndarray]) -> Callable[..., Any]:
    """A custom metric appending each round's pinball loss per quantile to `curve`."""
    def metric(predt: np.ndarray, _dm: Any) -> tuple[str, float]:
        r = y[:, None] - np.asarray(predt, float).reshape(len(y), len(alphas))
        loss = np.mean(np.maximum(alphas * r, (alphas - 1) * r), axis=0)
        curve.append(loss)
        return "pinball", float(loss.mean())
    return metric


class _AllStalled(xgb.callback.TrainingCallback):
    """Stops the probe once no quantile improved for `ES_PATIENCE` rounds."""

    def __init__(self, curve: list[np.ndarray]) -> None:
        super().__init__()
        self.curve = curve

    def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
        c = np.asarray(self.curve)
        return bool(len(c) and (len(c) - 1 - np.argmin(c, axis=0) >= ES_PATIENCE).all())


def train_stopped(X: np.ndarray, y: np.ndarray, objective: dict[str, Any],
                  params: dict[str, Any], nthread: int = 2, rounds: list[int] | None = None
                  ) -> tuple[xgb.Booster, dict[str, Any]]:
    """(booster, how its rounds were chosen) for a `reg:quantileerror` objective: `train` with
    the rounds given in `params`; else `rounds` per quantile when given (one fit, then cut);
    else early stopping per quantile (above) with enough rows and no other TRAINER (engines/:
    one fixed count on the cluster)."""
    if rounds is not None and "num_boost_round" not in params:
        full = train(X, y, objective, dict(params, num_boost_round=max(rounds)), nthread)
        cut = full if min(rounds) == max(rounds) else keep_rounds(full, rounds)
        return cut, {"rounds": list(rounds), "early_stopping": None}
    if "num_boost_round" in params or TRAINER.get() is not None or len(y) < ES_MIN_ROWS:
        rounds = int(dict(TREE_PARAMS, **params)["num_boost_round"])
        return train(X, y, objective, params, nthread), {"rounds": rounds, "early_stopping": None}
    alphas = np.atleast_1d(np.asarray(objective["quantile_alpha"], float))
    cut = int(len(y) * (1 - ES_FRACTION))
    p = _xgb_params(objective, params, nthread)[0] | {"disable_default_eval_metric": 1}
    curve: list[np.ndarray] = []
    xgb.train(p, xgb.DMatrix(X[:cut], label=y[:cut], missing=np.nan),
              num_boost_round=ES_MAX_ROUNDS,
              evals=[(xgb.DMatrix(X[cut:], label=y[cut:], missing=np.nan), "stop")],
              custom_metric=_pinball_log(alphas, np.asarray(y[cut:], float), curve),
              callbacks=[_AllStalled(curve)], verbose_eval=False)
    c = np.asarray(curve)
    best = [int(i) + 1 for i in np.argmin(c, axis=0)]
    how = {"rounds": best, "early_stopping": {
        "max_rounds": ES_MAX_ROUNDS, "patience": ES_PATIENCE, "probe_rounds": len(c),
        "scored_rows": len(y) - cut,
        "pinball_at_best": [round(float(c[b - 1, k]), 5) for k, b in enumerate(best)]}}
    full = train(X, y, objective, dict(params, num_boost_round=max(best)), nthread)
    return keep_rounds(full, best), how


def keep_rounds(booster: xgb.Booster, rounds: list[int]) -> xgb.Booster:
    """`booster` (one tree per output and round) with output k's trees after round
    `rounds[k]` removed, through its JSON model (no pickle)."""
    m = json.loads(booster.save_raw("json"))
    g = m["learner"]["gradient_booster"]["model"]
    ptr, info = g["iteration_indptr"], g["tree_info"]
    keep, indptr = [], [0]
    for it in range(len(ptr) - 1):
        keep += [t for t in range(ptr[it], ptr[it + 1]) if it < rounds[info[t]]]
        indptr.append(len(keep))
    g["trees"] = [dict(g["trees"][t], id=i) for i, t in enumerate(keep)]
    g["tree_info"] = [info[t] for t in keep]
    g["iteration_indptr"] = indptr
    g["gbtree_model_param"]["num_trees"] = str(len(keep))
    out = xgb.Booster()
    out.load_model(bytearray(json.dumps(m).encode()))
    return out


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
