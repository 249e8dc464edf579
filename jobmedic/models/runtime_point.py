"""The runtime model's point estimate (what MAE scores), apart from its quantiles.

Two points, chosen on the RICC validation slice (docs/models.md, "issue 18, seventh pass"):

- `blend` (the point before the stack, and still the point of an artifact without one): the
  booster's median before any conformal shift, blended on a log scale with `user_ratio_rt`
  (this job's limit x the median share of the limit the user's last 10 ended jobs used);
- the **stack** (`fit_stack` / `stacked`): where the job's request shape (user, CPUs, limit)
  has a COMPLETED job that ended before this one was submitted (the exact repeat,
  `REPEAT`), a least-absolute-deviation fit on the log scale over the unshifted median, the
  user's ratio runtime and that repeat's runtime, weighted by the blend's size in hours (an
  error in hours, which MAE counts, is about size x the error in logs). It is fitted on the
  calibration slice (the latest pre-cut jobs, which the booster never saw) in `calibrate`, so
  `train runtime` refits it; without a repeat the blend stays.

The repeat is a point-only input: the booster reads the shared FEATURES and RT_FEATURES only
(`width`), so its quantiles, the retry-budget tables and the recommended --time do not change.
`PointStack` adds it to the runtime model's inputs (last column) in every path: bulk frames
(`repeat_bulk`), one spec (`repeat_spec`) and many specs (`repeat_specs`; those two only where
a stack is served, `PointStack.uses_repeat`); an input without it serves the blend. The Dask
engine computes it on the workers in its shape pass (`repeat_asof`, the rule of `repeat_bulk`)
and gathers it with the calibration slice, so `train runtime --engine dask` fits the stack local
training fits for the same booster; an artifact without one says why (`point_stack_reason` in
meta.json).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from jobmedic.knowledge.errors import ModelError
from jobmedic.knowledge.feature_queries import shape_key
from jobmedic.models import boosting, runtime_features
from jobmedic.models.features import FEATURES, asof, time_frame, with_shape

if TYPE_CHECKING:
    from jobmedic.knowledge.store import Store

POINT_WEIGHT = 0.4  # the booster median's weight in the blend (validation: 0.0-1.0 by 0.1)
REPEAT = ["shape_last_completed_rt"]  # the point-only input after the booster's columns
STACK_INPUTS = ["q0.5_unshifted", "user_ratio_rt", "shape_last_completed_rt", "intercept"]
#: Serve the stack where an artifact has one (chosen on validation; False: the blend, same
#: artifacts). On the RICC test months the stack scored worse than the blend (docs/models.md).
SERVE_STACK = True
MIN_STACK_ROWS = 200  # fewer calibration jobs with a repeat: no stack (the blend)
IRLS_STEPS = 60
_RATIO = len(FEATURES) + runtime_features.RT_FEATURES.index("user_ratio_rt")
_WIDTH = len(FEATURES) + len(runtime_features.RT_FEATURES)


def blend(raw_median: np.ndarray, ratio_rt: np.ndarray) -> np.ndarray:
    """The point runtime (s) before the stack: the booster's unshifted median (log1p scale)
    blended with the user's recent share x the request where there is one."""
    r = np.asarray(ratio_rt, float)
    ok = np.isfinite(r) & (r > 0)
    mix = POINT_WEIGHT * raw_median + (1 - POINT_WEIGHT) * np.log1p(np.where(ok, r, 0.0))
    return np.expm1(np.where(ok, mix, raw_median)).clip(min=0)


