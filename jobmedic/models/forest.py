"""A trained XGBoost booster as flat numpy arrays, for scoring ONE job (or a handful) without
XGBoost's per-call overhead: building a DMatrix and waking its thread pool cost 0.3 ms on an
idle machine and 5-25 ms on the loaded 2-core one, while walking 300-1,200 trees of depth 6
for one row is six vectorised numpy steps (all trees at once, one level per step).

The arrays come from the booster's own JSON dump (`save_raw("json")`, no pickle) and follow
XGBoost's rules exactly: a missing value takes the node's default direction, otherwise
`x < split` (both float32) goes left; a tree's output is its leaf value; the margin is the
base score plus the sum of the trees of each output. `contributions` reproduces XGBoost's
`pred_contribs=True, approx_contribs=True` (Saabas path attributions on cover-weighted node
means). tests/models/test_forest.py checks both against the booster on random rows with
missing values. Large batches stay with XGBoost (`inplace_predict`), which is faster there.
The arrays are saved beside a newly trained booster (forest.npz, listed and hashed in the
manifest, read with allow_pickle=False); older artifacts compile them on first use.
"""
from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np

#: Rows up to which the numpy walk is used; above it XGBoost's batch prediction wins.
SMALL = 8
#: Deepest trees walked (a depth-d tree becomes 2^(d+1) - 1 heap slots).
MAX_DEPTH = 12
FILE = "forest.npz"


class Forest:
    """The trees of one booster (numeric splits only) as complete binary trees of one depth
    (a shallower leaf is copied into the whole subtree below it), walked level by level in
    numpy: node i's children are 2i+1 and 2i+2, so a step is a handful of vectorised ops."""

    #: The arrays that define a Forest.
    ARRAYS = ("fi", "thr", "mean", "group", "base", "meta")

    def __init__(self, arrays: dict[str, np.ndarray]) -> None:
        # fi: (trees, 2^d - 1) split feature, + n_features where a missing value goes right
        self.fi = np.asarray(arrays["fi"], dtype=np.int64)
        self.thr = np.asarray(arrays["thr"], dtype=np.float32)
        self.mean = np.asarray(arrays["mean"], dtype="float64")  # (trees, 2^(d+1) - 1)
        self.group = np.asarray(arrays["group"], dtype=np.int64)
        self.base = np.asarray(arrays["base"], dtype="float64").ravel()
        meta = np.asarray(arrays["meta"]).ravel()
        if self.fi.ndim != 2 or len(meta) < 2:
            raise ValueError("inconsistent forest arrays")
        self.n_features, self.logistic = int(meta[0]), bool(meta[1])
        self.n_out = len(self.base)
        t, inner = self.fi.shape
        self.depth = int(np.log2(inner + 1))
        if (2 ** self.depth != inner + 1 or self.mean.shape != (t, 2 * inner + 1)
                or self.thr.shape != (t, inner) or self.group.shape != (t,) or self.n_out < 1
                or self.fi.min(initial=0) < 0 or self.fi.max(initial=0) >= 2 * self.n_features
                or self.group.min(initial=0) < 0 or self.group.max(initial=0) >= self.n_out):
            raise ValueError("inconsistent forest arrays")
        self._off = np.arange(t, dtype=np.int64) * inner
        self._moff = np.arange(t, dtype=np.int64) * (2 * inner + 1)
        self._fi, self._thr, self._mean = self.fi.ravel(), self.thr.ravel(), self.mean.ravel()

    @classmethod
    def from_booster(cls, booster: Any, max_depth: int = MAX_DEPTH) -> Forest:
        return cls(compile_booster(booster, max_depth))

    def arrays(self) -> dict[str, np.ndarray]:
        return {"fi": self.fi, "thr": self.thr, "mean": self.mean, "group": self.group,
                "base": self.base, "meta": np.array([self.n_features, int(self.logistic)])}

    def save(self, path: Path) -> None:
        buf = io.BytesIO()
        np.savez(buf, **self.arrays())
        Path(path).write_bytes(buf.getvalue())

    @classmethod
    def read(cls, path: Path) -> Forest:
        with np.load(path, allow_pickle=False) as z:
            return cls({k: z[k] for k in cls.ARRAYS})

    def _walk(self, x: np.ndarray, contribs: np.ndarray | None = None) -> np.ndarray:
        """Heap slot (in the tree's full heap) of the leaf every tree sends row `x` to; adds
        the path attributions to `contribs` when given."""
        x = np.asarray(x, dtype=np.float32)
        nan = np.isnan(x)
        # a missing value is -inf where the node sends it left, +inf where it sends it right
        xx = np.concatenate([np.where(nan, -np.inf, x), np.where(nan, np.inf, x)]).astype(np.float32)
        pos = np.zeros(len(self._off), dtype=np.int64)
        for _ in range(self.depth):
            idx = self._off + pos
            f = self._fi[idx]
            nxt = 2 * pos + 1 + (xx[f] >= self._thr[idx])
            if contribs is not None:
                d = self._mean[self._moff + nxt] - self._mean[self._moff + pos]
                contribs[:-1] += np.bincount(f % self.n_features, weights=d,
                                             minlength=self.n_features)
            pos = nxt
        return pos

    def margin(self, X: np.ndarray) -> np.ndarray:
        """Raw margins, (rows,) for one output or (rows, outputs)."""
        X = np.asarray(X, dtype="float32").reshape(-1, self.n_features)
        out = np.empty((len(X), self.n_out))
        for i, x in enumerate(X):
            v = self._mean[self._moff + self._walk(x)]
            out[i] = self.base + (np.bincount(self.group, weights=v, minlength=self.n_out)
                                  if self.n_out > 1 else v.sum())
        return out[:, 0] if self.n_out == 1 else out

    def predict(self, X: np.ndarray) -> np.ndarray:
        """What XGBoost's `inplace_predict` gives: the probability for a logistic model,
        the raw outputs otherwise."""
        m = self.margin(X)
        return 1.0 / (1.0 + np.exp(-m)) if self.logistic else m

    def contributions(self, X: np.ndarray) -> np.ndarray:
        """XGBoost's approximate contributions (features, then the bias), single output."""
        if self.n_out != 1:
            raise ValueError("contributions of a single-output model only")
        X = np.asarray(X, dtype="float32").reshape(-1, self.n_features)
        out = np.zeros((len(X), self.n_features + 1))
        bias = float(self.mean[:, 0].sum() + self.base[0])
        for i, x in enumerate(X):
            self._walk(x, out[i])
            out[i, -1] = bias
        return out


