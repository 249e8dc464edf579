"""Incremental refresh of the GNN serving state (models/gnn_serving.py) after a load, with the
trained weights and no retraining, so `predict` keeps the GNN + XGBoost ensemble on a live store.

The state is exact below its watermark W (the newest end time + 1 when it was built). A load
brings jobs that ended at or after W and jobs submitted at or after W. Every term of the state
depends only on what a job could see at its submission, so:

- a job submitted before W that was already in the store (not ended then) keeps the
  standardised features and first-layer output the full build stored for it (`pend_*`);
- a job submitted at or after W gets its features from the per-entity summary at W
  (knowledge/entity_summary.py, the ended jobs below W) combined with the loaded jobs that
  ended before its submission, then its first layer from its neighbours: the newest `k_shared`
  of its user / name / image among the state's lists and the loaded ended jobs, and its `k_knn`
  nearest among the newest `knn_ref` ended before its one-day block;
- each newly ended job's p and q terms join the lists; the newest per value and overall stay.

The cost follows the load (the jobs since W, the summary rows of their entities, one kNN fit
per new day) plus reading and writing the state blob. The refresh is not possible (mode
"stale": predict then falls back to XGBoost and says why) when the summary is not at W, when a
job submitted before W arrives late, or when a new day's kNN reference set reaches below what
the state kept. A change below W is caught by the summary's own check, which runs after this
step in `app.after_ingest`; the state is then dropped (`gnn_state.drop`).
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from jobmedic.knowledge import entity_summary, gnn_state
from jobmedic.knowledge.feature_queries import ENTITY_KINDS, RECENT_K
from jobmedic.models.features import (
    FEATURES,
    _request_block,
    asof,
    is_ended,
    is_failed,
    time_frame,
    with_shape,
)
from jobmedic.models.gnn_serving import KNN_FEATURES, SHARED, assemble, standardise

if TYPE_CHECKING:
    from jobmedic.knowledge.store import Store


def _stale(why: str, t0: float, c0: float, jobs: int = 0) -> dict[str, Any]:
    return {"mode": "stale", "reason": why, "jobs": jobs, "seconds": round(time.perf_counter() - t0, 3),
            "cpu_seconds": round(time.process_time() - c0, 3)}


def refresh(store: Store) -> dict[str, Any]:
    """Bring the store's gnn serving state up to its newest jobs. Returns {mode: none (no
    state) | current | incremental | stale, jobs, seconds, cpu_seconds, reason (stale)}."""
    t0, c0 = time.perf_counter(), time.process_time()
    head = gnn_state.header(store)  # the checks first: the payload is tens of MB
    if head is None:
        return {"mode": "none", "jobs": 0, "seconds": 0.0, "cpu_seconds": 0.0}
    W = float(head[1])
    if entity_summary.watermark(store) != W:
        return _stale("the entity summary is not at the gnn state's watermark", t0, c0)
    L = gnn_state.jobs_since(store, W)
    if L.empty:
        return {"mode": "current", "jobs": 0, "seconds": round(time.perf_counter() - t0, 3),
                "cpu_seconds": round(time.process_time() - c0, 3)}
    st = gnn_state.load(store)
    a = st["arrays"] if st is not None else {}
    if "pend_rowid" not in a:
        return _stale("the state was built without what a refresh needs: retrain the gnn", t0, c0)
    try:
        arrays, watermark = _refresh(store, a, W, L)
    except _NotExact as exc:
        return _stale(str(exc), t0, c0, len(L))
    gnn_state.save(store, st["version"], watermark, arrays, int(time.time()))
    return {"mode": "incremental", "jobs": len(L), "kept_rows": len(arrays["p"]),
            "pending": len(arrays["pend_rowid"]), "watermark": watermark,
            "seconds": round(time.perf_counter() - t0, 3), "cpu_seconds": round(time.process_time() - c0, 3)}


def after_load(store: Store) -> dict[str, Any] | None:
    """The models' after-load upkeep, in the order it needs: the gnn state first (new jobs'
    features start from the per-entity summary at its watermark), then the summary; a change
    below the watermark (the summary rebuilds) drops the gnn state, whose step then was not
    exact. Returns the gnn step's result, or None when the store has no gnn state. Called by
    `app.after_ingest` and by each `jobmedic watch` poll that brought jobs."""
    gnn = refresh(store) if gnn_state.header(store) is not None else None
    summ = entity_summary.refresh(store)
    if gnn is not None and summ["mode"] == "rebuild":
        gnn_state.drop(store)
        gnn = {"mode": "dropped", "reason": "jobs below its watermark changed"}
    return gnn


class _NotExact(Exception):
    """The state cannot be brought forward exactly (the message says why)."""


def _refresh(store: Store, a: dict[str, np.ndarray], W: float, L: pd.DataFrame
             ) -> tuple[dict[str, np.ndarray], float]:
    prm = a["params"]
    k, k_knn, knn_ref, block_s = int(prm[0]), int(prm[1]), int(prm[2]), float(prm[3])
    ended = is_ended(L)
    end = L["end_time"].to_numpy(dtype="float64")
    sub = L["submit_time"].to_numpy(dtype="float64")
    rid = L["rowid"].to_numpy(dtype=np.int64)
    if (ended & (end < W)).any():
        raise _NotExact("a job ended below the state's watermark")
    fresh = sub >= W  # NaN: False
    pend_pos = pd.Series(np.arange(len(a["pend_rowid"])), index=a["pend_rowid"])
    old = np.flatnonzero(~fresh)
    at = pend_pos.reindex(rid[old]).to_numpy()
    if np.isnan(at).any():
        raise _NotExact("a job submitted before the state's watermark arrived late: retrain the gnn")
    at = at.astype(np.int64)
    d = a["pend_z"].shape[1]
    z = np.zeros((len(L), d), dtype="float32")
    h1 = np.zeros((len(L), a["w1l"].shape[0]), dtype="float32")
    z[old], h1[old] = a["pend_z"][at], a["pend_h1"][at]
    y = np.where(ended, is_failed(L), 0).astype("float32")
    # the loaded ended jobs, by (end time, rowid): the history the new jobs' features add
    E = np.flatnonzero(ended)
    E = E[np.lexsort((rid[E], end[E]))]
    fr = np.flatnonzero(fresh)
    if len(fr):
        X = features_since(store, L.iloc[fr], L.iloc[E])
        z[fr] = standardise(X, a["mean"], a["std"])[0]
    kcols = [FEATURES.index(f) for f in KNN_FEATURES]
    n_old = len(a["p"])
    PE = np.hstack([z[E], y[E, None]]) @ a["w1l"].T
    P_all = np.vstack([a["p"], PE.astype("float32")]).astype("float64")
    zk_all = np.vstack([a["zk"], z[E][:, kcols]]).astype("float32")
    if len(fr):
        h1[fr] = _first_layer(a, L, fr, E, n_old, z, sub, end, P_all, zk_all, kcols,
                              (k, k_knn, knn_ref, block_s))
    QE = (np.hstack([h1[E], y[E, None]]) @ a["w2l"].T).astype("float32")
    # candidates: the state's rows (each listed under the values it is listed for) + new ended
    cand_vals = {}
    for kind in SHARED:
        v = np.full(n_old, None, dtype=object)
        v[a[f"{kind}_row"]] = a[f"{kind}_value"].astype(object)
        cand_vals[kind] = np.concatenate([v, L[kind].astype(object).to_numpy()[E]])
    n_ref = 2 * knn_ref
    ref_all = bool(a["ref_all"][0]) and len(a["ref_row"]) + len(E) <= n_ref
    arrays = assemble(np.concatenate([a["row_id"], rid[E]]), np.concatenate([a["row_end"], end[E]]),
                      cand_vals, P_all, np.vstack([a["q"], QE]), zk_all, k, n_ref, ref_all)
    # the jobs not yet ended: the old ones the load did not end, and the new ones
    gone = np.isin(a["pend_rowid"], rid)
    keep_old = np.flatnonzero(~gone)
    new_p = np.flatnonzero(~ended)
    ids = np.concatenate([a["pend_rowid"][keep_old], rid[new_p]])
    o = np.argsort(ids, kind="stable")
    arrays |= {"pend_rowid": ids[o], "pend_z": np.vstack([a["pend_z"][keep_old], z[new_p]])[o],
               "pend_h1": np.vstack([a["pend_h1"][keep_old], h1[new_p]])[o]}
    arrays |= {key: a[key] for key in ("w1l", "b1", "r1", "w2l", "mean", "std", "params")}
    watermark = float(end[E].max()) + 1 if len(E) else W
    return arrays, watermark


def _first_layer(a, L, fr, E, n_old, z, sub, end, P_all, zk_all, kcols, prm) -> np.ndarray:
    """First-layer outputs of the jobs submitted at or after W (rows `fr` of L)."""
    k, k_knn, knn_ref, block_s = prm
    nb: list[list[np.ndarray]] = [[] for _ in fr]
    t = sub[fr]
    for kind in SHARED:
        olds: dict[str, np.ndarray] = {}
        order = np.lexsort((a[f"{kind}_rank"], a[f"{kind}_value"]))
        vals, rows = a[f"{kind}_value"][order], a[f"{kind}_row"][order]
        cut = np.flatnonzero(np.r_[True, vals[1:] != vals[:-1], True]) if len(vals) else []
        for i in range(len(cut) - 1):  # (no list at all: e.g. a trace without images)
            olds[str(vals[cut[i]])] = rows[cut[i]:cut[i + 1]]  # newest first
        qv = L[kind].astype(object).to_numpy()[fr]
        ev = L[kind].astype(object).to_numpy()[E]
        codes, _ = pd.factorize(pd.Series(np.concatenate([ev, qv]), dtype=object), use_na_sentinel=True)
        ec, qc = codes[:len(E)], codes[len(E):]
        h = np.flatnonzero(ec >= 0)
        ho = h[np.lexsort((h, end[E][h], ec[h]))]  # E is sorted by (end, rowid): h keeps that
        c, e = ec[ho].astype("float64"), end[E][ho]
        lo = min(float(np.nanmin(e)) if len(e) else 0.0, float(np.nanmin(t))) - 1
        span = max(float(np.nanmax(t)), float(np.nanmax(e)) if len(e) else 0.0) - lo + 2
        g = np.searchsorted(c * span + (e - lo), qc * span + (t - lo), side="left") - 1
        for j, q in enumerate(qc):
            if q < 0:
                continue
            got = []
            gj = g[j]
            while gj >= 0 and len(got) < k and ec[ho[gj]] == q:
                got.append(n_old + ho[gj])
                gj -= 1
            if len(got) < k:
                got.extend(olds.get(str(qv[j]), np.empty(0, dtype=np.int64))[:k - len(got)].tolist())
            if got:
                nb[j].append(np.asarray(got, dtype=np.int64))
    # kNN: the newest knn_ref ended before each new job's block, from the state's ref + E
    ref_end = np.concatenate([a["ref_end"], end[E]])
    ref_ids = np.concatenate([a["ref_row"], n_old + np.arange(len(E))])
    blk = np.floor(t / block_s) * block_s
    for b in np.unique(blk[np.isfinite(blk)]):
        qs = np.flatnonzero(blk == b)
        n = int(np.searchsorted(ref_end, b, side="left"))
        if n < knn_ref and not bool(a["ref_all"][0]):
            raise _NotExact("a new day's kNN reference set reaches below what the state kept")
        ref = ref_ids[max(0, n - knn_ref):n]
        if len(ref) < k_knn:
            continue
        from sklearn.neighbors import NearestNeighbors

        nn_ = NearestNeighbors(n_neighbors=k_knn).fit(zk_all[ref])
        idx = nn_.kneighbors(z[fr[qs]][:, kcols], return_distance=False)
        for j, row in zip(qs, idx):
            nb[j].append(ref[row])
    out = np.empty((len(fr), a["w1l"].shape[0]), dtype="float64")
    base = a["b1"].astype("float64") + z[fr].astype("float64") @ a["r1"].T.astype("float64")
    for j in range(len(fr)):
        m = P_all[np.concatenate(nb[j])].mean(axis=0) if nb[j] else 0.0
        out[j] = np.maximum(base[j] + m, 0)
    return out.astype("float32")


def features_since(store: Store, q: pd.DataFrame, hist: pd.DataFrame) -> np.ndarray:
    """Raw features (FEATURES order) of jobs `q`, all submitted at or after the summary's
    watermark: the summary's per-entity history (the ended jobs below it) combined with the
    jobs of `hist` (all ended at or after it) that ended before each submission. Equal to
    `features.build_features` over the whole store."""
    q, hist = with_shape(q), with_shape(hist)
    cols = _request_block(q)
    tmin, scale = time_frame(hist, q)
    for kind in ENTITY_KINDS:
        vals = q[kind].astype(object)
        keys = vals.where(vals.notna(), None).map(lambda v: None if v is None else str(v))
        base = entity_summary.frame(store, kind, keys.dropna().unique()).reindex(keys.to_numpy())
        for s_, v in _combined(kind, base, hist, q, tmin, scale).items():
            cols[f"{kind}_{s_}"] = v
    return pd.DataFrame(cols, index=q.index)[FEATURES].to_numpy(dtype="float64")


def _combined(kind: str, base: pd.DataFrame, hist: pd.DataFrame, q: pd.DataFrame, tmin: float,
              scale: float) -> dict[str, np.ndarray]:
    """One entity kind's STATS: the summary row (history below the watermark) followed by the
    newer jobs of `hist` (the same definitions as features._kind_block)."""
    def col(c: str) -> np.ndarray:
        return base[c].to_numpy(dtype="float64")

    n_q = len(q)
    nan = np.full(n_q, np.nan)
    x = asof(kind, hist, q, tmin, scale)
    c, e, qt, g, gi, valid, st = x.c, x.e, x.qt, x.g, x.gi, x.valid, x.st
    f = is_failed(hist)[x.rows].astype("float64")
    rt = hist["elapsed_s"].to_numpy(dtype="float64")[x.rows]
    rss = hist["max_rss_mb"].to_numpy(dtype="float64")[x.rows]
    m = np.where(valid, g + 1 - st, 0)
    gp, stv = np.where(valid, g + 1, 0), np.where(valid, st, 0)
    cf = np.concatenate([[0.0], np.cumsum(f)])
    cl = np.concatenate([[0.0], np.cumsum(np.nan_to_num(np.log1p(np.maximum(rt, 0)), nan=0.0))])
    cn = np.concatenate([[0.0], np.cumsum(~np.isnan(rt))])
    n0 = np.nan_to_num(col("n"))
    k0 = np.nan_to_num(col("recent_n")).astype(np.int64)
    bits0 = np.nan_to_num(col("recent_bits")).astype(np.int64)
    has_new, has_base = m > 0, n0 > 0
    n = n0 + m
    fails = np.nan_to_num(col("fails")) + (cf[gp] - cf[stv])
    n_rt = np.nan_to_num(col("n_rt")) + (cn[gp] - cn[stv])
    slog = np.nan_to_num(col("sum_logrt")) + (cl[gp] - cl[stv])
    mk = np.minimum(m, RECENT_K)
    lo = np.where(valid, np.maximum(st, g + 1 - RECENT_K), 0)
    base_bits = bits0 & ((np.int64(1) << (RECENT_K - mk).astype(np.int64)) - 1)

    def pick(new: np.ndarray, old: np.ndarray) -> np.ndarray:
        return np.where(has_new, new, np.where(has_base, old, nan))

    if len(c):
        last_rt_new, rss_new, f_new, e_new = rt[gi], rss[gi], f[gi], e[gi]
        prev_new = rt[np.clip(g - 1, 0, None)]
        cmax = pd.Series(np.where(np.isnan(rss), -np.inf, rss)).groupby(c).cummax().to_numpy()
        mx = np.where(valid, cmax[gi], np.nan)
        mx = np.where(np.isfinite(mx), mx, np.nan)
    else:
        last_rt_new = rss_new = f_new = e_new = prev_new = mx = nan
    with np.errstate(invalid="ignore", divide="ignore"):
        last_rt = pick(last_rt_new, col("last_rt"))
        prev_rt = np.where(m >= 2, prev_new,
                           np.where(m == 1, np.where(has_base, col("last_rt"), nan),
                                    np.where(k0 > 1, col("prev_rt"), nan)))
        both = np.vstack([last_rt, prev_rt])
        cnt = (~np.isnan(both)).sum(axis=0)
        return {
            "n": n.astype("float64"),
            "fail_rate": np.where(n > 0, fails / np.maximum(n, 1), nan),
            "recent_n": np.minimum(mk + k0, RECENT_K).astype("float64"),
            "recent_fails": (cf[gp] - cf[lo]) + np.bitwise_count(base_bits).astype("float64"),
            "last_fail": pick(f_new, col("last_fail")),
            "since_last_s": pick(qt - e_new, qt - col("last_end")),
            "mean_logrt": np.where(n_rt > 0, slog / np.maximum(n_rt, 1), nan),
            "last_rt": last_rt,
            "last2_rt": np.where(cnt > 0, np.nansum(both, axis=0) / np.maximum(cnt, 1), nan),
            "max_rss": np.fmax(col("max_rss"), mx),
            "last_rss": pick(rss_new, col("last_rss")),
        }