def _design(raw_median: np.ndarray, X: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(the stack's design matrix on the log1p scale, rows with a repeat, the blend in s)."""
    X = np.asarray(X, float)
    base = blend(raw_median, X[:, _RATIO])
    r = X[:, _RATIO]
    lur = np.where(np.isfinite(r) & (r > 0), np.log1p(np.where(r > 0, r, 0.0)), raw_median)
    rep = X[:, _WIDTH] if X.shape[1] > _WIDTH else np.full(len(X), np.nan)
    has = np.isfinite(rep) & (rep >= 0)
    lrep = np.log1p(np.where(has, rep, 0.0))
    return np.column_stack([raw_median, lur, lrep, np.ones(len(X))]), has, base


def lad(A: np.ndarray, t: np.ndarray, w: np.ndarray, steps: int = IRLS_STEPS) -> np.ndarray:
    """Weighted least absolute deviations (the 0.5 quantile regression) by iteratively
    reweighted least squares, from the weighted least-squares start."""
    def solve(ww: np.ndarray) -> np.ndarray:
        s = np.sqrt(ww)
        return np.linalg.lstsq(A * s[:, None], t * s, rcond=None)[0]

    b = solve(w)
    for _ in range(steps):
        b = solve(w / np.maximum(np.abs(t - A @ b), 1e-4))
    return b


def fit_stack(raw_median: np.ndarray, X: np.ndarray, y: np.ndarray) -> dict[str, Any] | None:
    """The stack's coefficients from calibration jobs (booster median `raw_median`, inputs
    `X`, runtimes `y` in s); None when fewer than MIN_STACK_ROWS of them have a repeat."""
    A, has, base = _design(raw_median, X)
    ok = has & np.isfinite(y) & (y >= 0) & np.isfinite(A).all(axis=1)
    if ok.sum() < MIN_STACK_ROWS:
        return None
    w = base[ok] / 3600 + 0.05  # hours: |e^a - e^b| is about e^b |a - b|
    coef = lad(A[ok], np.log1p(y[ok]), w)
    if not np.isfinite(coef).all():
        return None
    return {"inputs": STACK_INPUTS, "coef": [float(c) for c in coef], "n": int(ok.sum())}


def stacked(stack: Mapping[str, Any] | None, raw_median: np.ndarray, X: np.ndarray) -> np.ndarray:
    """The point runtime (s): the stack where the job has a repeat (and `SERVE_STACK`), else
    the blend."""
    A, has, base = _design(raw_median, X)
    if not stack or not SERVE_STACK:
        return base
    st = np.expm1(np.clip(A @ np.asarray(stack["coef"], float), 0, None))
    return np.where(has & np.isfinite(st), st, base)


def _malformed(what: str) -> ModelError:
    return ModelError(f"the runtime model artifact's point stack is malformed ({what})",
                      "retrain with `jobmedic train runtime`")


def loaded(meta_stack: Any) -> dict[str, Any] | None:
    """The stack read from an artifact's meta (None: an artifact without one), every field
    checked: `inputs` the list STACK_INPUTS, `coef` as many finite numbers, `n` an int >= 0."""
    if meta_stack is None:
        return None
    if not isinstance(meta_stack, Mapping):
        raise _malformed(f"a {type(meta_stack).__name__}, not a mapping")
    inputs = meta_stack.get("inputs")
    if not isinstance(inputs, list) or not all(isinstance(v, str) for v in inputs):
        raise _malformed("`inputs` is not a list of input names")
    if inputs != STACK_INPUTS:
        raise ModelError("the runtime model's point stack reads other inputs than this jobmedic "
                         f"({inputs}, not {STACK_INPUTS})", "retrain with `jobmedic train runtime`")
    coef = boosting.checked_numbers(meta_stack.get("coef"), len(STACK_INPUTS),
                                    "runtime point stack's coef")
    n = meta_stack.get("n")
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        raise _malformed("`n` is not a whole number >= 0")
    return {"inputs": STACK_INPUTS, "coef": coef, "n": n}


# -- the repeat: the last completed job of the same request shape ------------------------------
def repeat_bulk(history: pd.DataFrame, queries: pd.DataFrame | None = None) -> np.ndarray:
    """(jobs x 1) runtime of the last completed job of each query's shape that ended before
    its submit (NaN: none), from the jobs frame `history` (same as-of rule as the features)."""
    history = with_shape(history)
    q = history if queries is None else with_shape(queries)
    hist = completed(history)
    return repeat_asof(hist, q, *time_frame(hist, q))[:, None]


def completed(history: pd.DataFrame) -> pd.DataFrame:
    """The jobs of `history` the repeat can be: completed, with an end time."""
    return history[((history["state"] == "completed") & history["end_time"].notna()).to_numpy()]


def repeat_asof(hist: pd.DataFrame, q: pd.DataFrame, tmin: float, scale: float) -> np.ndarray:
    """(jobs,) the repeat of each query row of `q` from the completed jobs `hist` (both with
    the "shape" column; `asof`'s time frame (tmin, scale) covering both): `repeat_bulk`'s rule,
    which the Dask engine's shape pass also runs (engines/dask_parquet.py)."""
    a = asof("shape", hist, q, tmin, scale)
    if not len(a.c):
        return np.full(len(q), np.nan)
    rt = hist["elapsed_s"].to_numpy(dtype="float64")[a.rows]
    return np.where(a.valid, rt[a.gi], np.nan)


def _one(store: Store, shape: str | None, now: int, scope: Sequence[str] | None) -> float:
    if shape is None:
        return np.nan
    runs = store.features.recent_runs("shape", shape, int(now), scope, 1, completed=True)
    return float(runs[0][0]) if runs and runs[0][0] is not None else np.nan


def repeat_spec(store: Store, spec: Mapping[str, Any], now: int,
                scope: Sequence[str] | None = None) -> np.ndarray:
    """(1 x 1) the repeat of one spec submitted at `now` (one indexed lookup)."""
    shape = shape_key(spec.get("user"), spec.get("req_cpus"), spec.get("timelimit_s"))
    return np.array([[_one(store, shape, now, scope)]])


def repeat_specs(store: Store, queries: pd.DataFrame, scope: Sequence[str] | None = None
                 ) -> np.ndarray:
    """(jobs x 1) the repeat of many specs: each distinct (shape, submit time) looked up once,
    all of them in one statement per 500 (FeatureQueries.last_completed_runtimes)."""
    q = with_shape(queries)
    qt = q["submit_time"].to_numpy(dtype="float64")
    index: dict[tuple[str, int], int] = {}
    at = np.full(len(q), -1)
    for i, (v, t) in enumerate(zip(q["shape"].astype(object).to_numpy(), qt)):
        if v is None or (isinstance(v, float) and np.isnan(v)) or v == "" or not np.isfinite(t):
            continue
        at[i] = index.setdefault((str(v), int(t)), len(index))
    shapes = []
    for v, t in index:
        user, cpus, tl = v.rsplit("|", 2)
        shapes.append((user, int(cpus), int(tl), t))
    found = np.array([np.nan if r is None else float(r)
                      for r in store.features.last_completed_runtimes(shapes, scope)] + [np.nan])
    return found[at][:, None]  # -1 (no shape) reads the trailing NaN


def booster_cols(X: Any) -> Any:
    """The booster's columns of model inputs `X` (the first `_WIDTH`): a numpy or a Dask
    array alike, sliced, never gathered (engines/dask_train.py fits on a Dask array)."""
    return X[:, :_WIDTH] if X.shape[1] > _WIDTH else X


#: Why an artifact has no stack (its meta's `point_stack_reason`; None when it has one)
NO_REPEAT = ("the calibration inputs carry no repeat column (FEATURES and RT_FEATURES only, as "
             "`train runtime --engine dask` gave before it computed the repeat): the point is "
             "the blend")
NO_CALIBRATION = "no calibration jobs: the point is the blend"
FEW_REPEATS = (f"fewer than {MIN_STACK_ROWS} calibration jobs with a repeat (or no finite fit):"
               " the point is the blend")


class PointStack:
    """The runtime model's point: its booster reads the first `_WIDTH` input columns; the
    repeat rides after them; `calibrate` fits the stack, the artifact's meta keeps it (or why
    there is none)."""

    stack_: dict[str, Any] | None = None
    stack_reason_: str | None = None

    @property
    def _mid(self) -> int:
        return list(self.ALPHAS).index(0.5)  # type: ignore[attr-defined]

    def uses_repeat(self) -> bool:
        """Whether the repeat column can change this model's point (else the spec paths skip
        its lookup and pass NaN: the same point)."""
        return self.stack_ is not None and SERVE_STACK

    def _raw(self, X: np.ndarray) -> np.ndarray:
        return super()._raw(booster_cols(np.asarray(X)))  # type: ignore[misc]

    def fit(self, X: np.ndarray, y: np.ndarray):
        return super().fit(booster_cols(X), y)  # type: ignore[misc]

    def tune_objective(self, X_fit, y_fit, X_val, y_val, max_rounds: int = 600):
        return super().tune_objective(  # type: ignore[misc]
            booster_cols(X_fit), y_fit, booster_cols(X_val), y_val, max_rounds)

    def inputs(self, frame, rows: np.ndarray) -> np.ndarray:
        """QuantileModel.inputs, plus the repeat where the features frame carries it (the
        Dask engine's gathered slice: computed on the workers over the whole history)."""
        X = super().inputs(frame, rows)  # type: ignore[misc]
        if X.shape[1] == _WIDTH and set(REPEAT) <= set(frame[1].columns):
            X = np.hstack([X, frame[1][REPEAT].to_numpy(dtype="float64")[rows]])
        return X

    def calibrate_raw(self, raw: np.ndarray, X: np.ndarray, y: np.ndarray):
        super().calibrate_raw(raw, X, y)  # type: ignore[misc]
        self.stack_ = None
        if not len(y):
            self.stack_reason_ = NO_CALIBRATION
        elif X.shape[1] <= _WIDTH:
            self.stack_reason_ = NO_REPEAT
        else:
            self.stack_ = fit_stack(raw[:, self._mid], X, y)
            self.stack_reason_ = None if self.stack_ is not None else FEW_REPEATS
        return self

    def point(self, X: np.ndarray) -> np.ndarray:
        """The point runtime (s) of model inputs `X`: what `evaluate` scores."""
        return self.point_from(self._raw(X), X)

    def point_from(self, raw: np.ndarray, X: np.ndarray) -> np.ndarray:
        return stacked(self.stack_, raw[:, self._mid], X)

    def meta(self) -> dict[str, Any]:
        out = {"point_stack": self.stack_}
        if self.stack_ is None and self.stack_reason_:
            out["point_stack_reason"] = self.stack_reason_
        return super().meta() | out  # type: ignore[misc]

    @classmethod
    def load(cls, d: Path, meta: dict[str, Any]):
        m = super().load(d, meta)  # type: ignore[misc]
        m.stack_ = loaded(meta.get("point_stack"))
        reason = meta.get("point_stack_reason")
        m.stack_reason_ = reason if m.stack_ is None and isinstance(reason, str) else None
        return m
