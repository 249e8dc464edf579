"""Features known at submit time, computed the same way in bulk (training, batch scoring) and
for one job spec (the predict action).

A job's features are its request (cpus, gpus, memory, time limit, nodes), its submit hour and
weekday, and the online history of its user, job name, project, image, queue and qos built only
from jobs that had ENDED strictly before it was submitted. Bulk history is vectorised: per
entity, ended jobs are sorted by end time, cumulative sums are taken, and each query's submit
time is located with a binary search (an as-of merge), so adding later jobs to the store cannot
change an earlier job's features.
"""
from __future__ import annotations

import sqlite3
import time
import weakref
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import pandas as pd

from jobmedic.knowledge.feature_queries import ENTITY_KINDS, RECENT_K, shape_key
from jobmedic.knowledge.taxonomy import ENDED_STATES, FAILED_STATES

if TYPE_CHECKING:
    from jobmedic.knowledge.store import Store

FEATURE_SET_VERSION = 2
REQUEST_FEATURES = ["req_cpus", "req_gpus", "req_mem_mb", "timelimit_s", "n_nodes",
                    "hour", "dow"]
STATS = ["n", "fail_rate", "recent_n", "recent_fails", "last_fail", "since_last_s",
         "mean_logrt", "last_rt", "last2_rt", "max_rss", "last_rss"]
FEATURES = REQUEST_FEATURES + [f"{k}_{s}" for k in ENTITY_KINDS for s in STATS]


def is_ended(df: pd.DataFrame) -> np.ndarray:
    return (df["state"].isin(ENDED_STATES) & df["end_time"].notna()).to_numpy()


def is_failed(df: pd.DataFrame) -> np.ndarray:
    return df["state"].isin(FAILED_STATES).to_numpy()


def _request_block(q: pd.DataFrame) -> dict[str, np.ndarray]:
    sub = q["submit_time"].to_numpy(dtype="float64")
    out = {c: q[c].to_numpy(dtype="float64") for c in REQUEST_FEATURES[:5]}
    out["hour"] = np.floor((sub % 86400) / 3600)
    out["dow"] = (np.floor(sub / 86400) + 3) % 7
    return out


class AsOf(NamedTuple):
    """One entity kind's history sorted by (entity, end time), and where each query row's
    as-of history ends in it (asof())."""

    rows: np.ndarray  # positions in the history frame of the sorted rows (no entity: left out)
    c: np.ndarray  # entity code of each sorted row
    e: np.ndarray  # end time of each sorted row
    qt: np.ndarray  # submit time of each query row
    g: np.ndarray  # each query's last sorted row of its entity that ended before its submit
    gi: np.ndarray  # g clipped into the sorted rows (an index that is safe where not valid)
    valid: np.ndarray  # the query has such a row
    st: np.ndarray  # each query's entity's first sorted row


def time_bounds(lo: float, hi: float) -> tuple[float, float]:
    """(tmin, scale) of `asof`'s composite key from the earliest and latest finite time (NaN
    when there is none): every time maps into [1, scale - 1], so entity codes stay apart."""
    tmin = lo - 1 if np.isfinite(lo) else 0.0
    scale = hi - tmin + 2 if np.isfinite(hi) else 1.0
    return tmin, scale


def time_frame(hist: pd.DataFrame, q: pd.DataFrame) -> tuple[float, float]:
    """`time_bounds` over the end times of `hist` (the ended history) and the submit times of
    the queries `q`."""
    times = np.concatenate([hist["end_time"].to_numpy(dtype="float64"),
                            q["submit_time"].to_numpy(dtype="float64")])
    finite = times[np.isfinite(times)]
    if not len(finite):
        return time_bounds(np.nan, np.nan)
    return time_bounds(float(finite.min()), float(finite.max()))


def asof(kind: str, hist: pd.DataFrame, q: pd.DataFrame, tmin: float, scale: float) -> AsOf:
    """The vectorised as-of lookup shared by the history features (here and in
    runtime_features): one sorted float key per (entity, end time), so a binary search finds,
    for each query, the last job of the same entity that ended strictly before the submit time."""
    codes, uniques = pd.factorize(pd.concat([hist[kind], q[kind]], ignore_index=True),
                                  use_na_sentinel=True)
    hc, qc = codes[:len(hist)], codes[len(hist):]
    keep = np.flatnonzero(hc >= 0)
    hc = hc[keep]
    he = hist["end_time"].to_numpy(dtype="float64")[keep]
    order = np.lexsort((np.arange(len(hc)), he, hc))
    c, e = hc[order].astype(np.int64), he[order]
    key = c * scale + (e - tmin)
    qt = q["submit_time"].to_numpy(dtype="float64")
    qkey = qc.astype("float64") * scale + (qt - tmin)
    g = np.searchsorted(key, qkey, side="left") - 1
    gi = np.clip(g, 0, max(len(c) - 1, 0))
    valid = (qc >= 0) & (g >= 0) & (len(c) > 0) & np.isfinite(qt)
    if len(c):
        valid &= c[gi] == qc
    starts = np.zeros(len(uniques) + 1, dtype=np.int64)
    if len(c):
        starts[:len(uniques)] = np.searchsorted(c, np.arange(len(uniques)), side="left")
    return AsOf(keep[order], c, e, qt, g, gi, valid, starts[np.clip(qc, 0, None)])


