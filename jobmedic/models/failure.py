"""Failure risk at submit time: an XGBoost classifier on the submit-time features, calibrated
(isotonic or Platt) on a slice LATER than its training data, with SHAP attributions
(XGBoost's pred_contribs) for the factors a prediction states in words."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xgboost as xgb

from jobmedic.models import boosting, forest, metrics
from jobmedic.models.base import ModelKind, table
from jobmedic.models.features import FEATURES, is_ended, is_failed

OBJECTIVE = {"objective": "binary:logistic", "eval_metric": "aucpr"}


def labels(df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(mask of jobs with a known outcome, failed 0/1)."""
    return is_ended(df), is_failed(df).astype(int)


class FailureModel(ModelKind):
    """Calibrated failure probability; scikit-learn style (fit / predict_proba)."""

    name = "failure"
    role = "risk"
    ensemble_with = "gnn"
    tune_direction = "maximize"
    min_positives = 10

    labels = staticmethod(labels)

    def fit(self, X: np.ndarray, y: np.ndarray) -> FailureModel:
        pos = max(int(y.sum()), 1)
        spw = min((len(y) - pos) / pos, 50.0) ** 0.5  # mild re-weighting; calibration undoes it
        self.booster_ = boosting.train(X, y, OBJECTIVE | {"scale_pos_weight": spw}, self.params)
        return self

    def calibrate(self, X: np.ndarray, y: np.ndarray) -> FailureModel:
        self.calibration_ = boosting.fit_calibration(self.predict_raw(X), y)
        return self

    def predict_raw(self, X: np.ndarray) -> np.ndarray:
        f = forest.small(self, X)  # one job: the numpy walk
        if f is not None:
            return f.predict(X)
        return self.booster_.inplace_predict(np.asarray(X, dtype="float32"))

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Calibrated probability of failure per row."""
        return boosting.apply_calibration(self.calibration_, self.predict_raw(X))

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        p = self.predict(X)
        return np.column_stack([1 - p, p])

    def contributions(self, X: np.ndarray, exact: bool = False) -> np.ndarray:
        """Per-feature contributions (log-odds) plus the bias in the last column: XGBoost's own
        path attributions (`approx_contribs`, ~8x faster for one job) or exact TreeSHAP."""
        f = None if exact else forest.small(self, X)
        if f is not None:
            return f.contributions(X)
        return self.booster_.predict(xgb.DMatrix(np.asarray(X, dtype="float32"), missing=np.nan),
                                     pred_contribs=True, approx_contribs=not exact)

    def tune_objective(self, X_fit, y_fit, X_val, y_val, max_rounds: int = 600):
        return tune_objective(X_fit, y_fit, X_val, y_val, max_rounds)

    # -- artifact ----------------------------------------------------------------------------
    def files(self) -> dict[str, Any]:
        return {"model.ubj": boosting.save_booster(self.booster_)} | forest.files(self.booster_)

    def meta(self) -> dict[str, Any]:
        return {"features": FEATURES, "params": self.params, "calibration": self.calibration_}

    @classmethod
    def load(cls, d: Path, meta: dict[str, Any]) -> FailureModel:
        m = cls(meta.get("params"))
        m.booster_ = boosting.load_booster(d / "model.ubj", len(meta["features"]), cls.name,
                                           version=d.name)
        m.calibration_ = boosting.checked_calibration(meta.get("calibration"), cls.name, d.name)
        forest.attach(m, d, meta)
        return m

    def for_serving(self) -> FailureModel:
        self.booster_.set_param({"nthread": 1})  # a single prediction is faster without a pool
        self.serving_ = True  # one-job predictions walk models/forest.py's arrays (built on use)
        return self

    # -- evaluation and card -----------------------------------------------------------------
    def evaluate(self, frame, rows, y, card, reference=None) -> dict[str, Any]:
        return evaluate(self, frame[1].iloc[rows], np.asarray(y).astype(int),
                        card.get("prior", float(np.mean(y))))

    def card_extra(self, frame, fit_rows, y_fit) -> dict[str, Any]:
        return {"counts": {"fit_positives": int(y_fit.sum())}, "prior": float(y_fit.mean())}

    @staticmethod
    def card_lines(m: dict[str, Any]) -> list[str]:
        lines = classification_table(m)
        if m.get("auprc_over_best_baseline") is not None:
            lines += ["", f"AUPRC / best online-history baseline: {m['auprc_over_best_baseline']:.3f}"]
        return lines


def classification_table(m: dict[str, Any]) -> list[str]:
    rows = {k: v for k, v in m.items() if isinstance(v, dict) and "auprc" in v}  # metric rows
    return table(rows, ["n", "positives", "base_rate", "auroc", "auprc", "brier", "ece",
                        "recall_at_1pct_fpr"])


def baselines(X: pd.DataFrame, prior: float) -> dict[str, np.ndarray]:
    """The scores a sceptical admin would try first: prior rate and online failure rates."""
    return {"prior_rate": np.full(len(X), prior),
            "user_failure_rate": X["user_fail_rate"].fillna(prior).to_numpy(),
            "name_failure_rate": X["name_fail_rate"].fillna(prior).to_numpy()}


def evaluate(model: FailureModel, X: pd.DataFrame, y: np.ndarray, prior: float) -> dict[str, Any]:
    """Metrics of the model and of the baselines on the same rows."""
    p = model.predict_proba(X[FEATURES].to_numpy())[:, 1]
    out = {"model": metrics.classification(y, p)}
    for name, s in baselines(X, prior).items():
        out[name] = metrics.classification(y, s, calibrated=name != "prior_rate")
    best = max((out[k].get("auprc") or 0.0) for k in ("user_failure_rate", "name_failure_rate"))
    out["auprc_over_best_baseline"] = (out["model"].get("auprc") or 0.0) / best if best else None
    return out


def tune_objective(X_fit, y_fit, X_val, y_val, max_rounds: int = 600):
    """An Optuna objective: AUPRC on a validation slice (never the test window)."""
    from sklearn.metrics import average_precision_score

    def objective(trial) -> float:
        params = boosting.suggest_params(trial, max_rounds)
        params["lambda"] = trial.suggest_float("lambda", 0.1, 20, log=True)
        m = FailureModel(params)
        m.booster_ = boosting.train(X_fit, y_fit, OBJECTIVE, params)
        return float(average_precision_score(y_val, m.predict_raw(X_val)))
    return objective
