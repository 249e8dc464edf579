"""The GNN + XGBoost ensemble for ONE new job, in numpy, from a precomputed serving state.

A new job is a node whose in-edges come from jobs that ended before its submission (models/
gnn_graph.py): the last `k_shared` of its user, job name and image, and its `k_knn` nearest
neighbours among the `knn_ref` jobs that ended most recently before its one-day block began.
GraphSAGE's mean aggregation is linear, so each earlier job j contributes two precomputed
vectors: p_j = W1·[x_j, y_j] (layer 1) and q_j = W2·[h1_j, y_j] (layer 2, h1_j being j's own
first-layer output in the full graph). The new job's score is then

    h1 = relu(b1 + mean(p_N) + R1·x),  h2 = relu(b2 + mean(q_N) + R2·h1),
    logit = out([h2, relu(S·x + s)])

with N its neighbours (a multiset, as in the graph): no torch at serving time. The state keeps,
per user / name / image, the last `k_shared` ended jobs' p and q, and the 2 x `knn_ref` most
recently ended jobs' p, q and kNN coordinates; it is computed from the full graph when the gnn
model is trained (`build_state`), brought forward after each load by models/gnn_refresh.py
(tests/models/test_gnn_serving.py checks it equals a full build), and is exact below its
watermark. The ensemble is used only
when the state is exact at the prediction's moment (no job ended since the watermark) and the
caller is unscoped (neighbours may belong to any project); tests/models/test_gnn_serving.py
checks a new job's score against the full-graph GraphSAGE with that job appended.
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from jobmedic.knowledge import gnn_state
from jobmedic.models.features import FEATURES, is_ended

if TYPE_CHECKING:
    from jobmedic.knowledge.store import Store

SHARED = ("user", "name", "image")
#: The kNN coordinates: the user's and job name's history, and the request.
KNN_FEATURES = [f for f in FEATURES if f.split("_", 1)[0] in ("user", "name") and f.split("_", 1)[1]
                in ("n", "fail_rate", "recent_fails", "last_fail", "mean_logrt")] + \
    ["req_cpus", "req_gpus", "req_mem_mb", "timelimit_s", "hour"]


def standardise(X: np.ndarray, mean: np.ndarray | None = None, std: np.ndarray | None = None):
    """(signed log, centred and scaled features as float32, mean, std); the mean and scale
    are fitted when not given."""
    import warnings

    Z = np.sign(X) * np.log1p(np.abs(X))
    if mean is None:
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-missing columns
            mean, std = np.nanmean(Z, 0), np.nanstd(Z, 0)
        mean, std = np.nan_to_num(mean), np.where(np.nan_to_num(std) > 0, np.nan_to_num(std), 1.0)
    return np.nan_to_num((Z - mean) / std).astype("float32"), mean, std


def build_state(store: Store, model: Any, frame: tuple[pd.DataFrame, pd.DataFrame]) -> dict[str, Any]:
    """Compute and store the serving state of `model` (a trained gnn with `version_`) over the
    jobs of `frame` (the whole store, in rowid order); returns what was stored. Besides the
    neighbour terms it keeps what the incremental refresh (models/gnn_refresh.py) needs: the
    first-layer weights, the feature scaling, and each job not yet ended with its standardised
    features and first-layer output (both fixed at its submission)."""
    import torch


    t0 = time.perf_counter()
    df, _ = frame
    g = model.inputs(frame, np.arange(len(df)))
    net, p = model.net_, model.params
    with torch.no_grad():
        net.eval()
        xy = torch.cat([g.x, g.y_src], 1)
        h1 = net.first_layer(g.x, g.y_src, g.edge_index)
        P = (xy @ net.conv1.lin_l.weight.T).numpy()
        Q = (torch.cat([h1, g.y_src], 1) @ net.conv2.lin_l.weight.T).numpy()
    ended = is_ended(df)
    end = df["end_time"].to_numpy(dtype="float64")
    ids = gnn_state.rowids(store)
    refreshable = len(ids) == len(df)  # the frame is the whole store: positions are rowids
    if not refreshable:
        ids = np.arange(len(df), dtype=np.int64)
    kcols = [FEATURES.index(f) for f in KNN_FEATURES]
    x = g.x.numpy()
    e = np.flatnonzero(ended)
    values = {kind: df[kind].astype(object).to_numpy()[e] for kind in SHARED}
    arrays = assemble(ids[e], end[e], values, P[e], Q[e], x[e][:, kcols], int(p["k_shared"]),
                      2 * int(p["knn_ref"]), len(e) <= 2 * int(p["knn_ref"]))
    sd = {k: v.detach().numpy() for k, v in net.state_dict().items()}
    arrays |= {"w1l": sd["conv1.lin_l.weight"], "b1": sd["conv1.lin_l.bias"],
               "r1": sd["conv1.lin_r.weight"], "w2l": sd["conv2.lin_l.weight"],
               "mean": np.asarray(model.mean_, dtype="float64"), "std": np.asarray(model.std_, dtype="float64"),
               "params": np.array([p["k_shared"], p["k_knn"], p["knn_ref"], p["block_s"]], dtype="float64")}
    if refreshable:
        pend = np.flatnonzero(~ended)
        arrays |= {"pend_rowid": ids[pend], "pend_z": x[pend],
                   "pend_h1": h1.numpy()[pend].astype("float32")}
    top = end[ended].max() if ended.any() else 0.0
    watermark = float(top) + 1
    size = gnn_state.save(store, model.version_, watermark, arrays, int(time.time()))
    return {"jobs": len(df), "kept_rows": len(arrays["p"]), "pending": len(arrays.get("pend_rowid", ())),
            "bytes": size, "watermark": watermark, "seconds": round(time.perf_counter() - t0, 2)}


def assemble(row_id: np.ndarray, row_end: np.ndarray, values: dict[str, np.ndarray], P: np.ndarray,
             Q: np.ndarray, zk: np.ndarray, k: int, n_ref: int, ref_all: bool) -> dict[str, np.ndarray]:
    """The state's neighbour arrays from candidate ended jobs (store rowid, end time, their
    user / name / image (None: not a candidate for that kind), p, q, kNN coordinates): per
    value the newest `k` by (end time, rowid), the newest `n_ref` overall, and the rows those
    name, in rowid order. Shared by the full build and the incremental refresh, so both give
    the same arrays for the same jobs."""
    arrays: dict[str, np.ndarray] = {}
    listed = []
    for kind in SHARED:
        ok = np.flatnonzero(pd.notna(values[kind]))
        vals = values[kind][ok].astype(str)
        order = np.lexsort((row_id[ok], row_end[ok], vals))  # by value, then end time, then rowid
        o, sv = ok[order], vals[order]
        rank = pd.Series(sv).groupby(sv).cumcount(ascending=False).to_numpy()  # 0: newest
        keep = rank < k
        arrays[f"{kind}_value"] = sv[keep].astype("U")
        arrays[f"{kind}_rank"] = rank[keep]
        arrays[f"{kind}_row"] = o[keep]
        listed.append(o[keep])
    ref = np.lexsort((row_id, row_end))[-n_ref:] if n_ref > 0 else np.empty(0, dtype=np.int64)
    rows = np.unique(np.concatenate(listed + [ref]).astype(np.int64))
    rows = rows[np.argsort(row_id[rows], kind="stable")]  # only the rows anyone can meet
    inv = np.full(len(row_id), -1, dtype=np.int64)
    inv[rows] = np.arange(len(rows))
    for kind in SHARED:
        arrays[f"{kind}_row"] = inv[arrays[f"{kind}_row"]]
    arrays["ref_row"], arrays["ref_end"] = inv[ref], row_end[ref].astype("float64")
    arrays["ref_all"] = np.array([bool(ref_all)])  # every ended job is in ref
    arrays["p"], arrays["q"] = P[rows].astype("float32"), Q[rows].astype("float32")
    arrays["zk"] = zk[rows].astype("float32")
    arrays["row_id"], arrays["row_end"] = row_id[rows].astype(np.int64), row_end[rows].astype("float64")
    return arrays


class GnnServer:
    """The numpy scorer of one new job, from a gnn model and its serving state."""

    def __init__(self, model: Any, state: dict[str, Any]) -> None:
        sd = {k: v.detach().numpy().astype("float64") for k, v in model.net_.state_dict().items()}
        self.W1b, self.R1 = sd["conv1.lin_l.bias"], sd["conv1.lin_r.weight"]
        self.W2b, self.R2 = sd["conv2.lin_l.bias"], sd["conv2.lin_r.weight"]
        self.S, self.s = sd["skip.weight"], sd["skip.bias"]
        self.O, self.o = sd["out.weight"][0], float(sd["out.bias"][0])
        self.model, self.params = model, model.params
        a = state["arrays"]
        self.watermark = state["watermark"]
        self.P, self.Q = a["p"].astype("float64"), a["q"].astype("float64")
        self.zk = a["zk"].astype("float32")
        self.ref_row, self.ref_end, self.ref_all = a["ref_row"], a["ref_end"], bool(a["ref_all"][0])
        self.shared: dict[str, dict[str, np.ndarray]] = {}
        for kind in SHARED:
            rows: dict[str, list[tuple[int, int]]] = {}
            for v, r, row in zip(a[f"{kind}_value"], a[f"{kind}_rank"], a[f"{kind}_row"]):
                rows.setdefault(str(v), []).append((int(r), int(row)))
            self.shared[kind] = {v: np.array([row for _, row in sorted(x)]) for v, x in rows.items()}
        self._knn: tuple[float, Any, np.ndarray] | None = None
        self.kcols = [FEATURES.index(f) for f in KNN_FEATURES]

    def _knn_for(self, block: float) -> tuple[Any, np.ndarray] | None:
        """(fitted NearestNeighbors, state rows) of the reference set of the block starting at
        `block`; None when the state cannot say which jobs those are."""
        if self._knn is not None and self._knn[0] == block:
            return self._knn[1], self._knn[2]
        n = int(np.searchsorted(self.ref_end, block, side="left"))
        kr = int(self.params["knn_ref"])
        if n < kr and not self.ref_all:  # older jobs before the block were not kept
            return None
        ref = self.ref_row[max(0, n - kr):n]
        if len(ref) < int(self.params["k_knn"]):
            nn_ = None
        else:
            from sklearn.neighbors import NearestNeighbors

            nn_ = NearestNeighbors(n_neighbors=int(self.params["k_knn"])).fit(self.zk[ref])
        self._knn = (block, nn_, ref)
        return nn_, ref

    def score(self, x: np.ndarray, spec: dict[str, Any], now: float) -> float | None:
        """Calibrated GNN probability of one job with raw features `x` submitted at `now`;
        None when the state is not exact for that moment."""
        if now < self.watermark:
            return None
        z, _, _ = standardise(np.asarray(x, dtype="float64")[None, :], self.model.mean_,
                                         self.model.std_)
        z = z[0].astype("float64")
        nb = [self.shared[k][str(spec[k])] for k in SHARED
              if spec.get(k) not in (None, "") and str(spec[k]) in self.shared[k]]
        blk = np.floor(now / float(self.params["block_s"])) * float(self.params["block_s"])
        knn = self._knn_for(blk)
        if knn is None:
            return None
        nn_, ref = knn
        if nn_ is not None:
            q = z[self.kcols].astype("float32")[None, :]
            tree = getattr(nn_, "_tree", None)
            if getattr(nn_, "_fit_method", "") in ("kd_tree", "ball_tree") and tree is not None:
                # the fitted tree itself: what kneighbors asks, without its per-call checks
                idx = tree.query(q, k=int(self.params["k_knn"]), return_distance=False)[0]
            else:
                idx = nn_.kneighbors(q, return_distance=False)[0]
            nb.append(ref[idx])
        rows = np.concatenate(nb) if nb else np.empty(0, dtype=np.int64)
        m1 = self.P[rows].mean(axis=0) if len(rows) else 0.0
        m2 = self.Q[rows].mean(axis=0) if len(rows) else 0.0
        h1 = np.maximum(self.W1b + m1 + self.R1 @ z, 0)
        h2 = np.maximum(self.W2b + m2 + self.R2 @ h1, 0)
        logit = float(self.O @ np.concatenate([h2, np.maximum(self.S @ z + self.s, 0)]) + self.o)
        raw = 1 / (1 + np.exp(-logit))
        from jobmedic.models import boosting  # xgboost: not for the refresh's imports

        return float(boosting.apply_calibration(self.model.calibration_, np.array([raw]))[0])
