"""The job graph and the GraphSAGE network behind the gnn model kind (models/gnn.py).

Every job is a node. Its in-edges come only from jobs that had ENDED before it was submitted:
the last `k_shared` such jobs of the same user, job name and image, and its `k_knn` nearest
neighbours in standardised feature space among jobs ended before its (fixed, one-day) time
block began (sklearn NearestNeighbors). Messages from those neighbours carry their outcomes,
which a deployed jobmedic would know, so the model is inductive: a new job is scored by
attaching it to its earlier neighbours, and nothing it sees is from after its submission.
Imported only when a gnn model is trained or loaded (torch is heavy).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch_geometric.nn import SAGEConv

from jobmedic.models.features import FEATURES, is_ended, is_failed
from jobmedic.models.gnn_serving import KNN_FEATURES, standardise


class SageNet(nn.Module):
    """Two GraphSAGE layers whose messages carry the neighbour's known outcome.

    The layers are torch-geometric SAGEConv modules (their weights are the artifact), applied
    as mean aggregation is linear: each layer's neighbour weight is applied to every node
    first, then averaged over its in-edges with one sparse (CSR) product, `mean_adjacency`. The
    same output as SAGEConv's gather-then-scatter, without the edges x features message
    tensors (85 columns for the first layer) it builds on every pass."""

    def __init__(self, d: int, hidden: int) -> None:
        super().__init__()
        self.conv1 = SAGEConv((d + 1, d), hidden)
        self.conv2 = SAGEConv((hidden + 1, hidden), hidden)
        self.skip = nn.Linear(d, hidden)
        self.out = nn.Linear(2 * hidden, 1)

    @staticmethod
    def _layer(conv: SAGEConv, A: torch.Tensor, src: torch.Tensor, root: torch.Tensor) -> torch.Tensor:
        agg = A @ nn.functional.linear(src, conv.lin_l.weight)  # mean of W·[h_j, y_j]
        return torch.relu(agg + conv.lin_l.bias + conv.lin_r(root))

    def forward(self, x: torch.Tensor, y_src: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
        """Logits of every node; `edge_index` may be a prebuilt `mean_adjacency`."""
        A = edge_index if edge_index.layout != torch.strided else mean_adjacency(edge_index, len(x))
        h1 = self._layer(self.conv1, A, torch.cat([x, y_src], 1), x)
        h2 = self._layer(self.conv2, A, torch.cat([h1, y_src], 1), h1)
        return self.out(torch.cat([h2, torch.relu(self.skip(x))], 1)).squeeze(1)

    def first_layer(self, x: torch.Tensor, y_src: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
        A = mean_adjacency(edge_index, len(x))
        return self._layer(self.conv1, A, torch.cat([x, y_src], 1), x)


def mean_adjacency(edge_index: torch.Tensor, n: int) -> torch.Tensor:
    """The n x n CSR matrix whose row i averages node i's in-edges (a repeated edge counts
    each time, as in the graph's multiset; a row with none is zero)."""
    import warnings

    src, dst = edge_index[0], edge_index[1]
    deg = torch.bincount(dst, minlength=n).clamp(min=1).to(torch.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "sparse CSR support is in beta"
        A = torch.sparse_coo_tensor(torch.stack([dst, src]), 1.0 / deg[dst], (n, n)).coalesce()
        return A.to_sparse_csr()


def _shared_edges(df: pd.DataFrame, kind: str, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Edges from the last k jobs of the same `kind` value that ended before each submit."""
    ended = is_ended(df)
    codes, _ = pd.factorize(df[kind], use_na_sentinel=True)
    hpos = np.flatnonzero(ended & (codes >= 0))
    order = hpos[np.lexsort((hpos, df["end_time"].to_numpy()[hpos], codes[hpos]))]
    c, e = codes[order], df["end_time"].to_numpy()[order]
    t = df["submit_time"].to_numpy(dtype="float64")
    lo, span = min(np.nanmin(e) if len(e) else 0, np.nanmin(t)) - 1, 1.0
    span = max(np.nanmax(t), np.nanmax(e) if len(e) else 0) - lo + 2
    key = c * span + (e - lo)
    qkey = codes * span + (t - lo)
    g = np.searchsorted(key, qkey, side="left") - 1
    src, dst = [], []
    for j in range(k):
        gj = g - j
        ok = (codes >= 0) & (gj >= 0) & np.isfinite(t)
        ok[ok] &= c[gj[ok]] == codes[ok]
        src.append(order[gj[ok]])
        dst.append(np.flatnonzero(ok))
    return np.concatenate(src), np.concatenate(dst)


def _knn_edges(df: pd.DataFrame, Z: np.ndarray, p: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """Edges from the k nearest jobs (feature space) that ended before the job's time block."""
    from sklearn.neighbors import NearestNeighbors

    t = df["submit_time"].to_numpy(dtype="float64")
    end = np.where(is_ended(df), df["end_time"].to_numpy(dtype="float64"), np.inf)
    by_end = np.argsort(end, kind="stable")
    # fixed-width blocks on the epoch grid: a job's neighbours never depend on later jobs
    blk = np.floor(t / p["block_s"])
    src, dst = [], []
    for bi in np.unique(blk[np.isfinite(blk)]):
        a = bi * p["block_s"]
        q = np.flatnonzero(blk == bi)
        n_ref = int(np.searchsorted(end[by_end], a, side="left"))
        ref = by_end[max(0, n_ref - p["knn_ref"]):n_ref]
        if len(q) == 0 or len(ref) < p["k_knn"]:
            continue
        nn_ = NearestNeighbors(n_neighbors=p["k_knn"]).fit(Z[ref])
        idx = nn_.kneighbors(Z[q], return_distance=False)
        src.append(ref[idx].ravel())
        dst.append(np.repeat(q, p["k_knn"]))
    if not src:
        return np.empty(0, int), np.empty(0, int)
    return np.concatenate(src), np.concatenate(dst)


def build_graph(df: pd.DataFrame, X: pd.DataFrame, p: dict[str, Any], mean=None, std=None,
                fit_rows: np.ndarray | None = None):
    """(node features, neighbour outcome channel, edge_index, mean, std) for all rows of df;
    without a mean and scale they are fitted on `fit_rows` (default: every row)."""
    raw = X[FEATURES].to_numpy()
    if mean is None and fit_rows is not None:
        _, mean, std = standardise(raw[np.asarray(fit_rows)])  # the training rows only
    Zall, mean, std = standardise(raw, mean, std)
    kcols = [FEATURES.index(f) for f in KNN_FEATURES]
    parts = [_shared_edges(df, k, p["k_shared"]) for k in ("user", "name", "image")]
    parts.append(_knn_edges(df, Zall[:, kcols], p))
    src = np.concatenate([s for s, _ in parts])
    dst = np.concatenate([d for _, d in parts])
    y_src = np.where(is_ended(df), is_failed(df), 0).astype("float32")[:, None]
    ei = torch.from_numpy(np.vstack([src, dst]).astype(np.int64))
    return torch.from_numpy(Zall), torch.from_numpy(y_src), ei, mean, std


def fit(net, x, ys, ei, train_idx: np.ndarray, y_train: np.ndarray, p: dict[str, Any],
        submit: np.ndarray | None = None) -> None:
    """Full-batch training: the loss on the `train_idx` nodes, whose targets are `y_train`.
    With the nodes' `submit` times, only the part of the graph the loss can reach is kept: the
    nodes submitted up to the last training node and the in-neighbours of those (every edge
    comes from a job ended before its target's submission, so that is both layers' inputs)."""
    train_idx = np.asarray(train_idx, dtype=np.int64)
    if submit is not None and len(train_idx):
        keep = np.asarray(submit, dtype="float64") <= np.nanmax(np.asarray(submit)[train_idx])
        keep[train_idx] = True
        src, dst = ei.numpy()
        into = keep[dst]
        keep[src[into]] = True
        nodes = np.flatnonzero(keep)
        new = np.full(len(keep), -1, dtype=np.int64)
        new[nodes] = np.arange(len(nodes))
        x, ys = x[torch.from_numpy(nodes)], ys[torch.from_numpy(nodes)]
        ei = torch.from_numpy(np.vstack([new[src[into]], new[dst[into]]]))
        train_idx = new[train_idx]
    A = mean_adjacency(ei, len(x))
    opt = torch.optim.Adam(net.parameters(), lr=p["lr"], weight_decay=p["weight_decay"])
    pos = max(float(y_train.mean()), 1e-4)
    loss_fn = nn.BCEWithLogitsLoss(pos_weight=torch.tensor(min((1 - pos) / pos, 50.0) ** 0.5))
    ti = torch.from_numpy(train_idx)
    yt = torch.from_numpy(np.asarray(y_train).astype("float32"))
    for _ in range(p["epochs"]):
        net.train()
        opt.zero_grad()
        loss = loss_fn(net(x, ys, A)[ti], yt)
        loss.backward()
        opt.step()


def logits(net, x, ys, ei) -> np.ndarray:
    net.eval()
    with torch.no_grad():
        return net(x, ys, ei).numpy()
