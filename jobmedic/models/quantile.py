"""Quantile regression on a log scale (XGBoost `reg:quantileerror`, one model for all
quantiles), with a conformal shift per quantile fitted on a LATER slice so that the stated
coverage holds on data after the training window. The runtime and memory kinds build on it."""
from __future__ import annotations

import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple

import numpy as np

from jobmedic.knowledge.errors import ModelError
from jobmedic.models import boosting, conformal, forest
from jobmedic.models.base import ModelKind
from jobmedic.models.features import FEATURES

if TYPE_CHECKING:
    import pandas as pd

    from jobmedic.knowledge.store import Store

#: The last frame's extra columns (weakly keyed by the jobs frame): training asks for the fit
#: and the calibration rows of one frame, which then share one bulk computation.
_EXTRA_CACHE: list[Any] = [None, None]


class Served(NamedTuple):
    """One pass of a quantile model over its inputs (`QuantileModel.serve`)."""

    q: np.ndarray  # the shifted quantiles, sorted (target units)
    budget: np.ndarray | None  # the request for the retry budget asked for
    point: np.ndarray | None  # the point estimate (runtime)
    raw: np.ndarray  # the booster's raw log-scale output, one column per alpha, unsorted


class QuantileModel(ModelKind):
    """Predicts the `ALPHAS` quantiles of a positive target; scikit-learn style."""

    role = "request"
    ALPHAS: ClassVar[list[float]] = []
    #: Columns this kind reads after the shared FEATURES (e.g. the runtime model's recent
    #: runtimes), computed by `extra_bulk` / `extra_spec` in every path alike.
    EXTRA: ClassVar[list[str]] = []
    #: Rounds of each quantile when the params give no `num_boost_round`: None = early
    #: stopping per quantile on the latest fit rows (boosting.train_stopped); a list = fixed
    #: counts chosen on the card's validation slice (one fit of the most, then cut).
    ROUNDS: ClassVar[list[int] | None] = None

    def __init__(self, params: dict[str, Any] | None = None) -> None:
        super().__init__(params)
        self.alphas = [float(a) for a in self.ALPHAS]

    # -- inputs: FEATURES, then the kind's EXTRA columns -----------------------------------------
    def extra_bulk(self, history: pd.DataFrame, queries: pd.DataFrame | None) -> np.ndarray | None:
        """EXTRA of `queries` (default the history) as of each submit; None: no extra."""
        return None

    def extra_spec(self, store: Store, spec: Any, now: int, scope: Any) -> np.ndarray | None:
        """EXTRA (1 x n) of one spec submitted at `now`; None: no extra."""
        return None

    def inputs(self, frame, rows: np.ndarray) -> np.ndarray:
        X = frame[1][FEATURES].to_numpy()[rows]
        if not self.EXTRA:
            return X
        if set(self.EXTRA) <= set(frame[1].columns):
            # computed with the features over the whole history (engines/dask_train.py gathers
            # a slice with them): the slice alone would be the wrong history
            return np.hstack([X, frame[1][list(self.EXTRA)].to_numpy(dtype="float64")[rows]])
        df = frame[0]
        ref, extra = _EXTRA_CACHE
        if ref is None or ref() is not df or extra.shape[0] != len(df):
            extra = self.extra_bulk(df, None)
            _EXTRA_CACHE[:] = [weakref.ref(df), extra]
        return np.hstack([X, extra[rows]])

    def extra_specs(self, store: Store, queries: pd.DataFrame, scope: Any) -> np.ndarray | None:
        """EXTRA of many specs from indexed lookups (batch scoring without a history frame)."""
        return None

    def batch_inputs(self, X: np.ndarray, queries: pd.DataFrame, store: Store, scope: Any,
                     history: pd.DataFrame | None = None) -> np.ndarray:
        """The model input of specs `queries` whose FEATURES are `X` (batch scoring): the
        extra columns from `history` when the caller read it, else from the store."""
        if not self.EXTRA:
            return X
        e = (self.extra_specs(store, queries, scope) if history is None
             else self.extra_bulk(history, queries))
        return X if e is None else np.hstack([X, e])

    def spec_inputs(self, X: np.ndarray, store: Store, spec: Any, now: int, scope: Any) -> np.ndarray:
        """The model input of one spec whose FEATURES are `X` (1 x n; the predict action)."""
        e = self.extra_spec(store, spec, now, scope) if self.EXTRA else None
        return X if e is None else np.hstack([X, e])

    def fit(self, X: np.ndarray, y: np.ndarray) -> QuantileModel:
        obj = {"objective": "reg:quantileerror", "quantile_alpha": np.array(self.alphas)}
        # rows in time order (training.train): early stopping scores the latest fit rows
        self.booster_, self.rounds_ = boosting.train_stopped(X, np.log1p(y), obj, self.params,
                                                             rounds=self.ROUNDS)
        return self

    def calibrate(self, X: np.ndarray, y: np.ndarray) -> QuantileModel:
        return self.calibrate_raw(self._raw(X), X, y)

    def calibrate_raw(self, raw: np.ndarray, X: np.ndarray, y: np.ndarray) -> QuantileModel:
        """`calibrate` from the booster's output `raw` on `X`, computed once: a kind that fits
        more on the calibration slice (runtime: the point stack, the --time price) extends this."""
        resid = np.log1p(y)[:, None] - raw
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
        s = self.serve(X, budget)
        return s.q, s.budget

    def serve(self, X: np.ndarray, budget: float | None) -> Served:
        """`Served` (quantiles, request for `budget` or None, point estimate or None, the raw
        output) from one pass of the booster: what predict and batch scoring show; the advice
        starts from `raw` (the recommended request from the raw top quantile, the one the
        budget table was fitted on)."""
        raw = self._raw(X)
        return Served(self.quantiles(raw), None if budget is None else self._budget(raw, budget),
                      self.point_from(raw, X), raw)

    def quantiles(self, raw: np.ndarray) -> np.ndarray:
        """Quantiles (n x len(alphas)) in the target's units, non-crossing, from the raw output."""
        return np.expm1(np.sort(raw + np.asarray(self.shift_), axis=1)).clip(min=0)

    def point_from(self, raw: np.ndarray, X: np.ndarray) -> np.ndarray | None:
        """The point estimate (target units) from the booster's raw output `raw` of inputs `X`,
        for a kind whose evaluated point is not its q0.5 (runtime); None: the quantiles only."""
        return None

    def _raw(self, X: np.ndarray) -> np.ndarray:
        f = forest.small(self, X)  # one job: the numpy walk
        if f is not None:
            return f.predict(X).reshape(len(X), len(self.alphas))
        out = self.booster_.inplace_predict(np.asarray(X, dtype="float32"))
        return np.asarray(out, float).reshape(len(X), len(self.alphas))

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Quantiles (n x len(alphas)) in the target's units, non-crossing."""
        return self.quantiles(self._raw(X))

    def tune_objective(self, X_fit, y_fit, X_val, y_val, max_rounds: int = 600):
        return tune_objective(X_fit, y_fit, X_val, y_val, self.alphas, max_rounds)

    def files(self) -> dict[str, Any]:
        return {"model.ubj": boosting.save_booster(self.booster_)} | forest.files(self.booster_)

    def meta(self) -> dict[str, Any]:
        return {"features": FEATURES, "extra_features": list(self.EXTRA),
                "params": self.params, "alphas": self.alphas,
                "conformal_shift": self.shift_, "budget_table": getattr(self, "budget_", None),
                "boosting": getattr(self, "rounds_", None)}

    @classmethod
    def load(cls, d: Path, meta: dict[str, Any]) -> QuantileModel:
        m = cls(meta.get("params"))
        if [float(a) for a in meta.get("alphas") or []] != m.alphas:
            raise ModelError(f"the {cls.name} model {meta.get('version')!r} predicts quantiles "
                             f"{meta.get('alphas')}, this jobmedic expects {m.alphas}",
                             f"retrain with `jobmedic train {cls.name}`")
        if list(meta.get("extra_features") or []) != list(cls.EXTRA):
            raise ModelError(f"the {cls.name} model {meta.get('version')!r} reads other extra "
                             f"features than this jobmedic ({len(cls.EXTRA)} expected)",
                             f"retrain with `jobmedic train {cls.name}`")
        m.booster_ = boosting.load_booster(d / "model.ubj", len(meta["features"]) + len(cls.EXTRA),
                                           cls.name,
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
    def advice_columns(self, q: np.ndarray, timelimit: np.ndarray, raw: np.ndarray
                       ) -> dict[str, np.ndarray]:
        """Batch columns: each quantile, and the recommended request (`raw`: the booster's
        output the quantiles `q` came from, `Served.raw`)."""
        raise NotImplementedError

    def advice_frame(self, q: np.ndarray, queries: pd.DataFrame, raw: np.ndarray
                     ) -> dict[str, np.ndarray]:
        """Batch columns of specs `queries` (job-frame columns): `advice_columns` of their
        time limits; a kind whose advice reads more of the request overrides it."""
        return self.advice_columns(q, queries["timelimit_s"].to_numpy(), raw)

    def budget_columns(self, request: np.ndarray, timelimit: np.ndarray) -> dict[str, np.ndarray]:
        """Batch columns of the request for a retry budget, in request units."""
        raise NotImplementedError

    def advice(self, q: np.ndarray, spec: Any, raw: np.ndarray
               ) -> tuple[str, dict[str, Any], str, tuple[str, float]]:
        """One prediction: (result key, block, request flag, (chance-too-low key, value))."""
        raise NotImplementedError

    #: with a point estimate (`point_from`): its field in the advice block and its batch column
    POINT_FIELD: str | None = None
    POINT_COLUMN: str | None = None


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
