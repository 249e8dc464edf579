"""Requests for a retry budget the user chooses, calibrated by split conformal prediction.

A request model's upper quantile is a point on a log scale; on a held-out, LATER calibration
slice (the most recent `WINDOW` labelled jobs before the training cut: a sliding window) the
residuals r = log1p(y) - upper are stored as a table of their (1 - budget) quantiles, with the
finite-sample correction ceil((n + 1)(1 - b)) / n. The request for budget b is then
expm1(upper + shift(b)): on exchangeable data at most a share b of jobs need more than it
(a killed run and a retry). Budgets between two grid points take the more cautious one.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from jobmedic.knowledge.errors import ModelError

GRID = [0.001, 0.002, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5]
WINDOW = 20_000  # the most recent calibration jobs kept (a sliding calibration set)
MIN_BUDGET, MAX_BUDGET = GRID[0], GRID[-1]


def fit_table(resid: np.ndarray, window: int = WINDOW) -> dict[str, Any]:
    """The shift per budget from log residuals in time order (the last `window` are used)."""
    r = np.asarray(resid, float)
    r = r[np.isfinite(r)][-window:]
    n = len(r)
    shifts = []
    for b in GRID:
        if n == 0:
            shifts.append(None)
            continue
        level = np.ceil((n + 1) * (1 - b)) / n
        shifts.append(float(np.max(r)) if level >= 1 else float(np.quantile(r, level, method="higher")))
    return {"budgets": list(GRID), "shifts": shifts, "n": n}


def check_budget(budget: float) -> float:
    b = float(budget)
    if not (MIN_BUDGET <= b <= MAX_BUDGET):
        raise ModelError(f"retry budget {b:g} is outside {MIN_BUDGET:g}..{MAX_BUDGET:g}",
                         "give the acceptable share of killed runs, e.g. 0.02 for 2 %")
    return b


def shift_for(table: Mapping[str, Any] | None, budget: float) -> float | None:
    """The log-scale shift for `budget`: the grid point at or below it (the cautious side)."""
    if not table or not table.get("n"):
        return None
    b = check_budget(budget)
    best = None
    for g, s in zip(table["budgets"], table["shifts"]):
        if g <= b + 1e-12 and s is not None:
            best = s
    return best


def loaded(meta_value: Any) -> dict[str, Any] | None:
    """The stored table, checked (None for artifacts written before budgets existed)."""
    if not isinstance(meta_value, Mapping):
        return None
    budgets, shifts = meta_value.get("budgets"), meta_value.get("shifts")
    if (not isinstance(budgets, list) or not isinstance(shifts, list) or len(budgets) != len(shifts)
            or not all(s is None or (isinstance(s, (int, float)) and np.isfinite(s)) for s in shifts)):
        raise ModelError("the conformal budget table in the model artifact is malformed",
                         "retrain the model")
    return {"budgets": [float(b) for b in budgets], "shifts": shifts, "n": int(meta_value.get("n") or 0)}


def expected_cost(y_need: np.ndarray | float, request: np.ndarray | float, under_cost: float) -> float:
    """Mean cost per job of `request` when `y_need` is needed: over-allocation plus
    `under_cost` x the shortfall (the killed run)."""
    y, a = np.asarray(y_need, float), np.asarray(request, float)
    return float(np.mean(np.clip(a - y, 0, None) + under_cost * np.clip(y - a, 0, None)))
