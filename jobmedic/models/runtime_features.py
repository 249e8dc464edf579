"""Recent-runtime features of the runtime model: how long the last `RECENT_K` ended jobs of
the job's user, job name and request shape ran, recency-weighted, and as a share of what they
asked for. They follow drift that the all-history means (models/features.py) average away.

Per entity kind (user, name, shape) and job, from the last `RECENT_K` jobs of that entity that
ENDED strictly before the job was submitted (the same as-of rule and the same order, end time
then row, as the shared history features):

- `med_logrt`: median log1p runtime; `ewm_logrt`: the exponentially weighted mean of the log1p
  runtimes (weight halves every `HALF_LIFE` jobs back, newest weight 1);
- `med_ratio`: median of runtime / time limit (the share of its request a job used);
  `last_ratio`: that share for the newest job;

and, per job, `user_ratio_rt` / `name_ratio_rt`: the job's own time limit x the user's (name's)
median share, the runtime the request implies if the user is as (in)accurate as lately.

The bulk path (`recent_block`: training, evaluation, batch scoring, the Dask engine's frames)
and the single-spec path (`recent_spec`: indexed lookups of the last runs) fill the same
(jobs x RECENT_K) matrices and reduce them with the same `_reduce`, so they agree exactly.
"""
from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from jobmedic.knowledge.feature_queries import RECENT_K, shape_key
from jobmedic.models.features import asof, is_ended, time_frame, with_shape

if TYPE_CHECKING:
    from jobmedic.knowledge.store import Store

KINDS = ("user", "name", "shape")
HALF_LIFE = 2.0
_W = 0.5 ** (np.arange(RECENT_K) / HALF_LIFE)
STATS = ["med_logrt", "ewm_logrt", "med_ratio", "last_ratio"]
RATIO_KINDS = ("user", "name")
RT_FEATURES = [f"{k}_{s}" for k in KINDS for s in STATS] + [f"{k}_ratio_rt" for k in RATIO_KINDS]


