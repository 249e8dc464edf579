"""The blend of the GNN + XGBoost ensemble (models/gnn_blend.py): the candidates, the choice on a
validation slice (the plain mean unless a candidate beats it by more than the margin), and the
checks on a card's stored blend."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from jobmedic.knowledge.errors import ModelError
from jobmedic.models import gnn_blend


def test_blend_weights_probabilities_or_log_odds():
    assert gnn_blend.blend(0.2, 0.6) == pytest.approx(0.4)
    assert gnn_blend.blend(0.2, 0.6, {"space": "prob", "w_gnn": 0.7}) == pytest.approx(0.48)
    lo = gnn_blend.blend(0.2, 0.6, {"space": "logit", "w_gnn": 0.5})
    assert lo == pytest.approx(1 / (1 + np.exp(-(np.log(0.25) + np.log(1.5)) / 2)))
    a = gnn_blend.blend(np.array([0.0, 1.0]), np.array([0.0, 1.0]), {"space": "logit", "w_gnn": 0.3})
    assert np.isfinite(a).all() and a[0] < 1e-3 and a[1] > 1 - 1e-3  # clipped, not inf


def test_choose_keeps_the_mean_unless_a_candidate_beats_it_by_the_margin(monkeypatch):
    rng = np.random.default_rng(0)
    y = (rng.random(4000) < 0.05).astype(int)
    noise = rng.random(4000)
    # the same score twice: every candidate ranks alike, so the mean stays
    same = np.clip(0.3 * y + noise * 0.7, 0, 1)
    how, table = gnn_blend.choose(y, same, same.copy())
    assert len(table) == len(gnn_blend.CANDIDATES) == 10
    assert how == gnn_blend.MEAN and max(table.values()) - min(table.values()) < 1e-9
    # the gnn score carries the signal, xgboost's is noise: the heaviest gnn weight wins
    p_gnn = np.clip(0.3 * y + rng.random(4000) * 0.7, 0, 1)
    p_xgb = rng.random(4000)
    how, table = gnn_blend.choose(y, p_xgb, p_gnn)
    assert how["w_gnn"] == 0.7 and table[gnn_blend.label(how)] > table["prob:0.5"] + gnn_blend.MARGIN
    assert table[gnn_blend.label(how)] == pytest.approx(
        average_precision_score(y, gnn_blend.blend(p_xgb, p_gnn, how)))
    # the same gain, but under a margin it does not clear: the mean stays
    gain = table[gnn_blend.label(how)] - table["prob:0.5"]
    monkeypatch.setattr(gnn_blend, "MARGIN", gain + 1e-6)
    assert gnn_blend.choose(y, p_xgb, p_gnn)[0] == gnn_blend.MEAN


def test_a_card_blend_is_checked():
    assert gnn_blend.checked_blend(None) == gnn_blend.MEAN
    assert gnn_blend.checked_blend({"space": "logit", "w_gnn": 0.6}) == {"space": "logit", "w_gnn": 0.6}
    for bad in ({"space": "rank", "w_gnn": 0.5}, {"space": "prob", "w_gnn": 2}, "mean",
                {"space": "prob", "w_gnn": "0.5"}):
        with pytest.raises(ModelError, match="ensemble_blend"):
            gnn_blend.checked_blend(bad)
