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
model is trained (`build_state`) and is exact below its watermark. The ensemble is used only
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
from jobmedic.models import boosting
from jobmedic.models.features import FEATURES, is_ended

if TYPE_CHECKING:
    from jobmedic.knowledge.store import Store

SHARED = ("user", "name", "image")


def build_state(store: Store, model: Any, frame: tuple[pd.DataFrame, pd.DataFrame]) -> dict[str, Any]:
    """Compute and store the serving state of `model` (a trained gnn with `version_`) over the
    jobs of `frame` (the whole store); returns what was stored."""
    import torch

    from jobmedic.models import gnn_graph

    t0 = time.perf_counter()
    df, _ = frame
    g = model.inputs(frame, np.arange(len(df)))
    net, p = model.net_, model.params
    with torch.no_grad():
        net.eval()
        xy = torch.cat([g.x, g.y_src], 1)
        h1 = torch.relu(net.conv1((xy, g.x), g.edge_index))
        P = (xy @ net.conv1.lin_l.weight.T).numpy()
        Q = (torch.cat([h1, g.y_src], 1) @ net.conv2.lin_l.weight.T).numpy()
    ended = is_ended(df)
    end = df["end_time"].to_numpy(dtype="float64")
    pos = np.arange(len(df))
    arrays: dict[str, np.ndarray] = {}
    k = int(p["k_shared"])
    for kind in SHARED:
        v = df[kind].astype(object)
        ok = np.flatnonzero(ended & v.notna().to_numpy())
        vals = v.to_numpy()[ok].astype(str)
        order = np.lexsort((pos[ok], end[ok], vals))  # by value, then end time, then row order
        o, sv = ok[order], vals[order]
        rank = pd.Series(sv).groupby(sv).cumcount(ascending=False).to_numpy()  # 0: newest
        keep = rank < k
        arrays[f"{kind}_value"] = sv[keep].astype("U")
        arrays[f"{kind}_rank"] = rank[keep]
        arrays[f"{kind}_row"] = o[keep]
    n_ref = 2 * int(p["knn_ref"])
    by_end = np.flatnonzero(ended)[np.lexsort((pos[ended], end[ended]))]
    ref = by_end[-n_ref:]
    kcols = [FEATURES.index(f) for f in gnn_graph.KNN_FEATURES]
    rows = np.unique(np.concatenate([arrays[f"{k_}_row"] for k_ in SHARED] + [ref]))
    remap = {r: i for i, r in enumerate(rows)}  # only the rows anyone can meet are kept
    for kind in SHARED:
        arrays[f"{kind}_row"] = np.array([remap[r] for r in arrays[f"{kind}_row"]], dtype=np.int64)
    arrays["ref_row"] = np.array([remap[r] for r in ref], dtype=np.int64)
    arrays["ref_end"] = end[ref]
    arrays["ref_all"] = np.array([len(ref) == len(by_end)])  # every ended job is in ref
    arrays["p"], arrays["q"] = P[rows].astype("float32"), Q[rows].astype("float32")
    arrays["zk"] = g.x.numpy()[rows][:, kcols]
    top = end[ended].max() if ended.any() else 0.0
    watermark = float(top) + 1
    size = gnn_state.save(store, model.version_, watermark, arrays, int(time.time()))
    return {"jobs": len(df), "kept_rows": len(rows), "bytes": size, "watermark": watermark,
            "seconds": round(time.perf_counter() - t0, 2)}


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
        from jobmedic.models import gnn_graph

        self.kcols = [FEATURES.index(f) for f in gnn_graph.KNN_FEATURES]

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
        from jobmedic.models import gnn_graph

        if now < self.watermark:
            return None
        z, _, _ = gnn_graph.standardise(np.asarray(x, dtype="float64")[None, :], self.model.mean_,
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
        return float(boosting.apply_calibration(self.model.calibration_, np.array([raw]))[0])
