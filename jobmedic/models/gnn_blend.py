"""How the GNN + XGBoost ensemble combines the two calibrated failure probabilities: the
candidates, the choice on the gnn's validation slice (rule in docs/models.md, "Blend and GNN
settings chosen on validation"), and the check of a card's stored choice. A weighted mean of
the probabilities or of their log-odds; a card without a choice (written before it existed)
means the plain mean of the probabilities. Numpy only: predict imports it."""
from __future__ import annotations

from typing import Any

import numpy as np

#: The plain mean of the two calibrated probabilities (the blend before the choice existed).
MEAN = {"space": "prob", "w_gnn": 0.5}
#: The candidates `choose` compares, the mean first.
CANDIDATES = [MEAN] + [{"space": sp, "w_gnn": w} for sp in ("prob", "logit")
                       for w in (0.3, 0.4, 0.5, 0.6, 0.7) if (sp, w) != ("prob", 0.5)]
#: How much validation AUPRC a blend must add over the plain mean to replace it.
MARGIN = 0.002
_EPS = 1e-4


def checked_blend(blend: Any) -> dict[str, Any]:
    """A card's `ensemble_blend`, checked (None: the plain mean)."""
    if blend is None:
        return dict(MEAN)
    from jobmedic.knowledge.errors import ModelError

    if not (isinstance(blend, dict) and blend.get("space") in ("prob", "logit")
            and isinstance(blend.get("w_gnn"), int | float) and 0 <= blend["w_gnn"] <= 1):
        raise ModelError(f"the gnn card's ensemble_blend is not understood: {blend!r}",
                         "retrain with `jobmedic train gnn`")
    return {"space": blend["space"], "w_gnn": float(blend["w_gnn"])}


def blend(p_xgb: Any, p_gnn: Any, how: dict[str, Any] | None = None) -> Any:
    """The two calibrated probabilities (scalars or arrays) combined as `how` says."""
    how = checked_blend(how)
    w = how["w_gnn"]
    if how["space"] == "prob":
        return (1 - w) * p_xgb + w * p_gnn
    a = np.clip(np.asarray(p_xgb, dtype="float64"), _EPS, 1 - _EPS)
    b = np.clip(np.asarray(p_gnn, dtype="float64"), _EPS, 1 - _EPS)
    z = (1 - w) * np.log(a / (1 - a)) + w * np.log(b / (1 - b))
    out = 1 / (1 + np.exp(-z))
    return float(out) if np.ndim(out) == 0 else out


def choose(y: np.ndarray, p_xgb: np.ndarray, p_gnn: np.ndarray) -> tuple[dict[str, Any], dict[str, float]]:
    """(the blend, AUPRC of every candidate) on a validation slice: the best AUPRC, if it beats
    the plain mean by more than MARGIN; else the mean."""
    from sklearn.metrics import average_precision_score

    y = np.asarray(y).astype(int)
    table = {label(c): float(average_precision_score(y, blend(p_xgb, p_gnn, c))) for c in CANDIDATES}
    best = max(CANDIDATES, key=lambda c: table[label(c)])
    return (dict(best) if table[label(best)] > table[label(MEAN)] + MARGIN else dict(MEAN)), table


def label(how: dict[str, Any]) -> str:
    return f"{how['space']}:{how['w_gnn']:g}"
