"""Evaluation metrics for the model cards: ranking and calibration for failure risk, errors and
interval coverage for the quantile models. Plain numpy/scikit-learn; every value is a float."""
from __future__ import annotations

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve


def ece(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error over equal-width probability bins."""
    y, p = np.asarray(y, float), np.asarray(p, float)
    idx = np.minimum((p * bins).astype(int), bins - 1)
    tot = 0.0
    for b in range(bins):
        m = idx == b
        if m.any():
            tot += m.mean() * abs(y[m].mean() - p[m].mean())
    return float(tot)


def recall_at_fpr(y: np.ndarray, score: np.ndarray, fpr_max: float = 0.01) -> float:
    fpr, tpr, _ = roc_curve(y, score)
    ok = fpr <= fpr_max
    return float(tpr[ok].max()) if ok.any() else 0.0


def classification(y: np.ndarray, score: np.ndarray, calibrated: bool = True) -> dict[str, float]:
    """AUROC, AUPRC (with the base rate beside it), Brier, ECE, recall at 1 % FPR."""
    y = np.asarray(y, int)
    score = np.asarray(score, float)
    out = {"n": len(y), "positives": int(y.sum()), "base_rate": float(y.mean()) if len(y) else 0.0}
    if len(np.unique(y)) < 2:
        return out | {"auroc": None, "auprc": None}
    out |= {"auroc": float(roc_auc_score(y, score)), "auprc": float(average_precision_score(y, score)),
            "recall_at_1pct_fpr": recall_at_fpr(y, score)}
    if calibrated:
        out |= {"brier": float(np.mean((score - y) ** 2)), "ece": ece(y, score)}
    return out


def quantile_coverage(y: np.ndarray, q: np.ndarray, alphas: list[float]) -> dict[str, float]:
    """Share of outcomes at or below each predicted quantile (nominal = alpha)."""
    return {f"q{a:g}": float(np.mean(y <= q[:, i])) for i, a in enumerate(alphas)}


def regression(y: np.ndarray, pred: np.ndarray, unit: float = 1.0) -> dict[str, float]:
    """MAE and median absolute error in `unit` (e.g. 3600 for hours)."""
    err = np.abs(np.asarray(pred, float) - np.asarray(y, float)) / unit
    return {"mae": float(np.mean(err)), "median_ae": float(np.median(err))}