def compile_booster(booster: Any, max_depth: int = MAX_DEPTH) -> dict[str, np.ndarray]:
    """The Forest arrays of an XGBoost booster, from its JSON dump; ValueError for what the
    walk does not cover (categorical splits, vector leaves, other objectives, deeper trees)."""
    learner = json.loads(booster.save_raw("json"))["learner"]
    model = learner["gradient_booster"]["model"]
    obj = learner["objective"]["name"]
    if obj not in ("binary:logistic", "reg:quantileerror", "reg:squarederror"):
        raise ValueError(f"no numpy walk for objective {obj}")
    logistic = obj == "binary:logistic"
    lp = learner["learner_model_param"]
    base = np.atleast_1d(np.asarray(json.loads(lp["base_score"].replace("E", "e")), dtype="float64"))
    n_out = max(1, int(lp.get("num_target", "1")))
    if len(base) == 1 and n_out > 1:
        base = np.repeat(base, n_out)
    if logistic:  # the base score is stored as a probability: the margin is its logit
        base = np.log(base / (1 - base))
    n_features = int(lp["num_feature"])
    trees = model["trees"]
    t = len(trees)
    if t == 0 or any(any(tr.get("split_type") or [])
                     or int(tr["tree_param"].get("size_leaf_vector", "1")) > 1 for tr in trees):
        raise ValueError("no trees, categorical splits or vector leaves: not supported")
    # all trees' nodes in one flat array, then each node's slot in its tree's complete heap
    sizes = np.array([len(tr["left_children"]) for tr in trees], dtype=np.int64)
    start = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    tree_of = np.repeat(np.arange(t), sizes)

    def col(key: str, dtype: Any) -> np.ndarray:
        return np.concatenate([np.asarray(tr[key], dtype=dtype) for tr in trees])

    lc, rc, split = col("left_children", np.int64), col("right_children", np.int64), col("split_indices", np.int64)
    cond, hess = col("split_conditions", "float64"), col("sum_hessian", "float64")
    dleft = col("default_left", np.int64).astype(bool)
    inner_n = lc >= 0
    gl = np.where(inner_n, lc + start[tree_of], -1)
    gr = np.where(inner_n, rc + start[tree_of], -1)
    heap = np.full(len(lc), -1, dtype=np.int64)
    depth = np.zeros(len(lc), dtype=np.int64)
    heap[start] = 0
    front, d = start, 0
    while len(front):
        front = front[inner_n[front]]
        if len(front) and d >= max_depth:
            raise ValueError(f"trees deeper than {max_depth}: not supported")
        heap[gl[front]], heap[gr[front]] = 2 * heap[front] + 1, 2 * heap[front] + 2
        depth[gl[front]] = depth[gr[front]] = d + 1
        front = np.concatenate([gl[front], gr[front]])
        d += 1
    D = max(int(depth.max(initial=0)), 1)
    inner, n_heap = 2 ** D - 1, 2 ** (D + 1) - 1
    # node means, deepest level first: a leaf's value, an inner node's cover-weighted children
    mean_n = np.where(inner_n, 0.0, cond)
    for lvl in range(D - 1, -1, -1):
        i = np.flatnonzero(inner_n & (depth == lvl))
        with np.errstate(invalid="ignore", divide="ignore"):
            m = (mean_n[gl[i]] * hess[gl[i]] + mean_n[gr[i]] * hess[gr[i]]) / hess[i]
        mean_n[i] = np.where(hess[i] > 0, m, 0.0)
    # the complete heaps: an inner node keeps its split; a leaf's slot and every slot below it
    # get a split any value passes (+inf) and the leaf's value, so the walk ends on that value
    fi = np.zeros((t, inner), dtype=np.int64)
    thr = np.full((t, inner), np.inf, dtype=np.float32)
    mean = np.zeros((t, n_heap))
    gi = np.flatnonzero(inner_n)
    fi[tree_of[gi], heap[gi]] = split[gi] + np.where(dleft[gi], 0, n_features)
    thr[tree_of[gi], heap[gi]] = cond[gi].astype(np.float32)
    mean[tree_of, heap] = mean_n
    filled = np.zeros((t, n_heap), dtype=bool)
    filled[tree_of, heap] = True
    for h in range(1, n_heap):  # heap order: a parent comes before its children
        copy = ~filled[:, h]
        mean[copy, h] = mean[copy, (h - 1) // 2]
    return {"fi": fi, "thr": thr, "mean": mean,
            "group": np.asarray(model["tree_info"], dtype=np.int64), "base": base,
            "meta": np.array([n_features, int(logistic)])}


def cached(model: Any) -> Forest | None:
    """The Forest of `model.booster_` (read with the artifact, or compiled on first use and
    kept on the model: the registry caches served models); None when the booster has
    something the walk does not cover, and then XGBoost predicts."""
    f = getattr(model, "forest_", None)
    if f is None or f[0] is not model.booster_:
        try:
            f = (model.booster_, Forest.from_booster(model.booster_))
        except ValueError:
            f = (model.booster_, None)
        model.forest_ = f
    return f[1]


def small(model: Any, X: Any) -> Forest | None:
    """The Forest to score `X` with: only a served model, only a few rows."""
    if not getattr(model, "serving_", False) or len(X) > SMALL:
        return None
    return cached(model)


def files(booster: Any) -> dict[str, Any]:
    """The artifact writer of forest.npz for `booster` (none when the walk does not cover it)."""
    try:
        f = Forest.from_booster(booster)
    except ValueError:
        return {}
    return {FILE: f.save}


def attach(model: Any, d: Path, meta: dict[str, Any]) -> None:
    """Give a loaded model the Forest saved with it, when its manifest lists one (the loader
    has verified the file's sha256 by then); otherwise it is compiled on first use."""
    if FILE not in (meta.get("files") or {}):
        return
    try:
        model.forest_ = (model.booster_, Forest.read(d / FILE))
    except (OSError, ValueError, KeyError):  # unreadable: compiled from the booster instead
        model.forest_ = None
