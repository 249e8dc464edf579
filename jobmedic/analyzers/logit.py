"""L2-penalised logistic regression with sample weights and an unpenalised intercept, fitted
by Newton's method in numpy: the blame analyzer's attribution model.

The objective is scikit-learn's `LogisticRegression(C=C)` with `sample_weight` (the same
minimiser: sum_i w_i * logloss_i + ||coef||^2 / (2 C)); a few dozen columns and a few thousand
rows, so each Newton step is one small Cholesky solve. Written here because importing
sklearn.linear_model costs ~1.3 s of CPU on every `jobmedic act analyze` process (issue 16),
more than the analysis itself.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np


def _objective(X: np.ndarray, y: np.ndarray, w: np.ndarray, lam: float, beta: np.ndarray,
               b: float) -> float:
    import numpy as np
    z = X @ beta + b
    # log(1 + e^z) - y z, stable for large |z|
    loss = np.logaddexp(0.0, z) - y * z
    return float(w @ loss + 0.5 * lam * beta @ beta)


def fit_logit(X: np.ndarray, y: np.ndarray, w: np.ndarray, C: float, tol: float = 1e-10,
              max_iter: int = 100) -> tuple[np.ndarray, float]:
    """(coefficients, intercept) minimising sum w_i logloss_i + ||coef||^2 / (2 C)."""
    import numpy as np
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float)
    w = np.asarray(w, dtype=float)
    n, m = X.shape
    lam = 1.0 / C
    Z = np.hstack([X, np.ones((n, 1))])
    pen = np.r_[np.full(m, lam), 0.0]
    theta = np.zeros(m + 1)
    ybar = float(w @ y) / float(w.sum())
    theta[m] = np.log(ybar / (1 - ybar)) if 0 < ybar < 1 else 0.0
    obj = _objective(X, y, w, lam, theta[:m], theta[m])
    for _ in range(max_iter):
        z = Z @ theta
        p = 1.0 / (1.0 + np.exp(-z))
        grad = Z.T @ (w * (p - y)) + pen * theta
        h = w * p * (1 - p)
        H = (Z * h[:, None]).T @ Z + np.diag(pen)
        H[np.diag_indices_from(H)] += 1e-12  # an all-zero column with no penalty (none here)
        try:
            step = np.linalg.solve(H, grad)
        except np.linalg.LinAlgError:
            step = np.linalg.lstsq(H, grad, rcond=None)[0]
        t = 1.0
        while True:  # halve the step until the objective does not increase
            cand = theta - t * step
            new = _objective(X, y, w, lam, cand[:m], cand[m])
            if new <= obj + 1e-12 * abs(obj) or t < 1e-6:
                break
            t /= 2
        theta, obj = cand, new
        if float(np.max(np.abs(t * step))) < tol:
            break
    return theta[:m], float(theta[m])