def _kind_block(kind: str, hist: pd.DataFrame, q: pd.DataFrame, tmin: float,
                scale: float) -> dict[str, np.ndarray]:
    """History statistics of one entity kind for every query row (vectorised as-of lookup)."""
    n_q = len(q)
    a = asof(kind, hist, q, tmin, scale)
    c, e, qt, g, gi, valid, st = a.c, a.e, a.qt, a.g, a.gi, a.valid, a.st
    f = is_failed(hist)[a.rows].astype("float64")
    rt = hist["elapsed_s"].to_numpy(dtype="float64")[a.rows]
    rss = hist["max_rss_mb"].to_numpy(dtype="float64")[a.rows]
    n = np.where(valid, g + 1 - st, 0).astype("float64")
    cf = np.concatenate([[0.0], np.cumsum(f)])
    lo = np.maximum(st, g + 1 - RECENT_K)
    rt0 = np.nan_to_num(np.log1p(np.maximum(rt, 0)), nan=0.0)
    cl = np.concatenate([[0.0], np.cumsum(rt0)])
    cn = np.concatenate([[0.0], np.cumsum(~np.isnan(rt))])
    gp = np.where(valid, g + 1, 0)
    stv = np.where(valid, st, 0)
    fails = cf[gp] - cf[stv]
    n_rt = cn[gp] - cn[stv]
    nan = np.full(n_q, np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = {
            "n": n,
            "fail_rate": np.where(n > 0, fails / np.maximum(n, 1), nan),
            "recent_n": np.where(valid, gp - np.where(valid, lo, 0), 0).astype("float64"),
            "recent_fails": np.where(valid, cf[gp] - cf[np.where(valid, lo, 0)], 0.0),
            "last_fail": np.where(valid, f[gi] if len(c) else nan, nan),
            "since_last_s": np.where(valid, qt - (e[gi] if len(c) else 0), nan),
            "mean_logrt": np.where(n_rt > 0, (cl[gp] - cl[stv]) / np.maximum(n_rt, 1), nan),
        }
        if len(c):
            prev_ok = valid & (g - 1 >= st)
            last_rt = np.where(valid, rt[gi], nan)
            prev_rt = np.where(prev_ok, rt[np.clip(g - 1, 0, None)], nan)
            cmax = pd.Series(np.where(np.isnan(rss), -np.inf, rss)).groupby(c).cummax().to_numpy()
            mx = np.where(valid, cmax[gi], nan)
            out["max_rss"] = np.where(np.isfinite(mx), mx, nan)
            out["last_rss"] = np.where(valid, rss[gi], nan)
        else:
            last_rt = prev_rt = nan
            out["max_rss"] = out["last_rss"] = nan
        both = np.vstack([last_rt, prev_rt])
        cnt = (~np.isnan(both)).sum(axis=0)
        out["last_rt"] = last_rt
        out["last2_rt"] = np.where(cnt > 0, np.nansum(both, axis=0) / np.maximum(cnt, 1), nan)
    return out


def with_shape(df: pd.DataFrame) -> pd.DataFrame:
    """`df` with the "shape" entity column (user|cpus|time limit; None when a part is missing)."""
    ok = df["user"].notna() & df["req_cpus"].notna() & df["timelimit_s"].notna()
    shape = pd.Series(None, index=df.index, dtype=object)
    if ok.any():
        shape[ok] = (df.loc[ok, "user"].astype(str) + "|" + df.loc[ok, "req_cpus"].astype("int64").astype(str)
                     + "|" + df.loc[ok, "timelimit_s"].astype("int64").astype(str))
    return df.assign(shape=shape)


def build_features(history: pd.DataFrame, queries: pd.DataFrame | None = None) -> pd.DataFrame:
    """The feature matrix (columns `FEATURES`) of `queries` (default: the history itself),
    with online history taken from the ended jobs of `history` ended before each submit."""
    history = with_shape(history)
    q = history if queries is None else with_shape(queries)
    hist = history[is_ended(history)]
    tmin, scale = time_frame(hist, q)
    cols: dict[str, np.ndarray] = _request_block(q)
    for kind in ENTITY_KINDS:
        for s, v in _kind_block(kind, hist, q, tmin, scale).items():
            cols[f"{kind}_{s}"] = np.asarray(v, dtype="float64")
    return pd.DataFrame(cols, index=q.index)[FEATURES]


def _stats_from_history(h: Mapping[str, Any], now: float) -> dict[str, float]:
    """The STATS of one entity from `Store.entity_history` (same definitions as the bulk path)."""
    n = h["n"]
    rec = h["recent"]
    nan = float("nan")
    out = {"n": float(n), "fail_rate": h["fails"] / n if n else nan,
           "recent_n": float(len(rec)), "recent_fails": float(sum(int(r[0]) for r in rec)),
           "last_fail": float(rec[0][0]) if rec else nan,
           "since_last_s": float(now - rec[0][3]) if rec else nan,
           "mean_logrt": h["sum_logrt"] / h["n_rt"] if h["n_rt"] else nan,
           "max_rss": float(h["max_rss"]) if h["max_rss"] is not None else nan,
           "last_rss": float(rec[0][2]) if rec and rec[0][2] is not None else nan}
    rts = [float(r[1]) if r[1] is not None else nan for r in rec[:2]]
    out["last_rt"] = rts[0] if rts else nan
    vals = [x for x in rts if not np.isnan(x)]
    out["last2_rt"] = sum(vals) / len(vals) if vals else nan
    return out


def spec_features(store: Store, spec: Mapping[str, Any], now: int,
                  scope: Sequence[str] | None = None) -> tuple[np.ndarray, dict[str, dict]]:
    """Feature vector of one job spec submitted at `now`, from indexed history lookups.

    Returns the vector (in `FEATURES` order) and, per entity kind, its raw history (for words).
    """
    vals: dict[str, float] = {}
    for c in REQUEST_FEATURES[:5]:  # plain floats: no DataFrame for one row
        try:
            vals[c] = float(spec.get(c)) if spec.get(c) is not None else float("nan")
        except (TypeError, ValueError):
            vals[c] = float("nan")
    vals["hour"] = float(np.floor((now % 86400) / 3600))
    vals["dow"] = float((np.floor(now / 86400) + 3) % 7)
    from jobmedic.knowledge import entity_summary

    # the maintained summary when it holds exactly the jobs ended before `now` (one query);
    # else indexed lookups of the jobs (issue 16: knowledge/entity_summary.py)
    fast = entity_summary.histories(store, spec, scope) if entity_summary.fresh_at(store, now) else None
    as_of = store.entity_stats_as_of() if fast is None else None
    hists: dict[str, dict] = {}
    spec = dict(spec) | {"shape": shape_key(spec.get("user"), spec.get("req_cpus"), spec.get("timelimit_s"))}
    for kind in ENTITY_KINDS:
        value = spec.get(kind)
        if value in (None, ""):
            h = {"n": 0, "fails": 0, "n_rt": 0, "sum_logrt": 0.0, "max_rss": None, "recent": []}
        elif fast is not None:
            h = fast[kind]
        else:
            h = store.entity_history(kind, str(value), int(now), scope, as_of)
        hists[kind] = h | {"value": value}
        for s, v in _stats_from_history(h, now).items():
            vals[f"{kind}_{s}"] = v
    return np.array([vals[f] for f in FEATURES], dtype="float64"), hists


#: Stores whose summary refresh failed (read-only, or a writer held the lock), with when:
#: predict reads the jobs there and tries again only after `RETRY_S`, not on every call.
_REFRESH_FAILED: weakref.WeakKeyDictionary[Any, float] = weakref.WeakKeyDictionary()
RETRY_S = 60.0


def summary_ready(store: Store, now: float) -> dict[str, Any] | None:
    """Bring the per-entity summary up to `now` when it is missing or behind, so that
    `spec_features` at `now` reads it instead of each entity's whole history (issue 16).

    As the per-day rollups are built by the first window read, the summary is built by the
    first predict that needs it (a store whose models came from elsewhere) and refreshed
    incrementally when jobs ended since its watermark (`entity_summary.refresh`). Nothing is
    done when it already serves `now`, or when no refresh could make it serve `now`: a past
    moment (a job ended at or after `now - 1`, e.g. an explicit `submit_time` or a job's own
    submit time) is read from the jobs as before. A store that cannot be written (read-only
    file, `PRAGMA query_only`, a writer holding the lock) is read from the jobs as before too.
    Returns what `refresh` did, or None when it was not run or failed. Global (every project's
    rows): a scoped caller still reads only its own projects' rows (`histories`)."""
    from jobmedic.knowledge import entity_summary

    if entity_summary.fresh_at(store, now):
        return None
    # the refresh moves the watermark to the newest end + 1: useless for an earlier `now`
    if store.ended_after(now - 1):
        return None
    failed = _REFRESH_FAILED.get(store)
    if failed is not None and time.monotonic() - failed < RETRY_S:
        return None
    if store.conn.in_transaction or store.conn.execute("PRAGMA query_only").fetchone()[0]:
        return None
    try:
        done = entity_summary.refresh(store, build=True)
    except sqlite3.OperationalError:  # read-only file, or a writer holding the lock
        _REFRESH_FAILED[store] = time.monotonic()
        return None
    _REFRESH_FAILED.pop(store, None)
    return done
