"""Quantile regression on a log scale (XGBoost `reg:quantileerror`, one model for all
quantiles), with a conformal shift per quantile fitted on a LATER slice so that the stated
coverage holds on data after the training window. The runtime and memory kinds build on it."""
from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from jobmedic.knowledge.errors import ModelError
from jobmedic.models import boosting, conformal, forest
from jobmedic.models.base import ModelKind
from jobmedic.models.features import FEATURES


class QuantileModel(ModelKind):
    """Predicts the `ALPHAS` quantiles of a positive target; scikit-learn style."""

    role = "request"
    ALPHAS: ClassVar[list[float]] = []

    def __init__(self, params: dict[str, Any] | None = None) -> None:
        super().__init__(params)
        self.alphas = [float(a) for a in self.ALPHAS]

    def fit(self, X: np.ndarray, y: np.ndarray) -> QuantileModel:
        obj = {"objective": "reg:quantileerror", "quantile_alpha": np.array(self.alphas)}
        self.booster_ = boosting.train(X, np.log1p(y), obj, self.params)
        return self

    def calibrate(self, X: np.ndarray, y: np.ndarray) -> QuantileModel:
        resid = np.log1p(y)[:, None] - self._raw(X)
        # conformal shift: the alpha-quantile of the residuals on the later slice
        self.shift_ = [float(np.quantile(resid[:, i], a)) if len(y) else 0.0
                       for i, a in enumerate(self.alphas)]
        # the retry-budget table: residuals over the highest quantile, in time order
        self.budget_ = conformal.fit_table(resid[:, int(np.argmax(self.alphas))])
        return self

    def for_budget(self, X: np.ndarray, budget: float) -> np.ndarray | None:
        """The request (target units) that at most a share `budget` of jobs exceed, from the
        conformal table of the calibration slice; None for a model trained without one."""
        return self._budget(self._raw(X), budget)

    def _budget(self, raw: np.ndarray, budget: float) -> np.ndarray | None:
        s = conformal.shift_for(getattr(self, "budget_", None), budget)
        if s is None:
            return None
        return np.expm1(raw[:, int(np.argmax(self.alphas))] + s).clip(min=0)

    def predict_with_budget(self, X: np.ndarray, budget: float | None
                            ) -> tuple[np.ndarray, np.ndarray | None]:
        """(quantiles, request for `budget` or None) from one pass of the booster."""
        raw = self._raw(X)
        q = np.expm1(np.sort(raw + np.asarray(self.shift_), axis=1)).clip(min=0)
        return q, (None if budget is None else self._budget(raw, budget))

    def _raw(self, X: np.ndarray) -> np.ndarray:
        f = forest.small(self, X)  # one job: the numpy walk
        if f is not None:
            return f.predict(X).reshape(len(X), len(self.alphas))
        out = self.booster_.inplace_predict(np.asarray(X, dtype="float32"))
        return np.asarray(out, float).reshape(len(X), len(self.alphas))

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Quantiles (n x len(alphas)) in the target's units, non-crossing."""
        q = np.sort(self._raw(X) + np.asarray(self.shift_), axis=1)
        return np.expm1(q).clip(min=0)

    def tune_objective(self, X_fit, y_fit, X_val, y_val, max_rounds: int = 600):
        return tune_objective(X_fit, y_fit, X_val, y_val, self.alphas, max_rounds)

    def files(self) -> dict[str, Any]:
        return {"model.ubj": boosting.save_booster(self.booster_)} | forest.files(self.booster_)

    def meta(self) -> dict[str, Any]:
        return {"features": FEATURES, "params": self.params, "alphas": self.alphas,
                "conformal_shift": self.shift_, "budget_table": getattr(self, "budget_", None)}

    @classmethod
    def load(cls, d: Path, meta: dict[str, Any]) -> QuantileModel:
        m = cls(meta.get("params"))
        if [float(a) for a in meta.get("alphas") or []] != m.alphas:
            raise ModelError(f"the {cls.name} model {meta.get('version')!r} predicts quantiles "
                             f"{meta.get('alphas')}, this jobmedic expects {m.alphas}",
                             f"retrain with `jobmedic train {cls.name}`")
        m.booster_ = boosting.load_booster(d / "model.ubj", len(meta["features"]), cls.name,
                                           outputs=len(m.alphas), version=d.name)
        m.shift_ = boosting.checked_numbers(meta.get("conformal_shift"), len(m.alphas),
                                            f"{cls.name} conformal shift")
        m.budget_ = conformal.loaded(meta.get("budget_table"))
        forest.attach(m, d, meta)
        return m

    def for_serving(self) -> QuantileModel:
        self.booster_.set_param({"nthread": 1})
        self.serving_ = True  # one-job predictions walk models/forest.py's arrays (built on use)
        return self

    # -- per-kind advice, used by predict and batch scoring ------------------------------------
    def advice_columns(self, q: np.ndarray, timelimit: np.ndarray) -> dict[str, np.ndarray]:
        """Batch columns: each quantile, and the recommended request."""
        raise NotImplementedError

    def budget_columns(self, request: np.ndarray, timelimit: np.ndarray) -> dict[str, np.ndarray]:
        """Batch columns of the request for a retry budget, in request units."""
        raise NotImplementedError

    def advice(self, q: np.ndarray, spec: Any) -> tuple[str, dict[str, Any], str, tuple[str, float]]:
        """One prediction: (result key, block, request flag, (chance-too-low key, value))."""
        raise NotImplementedError


def tune_objective(X_fit, y_fit, X_val, y_val, alphas, max_rounds: int = 600):
    """Optuna objective: mean pinball loss (log scale) on a validation slice."""
    def objective(trial) -> float:
        params = boosting.suggest_params(trial, max_rounds)
        booster = boosting.train(X_fit, np.log1p(y_fit), {
            "objective": "reg:quantileerror", "quantile_alpha": np.array(alphas)}, params)
        raw = booster.inplace_predict(np.asarray(X_val, dtype="float32"))
        r = np.log1p(y_val)[:, None] - np.asarray(raw, float).reshape(len(X_val), len(alphas))
        a = np.asarray(alphas)
        return float(np.mean(np.maximum(a * r, (a - 1) * r)))
    return objective
