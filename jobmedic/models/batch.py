"""Batch scoring: a table of job specs in, one row of predictions per spec out, all vectorised
(history as-of each spec's submit time from one bulk read of the store, or from the per-entity
summary for specs submitted now). Specs that are identical in every column the predictions
read (an array job's tasks, a resubmitted batch) are scored once and the answer repeated."""
from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from jobmedic.knowledge.errors import InputError, ModelError
from jobmedic.models import registry
from jobmedic.models.features import FEATURES, build_features

if TYPE_CHECKING:
    from jobmedic.knowledge.store import Store

#: XGBoost threads for a batch's boosters (the served models keep 1 for one job); from
#: THREADS_FROM distinct specs on, where a thread pool pays for itself.
THREADS = 2
THREADS_FROM = 2000

SPEC_COLUMNS = ["user", "project", "queue", "qos", "image", "name", "req_cpus", "req_gpus",
                "req_mem_mb", "req_walltime_s", "n_nodes", "submit_time"]


def level_of(p: np.ndarray, levels: dict[str, float]) -> np.ndarray:
    lv = np.full(len(p), "low", dtype=object)
    for name in ("moderate", "high", "critical"):
        lv[p >= float(levels[name])] = name
    return lv


def specs_frame(specs: pd.DataFrame, now: int) -> pd.DataFrame:
    """Normalise a table of specs to the job-frame columns; unknown columns are an error."""
    extra = [c for c in specs.columns if c not in SPEC_COLUMNS and c not in ("job_id", "cluster")]
    if extra:
        raise InputError(f"unknown column(s) {', '.join(extra)} in the batch file",
                         "accepted columns: " + ", ".join(SPEC_COLUMNS))
    q = pd.DataFrame(index=specs.index)
    for c in ("user", "project", "queue", "qos", "image", "name"):
        q[c] = specs[c].astype(object).where(specs[c].notna(), None) if c in specs else None
    for c, src in (("req_cpus", "req_cpus"), ("req_gpus", "req_gpus"), ("req_mem_mb", "req_mem_mb"),
                   ("timelimit_s", "req_walltime_s"), ("n_nodes", "n_nodes")):
        q[c] = pd.to_numeric(specs[src], errors="coerce") if src in specs else np.nan
    for c, lo, hi in (("req_cpus", 1, 1e6), ("req_gpus", 0, 1e5), ("req_mem_mb", 1e-9, 1e9),
                      ("timelimit_s", 1, 366 * 86400), ("n_nodes", 1, 1e5)):
        bad = q[c].notna() & ~q[c].between(lo, hi)
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise InputError(f"row {i + 1}: {c if c != 'timelimit_s' else 'req_walltime_s'} = "
                             f"{q[c].iloc[i]:g} is outside the accepted range {lo:g}..{hi:g}",
                             "fix the value or leave it empty")
    sub = pd.to_numeric(specs["submit_time"], errors="coerce") if "submit_time" in specs else np.nan
    q["submit_time"] = pd.Series(sub, index=specs.index).fillna(now).astype("float64")
    return q


@contextmanager
def _threads(model: Any, n: int) -> Iterator[None]:
    """`model`'s booster predicts with `n` threads inside the block, then with its serving 1."""
    b = getattr(model, "booster_", None)
    if b is None or n == 1:
        yield
        return
    b.set_param({"nthread": n})
    try:
        yield
    finally:
        b.set_param({"nthread": 1})


def distinct_rows(q: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(for each row of `q`, the number of its distinct row; the position of each distinct
    row's first occurrence). Exact: each column is factorised (missing values one group), and
    the codes are combined column by column into one integer key (re-factorised before it
    could overflow)."""
    n = len(q)
    if n < 2:
        return np.arange(n), np.arange(n)
    key = np.zeros(n, dtype=np.int64)
    size = 1
    for c in q.columns:
        codes, uniques = pd.factorize(q[c], use_na_sentinel=False)
        k = len(uniques) + 1
        if size * k >= 2 ** 62:
            key, u = pd.factorize(key)
            size = len(u)
        key = key * k + codes
        size *= k
    codes, _ = pd.factorize(key)
    first = np.full(codes.max() + 1, n, dtype=np.int64)
    np.minimum.at(first, codes, np.arange(n))
    return codes, first


def score(store: Store, specs: pd.DataFrame, models_dir: str, now: int, levels: dict[str, float],
          scope: Sequence[str] | None = None, history: pd.DataFrame | None = None,
          features: Callable[[pd.DataFrame, pd.DataFrame], pd.DataFrame] = build_features,
          retry_budget: float | None = None,
          matrix: Callable[[pd.DataFrame], pd.DataFrame] | None = None) -> pd.DataFrame:
    """Predictions for every spec: risk and level, the expected runtime (`runtime_expected_s`,
    the point `evaluate runtime` scores), runtime and memory quantiles, the request.
    `features`: build_features or an equal engine (engines/dask_features.py). `retry_budget`:
    adds the conformal request meeting that share of killed runs (budget_time_s, budget_mem_mb).
    `matrix`: the FEATURES of the distinct specs computed elsewhere, no history read here
    (engines/dask_engine.export_features: on Dask workers from the Parquet export); the request
    models then take their recent runs from indexed lookups."""
    q_all = specs_frame(specs, now)
    codes, first = distinct_rows(q_all)
    q = q_all.iloc[first] if len(first) < len(q_all) else q_all
    F = hist = None
    if matrix is not None:
        F = matrix(q)
    elif history is None and scope is None and features is build_features:
        from jobmedic.models.summary_features import summary_features

        F = summary_features(store, q)  # specs at "now": the maintained summary, no history read
    if F is None:
        hist = store.jobs_frame(scope) if history is None else history
        F = features(hist, q)
    X = F[FEATURES].to_numpy()
    fm, _, missing = registry.optional(models_dir, "failure")
    nthread = THREADS if len(X) >= THREADS_FROM else 1
    out = pd.DataFrame(index=q.index)
    if fm is not None:  # without one (no failures to learn from) the request columns still come
        with _threads(fm, nthread):
            p = fm.predict(X)
        out["failure_risk"], out["risk_level"] = np.round(p, 4), level_of(p, levels)
    absent = [] if missing is None else [missing]  # said to the caller: out.attrs
    for kind in registry.of_role("request"):
        try:
            m, _ = registry.load(models_dir, kind.name)
        except ModelError as exc:  # optional models: their columns are left out
            absent.append({"kind": kind.name, "message": exc.message, "hint": exc.hint})
            continue
        inputs = m.batch_inputs(X, q, store, scope, hist)
        with _threads(m, nthread):
            qs, b, pt, raw = m.serve(inputs, retry_budget)
        if pt is not None and m.POINT_COLUMN:  # the point estimate `evaluate` scores
            out[m.POINT_COLUMN] = np.round(pt, 1)
        for col, v in m.advice_frame(qs, q, raw).items():
            out[col] = v
        if b is not None:
            for col, v in m.budget_columns(b, q["timelimit_s"].to_numpy()).items():
                out[col] = v
    if missing is not None and len(absent) > len(registry.of_role("request")):  # no model at all
        raise ModelError(missing["message"], missing["hint"])
    if len(first) < len(q_all):  # each spec gets the answer of its distinct row
        out = out.iloc[codes]
    out.index = specs.index
    for c in ("job_id", "user", "name"):
        if c in specs:
            out.insert(0, c, specs[c])
    out.attrs["missing_models"] = absent  # the models whose columns are left out, and why
    return out
