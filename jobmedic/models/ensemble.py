"""The GNN + XGBoost ensemble as `predict` uses it: the current gnn model and its serving state
(models/gnn_serving.py) turned into one job's blended failure probability, or the reason the
XGBoost probability stands alone. Kept apart from gnn_serving so that the gnn kind (which builds
the state after training) does not import the registry.

The blend is the one the gnn card chose on its validation slice (models/gnn_blend.py)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from jobmedic.knowledge import gnn_state
from jobmedic.models.gnn_blend import blend, checked_blend, label
from jobmedic.models.gnn_serving import GnnServer

if TYPE_CHECKING:
    from jobmedic.knowledge.store import Store

_SERVERS: dict[tuple[int, str, float], GnnServer] = {}


def server(store: Store, models_dir: str) -> tuple[GnnServer | None, str]:
    """The scorer for the store's current gnn model and state, or (None, why not)."""
    from jobmedic.knowledge.errors import ModelError
    from jobmedic.models import registry

    try:
        model, meta = registry.load(models_dir, "gnn")
    except ModelError as exc:
        return None, exc.message
    if not (meta.get("card") or {}).get("ensemble_with_xgboost"):
        return None, "the gnn model did not beat XGBoost alone on its validation slice"
    head = gnn_state.header(store)
    if head is None or head[0] != meta["version"]:
        return None, "the gnn serving state is missing or from another gnn version: run `jobmedic train gnn`"
    key = (id(store), head[0], head[1])
    if key not in _SERVERS:
        _SERVERS.clear()
        st = gnn_state.load(store)
        if st is None:
            return None, "the gnn serving state is missing"
        srv = GnnServer(model, st)
        srv.blend = checked_blend((meta.get("card") or {}).get("ensemble_blend"))
        _SERVERS[key] = srv
    return _SERVERS[key], ""


def ensemble_one(store: Store, models_dir: str, x: np.ndarray, spec: dict[str, Any], now: int,
                 p_xgb: float, scope: Any) -> tuple[float, dict[str, Any] | None]:
    """(failure probability, what the ensemble did): XGBoost's and the GNN's calibrated
    probabilities blended as the gnn card chose, when a gnn model that won on validation and its exact serving
    state exist and the caller is unscoped; else XGBoost's alone and why."""
    srv, why = server(store, models_dir)
    if srv is None:
        return p_xgb, ({"used": False, "reason": why} if "no gnn model" not in why else None)
    if scope is not None:
        return p_xgb, {"used": False, "reason": "scoped callers get XGBoost alone (GNN neighbours "
                                                "may come from other projects)"}
    if now < srv.watermark or gnn_state.ended_between(store, srv.watermark, now):
        return p_xgb, {"used": False, "reason": "jobs ended since the gnn serving state was last "
                                                "brought forward (each ingest's after-load step "
                                                "does it; `jobmedic train gnn` rebuilds it)"}
    pg = srv.score(x, spec, now)
    if pg is None:
        return p_xgb, {"used": False, "reason": "the gnn serving state does not cover this moment"}
    how = srv.blend
    return float(blend(p_xgb, pg, how)), {"used": True, "xgboost": round(p_xgb, 4),
                                          "gnn": round(pg, 4), "blend": label(how)}
