"""The blame analyzer's logistic regression (analyzers/logit.py) against scikit-learn's
LogisticRegression with the same penalty, weights and intercept, on random grouped data like
blame's (0/1 indicator columns, failure and success weights, some columns rare)."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from jobmedic.analyzers.logit import fit_logit


@pytest.mark.parametrize("seed", range(6))
def test_fit_logit_matches_sklearn(seed: int) -> None:
    rnd = np.random.default_rng(seed)
    rows, cols = int(rnd.integers(20, 400)), int(rnd.integers(1, 25))
    X = (rnd.random((rows, cols)) < rnd.uniform(0.01, 0.3, cols)).astype(float)
    jobs = rnd.integers(1, 200, rows).astype(float)
    rate = 1 / (1 + np.exp(-(-3 + X @ rnd.normal(0, 1.5, cols))))
    fail = rnd.binomial(jobs.astype(int), rate).astype(float)
    Xs, y = np.vstack([X, X]), np.r_[np.ones(rows), np.zeros(rows)]
    w = np.r_[fail, jobs - fail]
    keep = w > 0
    C = float(w.sum()) / float(rnd.choice([1.0, 10.0, 100.0])) / 100.0
    ref = LogisticRegression(C=C, max_iter=1000, solver="newton-cholesky", tol=1e-12)
    ref.fit(Xs[keep], y[keep], sample_weight=w[keep])
    coef, icpt = fit_logit(Xs[keep], y[keep], w[keep], C)
    np.testing.assert_allclose(coef, ref.coef_[0], atol=1e-6)
    assert abs(icpt - ref.intercept_[0]) < 1e-6
