"""Failure risk from a graph of similar earlier jobs (torch-geometric GraphSAGE).

Every job is a node. Its in-edges come only from jobs that had ENDED before it was submitted:
the last `k_shared` such jobs of the same user, job name and image, and its `k_knn` nearest
neighbours in standardised feature space among jobs ended before its (fixed, one-day) time
block began (sklearn NearestNeighbors). Messages from those neighbours carry their outcomes, which a deployed
jobmedic would know, so the model is inductive: a new job is scored by attaching it to its
earlier neighbours, and nothing it sees is from after its submission. It is compared with the
XGBoost model on the same split and averaged with it only if that helps on the validation slice.
"""
from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch_geometric.nn import SAGEConv

from jobmedic.knowledge.errors import ModelError
from jobmedic.models import artifacts, metrics, registry
from jobmedic.models.features import FEATURES, is_ended, is_failed

if TYPE_CHECKING:
    from jobmedic.knowledge.store import Store

KNN_FEATURES = [f for f in FEATURES if f.split("_", 1)[0] in ("user", "name") and f.split("_", 1)[1]
                in ("n", "fail_rate", "recent_fails", "last_fail", "mean_logrt")] + \
    ["req_cpus", "req_gpus", "req_mem_mb", "timelimit_s", "hour"]
DEFAULTS = {"hidden": 32, "epochs": 40, "lr": 0.01, "k_shared": 3, "k_knn": 5, "block_s": 86400,
            "knn_ref": 10000, "weight_decay": 1e-5}


