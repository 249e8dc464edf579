"""Quantile regression on a log scale (XGBoost `reg:quantileerror`, one model for all
quantiles), with a conformal shift per quantile fitted on a LATER slice so that the stated
coverage holds on data after the training window."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from jobmedic.models import boosting
from jobmedic.models.features import FEATURES


class QuantileModel:
    """Predicts the `alphas` quantiles of a positive target; scikit-learn style."""

    kind = "quantile"

    def __init__(self, alphas: list[float], params: dict[str, Any] | None = None) -> None:
        self.alphas = [float(a) for a in alphas]
        self.params = dict(params or {})

    def fit(self, X: np.ndarray, y: np.ndarray, X_cal: np.ndarray, y_cal: np.ndarray) -> QuantileModel:
        obj = {"objective": "reg:quantileerror", "quantile_alpha": np.array(self.alphas)}
        self.booster_ = boosting.train(X, np.log1p(y), obj, self.params)
        raw = self._raw(X_cal)
        resid = np.log1p(y_cal)[:, None] - raw
        # conformal shift: the alpha-quantile of the residuals on the later slice
        self.shift_ = [float(np.quantile(resid[:, i], a)) if len(y_cal) else 0.0
                       for i, a in enumerate(self.alphas)]
        return self

    def _raw(self, X: np.ndarray) -> np.ndarray:
        out = self.booster_.inplace_predict(np.asarray(X, dtype="float32"))
        return np.asarray(out, float).reshape(len(X), len(self.alphas))

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Quantiles (n x len(alphas)) in the target's units, non-crossing."""
        q = np.sort(self._raw(X) + np.asarray(self.shift_), axis=1)
        return np.expm1(q).clip(min=0)

    def writers(self) -> dict[str, Any]:
        return {"model.ubj": boosting.save_booster(self.booster_)}

    def meta(self) -> dict[str, Any]:
        return {"features": FEATURES, "params": self.params, "alphas": self.alphas,
                "conformal_shift": self.shift_}

    @classmethod
    def load(cls, d: Path, meta: dict[str, Any], kind: str) -> QuantileModel:
        m = cls(meta["alphas"], meta.get("params"))
        m.booster_ = boosting.load_booster(d / "model.ubj", len(meta["features"]), kind)
        m.shift_ = list(meta["conformal_shift"])
        return m


def tune_objective(X_fit, y_fit, X_val, y_val, alphas, max_rounds: int = 600):
    """Optuna objective: mean pinball loss (log scale) on a validation slice."""
    def objective(trial) -> float:
        params = boosting.suggest_params(trial, max_rounds)
        m = QuantileModel(alphas, params)
        m.booster_ = boosting.train(X_fit, np.log1p(y_fit), {
            "objective": "reg:quantileerror", "quantile_alpha": np.array(alphas)}, params)
        r = np.log1p(y_val)[:, None] - m._raw(X_val)
        a = np.asarray(alphas)
        return float(np.mean(np.maximum(a * r, (a - 1) * r)))
    return objective
