"""Load the current artifact of each model kind, verified, and cache it in-process (keyed by
its directory and the mtime of its metadata) so predictions do not re-read files."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from jobmedic.models import artifacts, memory, runtime
from jobmedic.models.failure import FailureModel
from jobmedic.models.quantile import QuantileModel

_CACHE: dict[tuple[str, str, float], tuple[Any, dict[str, Any]]] = {}


def new_quantile(kind: str, params: dict[str, Any]) -> QuantileModel:
    return runtime.new_model(params) if kind == "runtime" else memory.new_model(params)


def load(models_dir: str | Path, kind: str) -> tuple[Any, dict[str, Any]]:
    """(model, meta) of the current version of `kind`; ModelError when missing or untrusted."""
    d = artifacts.current_dir(models_dir, kind)
    key = (str(d), kind, (d / "meta.json").stat().st_mtime if (d / "meta.json").exists() else 0.0)
    if key in _CACHE:
        return _CACHE[key]
    meta = artifacts.load_meta(d, kind)
    if kind == "failure":
        model: Any = FailureModel.load(d, meta)
    elif kind in ("runtime", "memory"):
        model = QuantileModel.load(d, meta, kind)
    else:
        from jobmedic.models import gnn

        model = gnn.load(d, meta)  # (net, meta)
    booster = getattr(model, "booster_", None)
    if booster is not None:  # one thread: a single prediction is faster without a pool
        booster.set_param({"nthread": 1})
    _CACHE[key] = (model, meta)
    return model, meta