class SageNet(nn.Module):
    """Two GraphSAGE layers whose messages carry the neighbour's known outcome."""

    def __init__(self, d: int, hidden: int) -> None:
        super().__init__()
        self.conv1 = SAGEConv((d + 1, d), hidden)
        self.conv2 = SAGEConv((hidden + 1, hidden), hidden)
        self.skip = nn.Linear(d, hidden)
        self.out = nn.Linear(2 * hidden, 1)

    def forward(self, x: torch.Tensor, y_src: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
        h1 = torch.relu(self.conv1((torch.cat([x, y_src], 1), x), edge_index))
        h2 = torch.relu(self.conv2((torch.cat([h1, y_src], 1), h1), edge_index))
        return self.out(torch.cat([h2, torch.relu(self.skip(x))], 1)).squeeze(1)


def standardise(X: np.ndarray, mean: np.ndarray | None = None, std: np.ndarray | None = None):
    Z = np.sign(X) * np.log1p(np.abs(X))
    if mean is None:
        with np.errstate(all="ignore"), __import__("warnings").catch_warnings():
            __import__("warnings").simplefilter("ignore", RuntimeWarning)  # all-missing columns
            mean, std = np.nanmean(Z, 0), np.nanstd(Z, 0)
        mean, std = np.nan_to_num(mean), np.where(np.nan_to_num(std) > 0, np.nan_to_num(std), 1.0)
    return np.nan_to_num((Z - mean) / std).astype("float32"), mean, std


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


def build_graph(df: pd.DataFrame, X: pd.DataFrame, p: dict[str, Any], mean=None, std=None):
    """(node features, neighbour outcome channel, edge_index, mean, std) for all rows of df."""
    Zall, mean, std = standardise(X[FEATURES].to_numpy(), mean, std)
    kcols = [FEATURES.index(f) for f in KNN_FEATURES]
    parts = [_shared_edges(df, k, p["k_shared"]) for k in ("user", "name", "image")]
    parts.append(_knn_edges(df, Zall[:, kcols], p))
    src = np.concatenate([s for s, _ in parts])
    dst = np.concatenate([d for _, d in parts])
    y_src = np.where(is_ended(df), is_failed(df), 0).astype("float32")[:, None]
    ei = torch.from_numpy(np.vstack([src, dst]).astype(np.int64))
    return torch.from_numpy(Zall), torch.from_numpy(y_src), ei, mean, std


def _fit(net, x, ys, ei, train_idx, y, p) -> None:
    opt = torch.optim.Adam(net.parameters(), lr=p["lr"], weight_decay=p["weight_decay"])
    pos = max(float(y[train_idx].mean()), 1e-4)
    loss_fn = nn.BCEWithLogitsLoss(pos_weight=torch.tensor(min((1 - pos) / pos, 50.0) ** 0.5))
    ti = torch.from_numpy(train_idx)
    yt = torch.from_numpy(y[train_idx].astype("float32"))
    for _ in range(p["epochs"]):
        net.train()
        opt.zero_grad()
        loss = loss_fn(net(x, ys, ei)[ti], yt)
        loss.backward()
        opt.step()


def _logits(net, x, ys, ei) -> np.ndarray:
    net.eval()
    with torch.no_grad():
        return net(x, ys, ei).numpy()


def train(store: Store, models_dir: str, until: int | None, scope: Sequence[str] | None = None, *,
          frame=None, cal_fraction: float = 0.2, holdout_fraction: float = 0.2,
          params: dict[str, Any] | None = None) -> dict[str, Any]:
    from jobmedic.models import boosting, training

    torch.set_num_threads(2)
    torch.manual_seed(0)
    t0 = time.perf_counter()
    p = DEFAULTS | (params or {})
    df, X = frame if frame is not None else training.load(store, scope)
    df, X = df.reset_index(drop=True), X.reset_index(drop=True)
    until = training.default_until(df, holdout_fraction) if until is None else int(until)
    y = is_failed(df).astype(int)
    lab = np.flatnonzero(is_ended(df) & (df["submit_time"].to_numpy() < until)
                         & (df["end_time"].to_numpy() < until))
    lab = lab[np.argsort(df["submit_time"].to_numpy()[lab], kind="stable")]
    cut = int(len(lab) * (1 - cal_fraction))
    fit_i, val_i = lab[:cut], lab[cut:]
    if len(fit_i) < 50 or y[fit_i].sum() == 0:
        raise ModelError("too few labelled jobs (or no failures) to train the gnn model",
                         "ingest more history or pass a later --until")
    x, ys, ei, mean, std = build_graph(df, X, p)
    t_graph = time.perf_counter() - t0
    net = SageNet(x.shape[1], p["hidden"])
    _fit(net, x, ys, ei, fit_i, y, p)
    raw = 1 / (1 + np.exp(-_logits(net, x, ys, ei)))
    cal = boosting.fit_calibration(raw[val_i], y[val_i])
    pg = boosting.apply_calibration(cal, raw)
    val = {"gnn": metrics.classification(y[val_i], pg[val_i])}
    ensemble = False
    try:
        xgb_model, _ = registry.load(models_dir, "failure")
        px = xgb_model.predict_proba(X.loc[val_i, FEATURES].to_numpy())[:, 1]
        val["xgboost"] = metrics.classification(y[val_i], px)
        val["ensemble"] = metrics.classification(y[val_i], (px + pg[val_i]) / 2)
        ensemble = val["ensemble"]["auprc"] > max(val["xgboost"]["auprc"], val["gnn"]["auprc"])
    except ModelError as exc:
        val["xgboost"] = {"error": exc.message}
    card = {"window": {"until": training._iso(until), "until_epoch": until,
                       "train_from": training._iso(df["submit_time"].min())},
            "counts": {"nodes": len(df), "edges": int(ei.shape[1]), "fit": len(fit_i),
                       "validation": len(val_i)},
            "validation": val, "ensemble_with_xgboost": bool(ensemble), "params": p,
            "graph_seconds": round(t_graph, 1), "train_seconds": round(time.perf_counter() - t0, 1)}
    path = artifacts.save(models_dir, "gnn", {"model.pt": lambda f: torch.save(net.state_dict(), f)},
                          {"features": FEATURES, "params": p, "mean": mean.tolist(),
                           "std": std.tolist(), "calibration": cal, "card": card})
    card["version"], card["path"] = path.name, str(path)
    return card


def load(d: Path, meta: dict[str, Any]) -> tuple[SageNet, dict[str, Any]]:
    net = SageNet(len(meta["features"]), int(meta["params"]["hidden"]))
    try:
        state = torch.load(d / "model.pt", weights_only=True, map_location="cpu")
        net.load_state_dict(state)
    except Exception as exc:  # noqa: BLE001 - any unreadable state dict is refused the same way
        raise ModelError(f"cannot read the gnn model {d / 'model.pt'}: {exc}",
                         "retrain with `jobmedic train gnn`") from None
    return net, meta


def evaluate(store: Store, models_dir: str, start: int, end: int | None = None,
             scope: Sequence[str] | None = None, frame=None) -> dict[str, Any]:
    """Score every job inductively (edges to earlier ended jobs only) and report the window."""
    from jobmedic.models import boosting, training

    torch.set_num_threads(2)
    (net, meta), _ = registry.load(models_dir, "gnn")
    df, X = frame if frame is not None else training.load(store, scope)
    df, X = df.reset_index(drop=True), X.reset_index(drop=True)
    x, ys, ei, _, _ = build_graph(df, X, meta["params"], np.asarray(meta["mean"]), np.asarray(meta["std"]))
    pg = boosting.apply_calibration(meta["calibration"], 1 / (1 + np.exp(-_logits(net, x, ys, ei))))
    sub = df["submit_time"].to_numpy()
    sel = is_ended(df) & (sub >= start) & ((sub < end) if end is not None else True)
    y = is_failed(df).astype(int)[sel]
    card = meta["card"]
    res = {"kind": "gnn", "version": meta["version"], "train_window": card["window"],
           "test_window": {"from": training._iso(start), "to": training._iso(end) if end else None},
           "metrics": {"gnn": metrics.classification(y, pg[sel])},
           "ensemble_with_xgboost": card["ensemble_with_xgboost"]}
    try:
        xm, _ = registry.load(models_dir, "failure")
        px = xm.predict_proba(X.loc[sel, FEATURES].to_numpy())[:, 1]
        res["metrics"]["xgboost"] = metrics.classification(y, px)
        res["metrics"]["ensemble"] = metrics.classification(y, (px + pg[sel]) / 2)
    except ModelError as exc:
        res["metrics"]["xgboost"] = {"error": exc.message}
    return res