def _reduce(kind: str, L: np.ndarray, R: np.ndarray) -> dict[str, np.ndarray]:
    """The STATS of one kind from (jobs x RECENT_K) log runtimes `L` and shares `R`, newest
    first (NaN: no such job, or no runtime / limit)."""
    if L.shape[0] == 1:  # one spec (predict): the same values without nanmedian's overhead
        return _reduce_one(kind, L[0], R[0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows give NaN, as meant
        w = np.where(np.isnan(L), 0.0, _W[None, :])
        sw = w.sum(axis=1)
        return {f"{kind}_med_logrt": np.nanmedian(L, axis=1),
                f"{kind}_ewm_logrt": np.where(sw > 0, np.nansum(np.nan_to_num(L) * w, axis=1)
                                              / np.maximum(sw, 1e-12), np.nan),
                f"{kind}_med_ratio": np.nanmedian(R, axis=1),
                f"{kind}_last_ratio": R[:, 0].copy()}


def _reduce_one(kind: str, lr: np.ndarray, rr: np.ndarray) -> dict[str, np.ndarray]:
    ok, okr = ~np.isnan(lr), ~np.isnan(rr)
    lv, w = lr[ok], _W[ok]
    nan = np.array([np.nan])
    return {f"{kind}_med_logrt": np.array([np.median(lv)]) if len(lv) else nan,
            f"{kind}_ewm_logrt": np.array([np.sum(lv * w) / np.sum(w)]) if len(lv) else nan,
            f"{kind}_med_ratio": np.array([np.median(rr[okr])]) if okr.any() else nan,
            f"{kind}_last_ratio": np.array([rr[0]])}


def _ratio(rt: np.ndarray, tl: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(np.isfinite(tl) & (tl > 0), rt / tl, np.nan)


def _finish(cols: dict[str, np.ndarray], timelimit: np.ndarray) -> np.ndarray:
    """The (jobs x RT_FEATURES) matrix: the kinds' stats and the implied runtimes."""
    for k in RATIO_KINDS:
        cols[f"{k}_ratio_rt"] = timelimit * cols[f"{k}_med_ratio"]
    return np.column_stack([np.asarray(cols[f], dtype="float64") for f in RT_FEATURES])


def _last_k(kind: str, hist: pd.DataFrame, q: pd.DataFrame, tmin: float, scale: float
            ) -> tuple[np.ndarray, np.ndarray]:
    """(L, R) of every query row: its entity's last RECENT_K ended jobs before its submit."""
    a = asof(kind, hist, q, tmin, scale)
    if not len(a.c):
        empty = np.full((len(q), RECENT_K), np.nan)
        return empty, empty.copy()
    rt = hist["elapsed_s"].to_numpy(dtype="float64")[a.rows]
    tl = hist["timelimit_s"].to_numpy(dtype="float64")[a.rows]
    idx = a.g[:, None] - np.arange(RECENT_K)[None, :]
    ok = a.valid[:, None] & (idx >= a.st[:, None])
    ii = np.clip(idx, 0, len(a.c) - 1)
    lrt = np.log1p(np.maximum(rt, 0))
    return np.where(ok, lrt[ii], np.nan), np.where(ok, _ratio(rt, tl)[ii], np.nan)


def recent_block(history: pd.DataFrame, queries: pd.DataFrame | None = None) -> np.ndarray:
    """RT_FEATURES (jobs x len(RT_FEATURES)) of `queries` (default: the history itself) from
    the ended jobs of `history` that ended before each submit."""
    history = with_shape(history)
    q = history if queries is None else with_shape(queries)
    hist = history[is_ended(history)]
    tmin, scale = time_frame(hist, q)
    cols: dict[str, np.ndarray] = {}
    for kind in KINDS:
        cols |= _reduce(kind, *_last_k(kind, hist, q, tmin, scale))
    return _finish(cols, q["timelimit_s"].to_numpy(dtype="float64"))


def recent_spec(store: Store, spec: Mapping[str, Any], now: int,
                scope: Sequence[str] | None = None) -> np.ndarray:
    """RT_FEATURES (1 x len(RT_FEATURES)) of one spec submitted at `now`, from the last runs
    of its entities (indexed lookups)."""
    shape = shape_key(spec.get("user"), spec.get("req_cpus"), spec.get("timelimit_s"))
    cols: dict[str, np.ndarray] = {}
    for kind in KINDS:
        value = {"shape": shape}.get(kind, spec.get(kind))
        runs = ([] if value in (None, "")
                else store.features.recent_runs(kind, str(value), int(now), scope, RECENT_K))
        L, R = _row(runs)
        cols |= _reduce(kind, L[None, :], R[None, :])
    try:
        tl = float(spec.get("timelimit_s")) if spec.get("timelimit_s") is not None else np.nan
    except (TypeError, ValueError):
        tl = np.nan
    return _finish(cols, np.array([tl]))


def recent_specs(store: Store, queries: pd.DataFrame, scope: Sequence[str] | None = None
                 ) -> np.ndarray:
    """RT_FEATURES of many specs (job-frame columns and submit_time) from indexed lookups, one
    per distinct (entity, submit time): batch scoring when no history frame was read."""
    q = with_shape(queries)
    qt = q["submit_time"].to_numpy(dtype="float64")
    cols: dict[str, np.ndarray] = {}
    for kind in KINDS:
        L = np.full((len(q), RECENT_K), np.nan)
        R = L.copy()
        vals = q[kind].astype(object).to_numpy()
        seen: dict[tuple[str, int], tuple[np.ndarray, np.ndarray]] = {}
        for i, (v, t) in enumerate(zip(vals, qt)):
            if v is None or v == "" or (isinstance(v, float) and np.isnan(v)) or not np.isfinite(t):
                continue
            k = (str(v), int(t))
            if k not in seen:
                seen[k] = _row(store.features.recent_runs(kind, k[0], k[1], scope, RECENT_K))
            L[i], R[i] = seen[k]
        cols |= _reduce(kind, L, R)
    return _finish(cols, q["timelimit_s"].to_numpy(dtype="float64"))


def _row(runs: Sequence[tuple[Any, Any]]) -> tuple[np.ndarray, np.ndarray]:
    """(log runtimes, shares) of up to RECENT_K runs (elapsed_s, timelimit_s), newest first."""
    L = np.full(RECENT_K, np.nan)
    R = L.copy()
    for j, (rt, tl) in enumerate(runs[:RECENT_K]):
        rt = np.nan if rt is None else float(rt)
        tl = np.nan if tl is None else float(tl)
        L[j] = np.log1p(max(rt, 0.0)) if np.isfinite(rt) else np.nan
        R[j] = _ratio(np.array(rt), np.array(tl))
    return L, R
