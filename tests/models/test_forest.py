"""The numpy walk of a booster (models/forest.py) gives XGBoost's own predictions and path
attributions, and the served models use it for one job with the same answer as XGBoost."""
from __future__ import annotations

import numpy as np
import pytest
import xgboost as xgb

from jobmedic.models import registry
from jobmedic.models.forest import FILE, SMALL, Forest
from tests.models.helpers import build


def _data(n: int = 600, d: int = 9, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) * rng.lognormal(0, 2, size=d)
    X[rng.random(X.shape) < 0.25] = np.nan  # missing values take the default direction
    X[:, 0] = rng.integers(0, 4, n)  # ties at split values
    y = (np.nan_to_num(X[:, 1]) + np.nan_to_num(X[:, 2]) * (X[:, 0] > 1) + rng.normal(size=n) > 0.5)
    return X, y.astype(float)


@pytest.mark.parametrize("depth", [1, 3, 7])
def test_walk_equals_xgboost_for_a_classifier(depth):
    X, y = _data()
    b = xgb.train({"objective": "binary:logistic", "max_depth": depth, "eta": 0.3, "nthread": 1,
                   "min_child_weight": 0.5}, xgb.DMatrix(X, label=y, missing=np.nan), 40)
    f = Forest.from_booster(b)
    Q, _ = _data(200, seed=1)
    Q[3] = np.nan  # a row with nothing known
    ref = b.inplace_predict(Q.astype("float32"))
    np.testing.assert_allclose(f.predict(Q), ref, atol=1e-6)
    contrib = b.predict(xgb.DMatrix(Q.astype("float32"), missing=np.nan), pred_contribs=True,
                        approx_contribs=True)
    np.testing.assert_allclose(f.contributions(Q), contrib, atol=1e-5)


def test_walk_equals_xgboost_for_multi_quantile_and_survives_saving(tmp_path):
    X, _ = _data()
    y = np.abs(np.nan_to_num(X[:, 1])) + 1
    b = xgb.train({"objective": "reg:quantileerror", "quantile_alpha": np.array([0.5, 0.8, 0.95]),
                   "max_depth": 5, "nthread": 1}, xgb.DMatrix(X, label=y, missing=np.nan), 30)
    f = Forest.from_booster(b)
    Q, _ = _data(100, seed=2)
    ref = b.inplace_predict(Q.astype("float32")).reshape(100, 3)
    np.testing.assert_allclose(f.predict(Q), ref, rtol=1e-5, atol=1e-5)
    f.save(tmp_path / FILE)
    g = Forest.read(tmp_path / FILE)
    np.testing.assert_array_equal(g.predict(Q), f.predict(Q))


def test_inconsistent_arrays_are_refused():
    X, y = _data()
    b = xgb.train({"objective": "binary:logistic", "max_depth": 3, "nthread": 1},
                  xgb.DMatrix(X, label=y, missing=np.nan), 5)
    a = Forest.from_booster(b).arrays()
    bad = dict(a, fi=a["fi"] + 1000)  # a feature index past the row
    with pytest.raises(ValueError):
        Forest(bad)
    with pytest.raises(ValueError):
        Forest.from_booster(b, max_depth=2)


def test_served_models_score_one_job_like_xgboost(tmp_path):
    _, models, _ = build(tmp_path)
    rng = np.random.default_rng(3)
    for kind in ("failure", "runtime", "memory"):
        m, meta = registry.load(models, kind)
        assert FILE in meta["files"]  # saved with the artifact, hashed in its manifest
        assert m.forest_[1] is not None
        X = rng.lognormal(2, 2, size=(SMALL + 1, m.booster_.num_features()))  # with any EXTRA
        X[rng.random(X.shape) < 0.3] = np.nan
        many = m.predict(X)  # more than SMALL rows: XGBoost
        one = np.vstack([m.predict(X[i:i + 1]) for i in range(len(X))])  # the numpy walk
        np.testing.assert_allclose(one.reshape(many.shape), many, rtol=1e-5, atol=1e-6)
        if kind == "failure":
            ref = m.booster_.predict(xgb.DMatrix(X.astype("float32"), missing=np.nan),
                                     pred_contribs=True, approx_contribs=True)
            np.testing.assert_allclose(m.contributions(X[:1]), ref[:1], atol=1e-5)
