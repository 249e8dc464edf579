"""The contract every model kind implements, so training, loading, scoring and cards need no
`kind ==` branch: `registry.MODELS` maps each kind's name to its class.

A kind is a class; an instance is one model of that kind. The life of a model:

1. `labels(df)`: which jobs of the frame have a target, and the target;
2. `Kind(params)`: a new, untrained model;
3. `inputs(frame, rows)`: what `fit` / `calibrate` / `predict` take for those rows of the
   (jobs, features) frame: the submit-time feature matrix for the boosted kinds, the job graph
   for the GNN (every job a node, the given rows the ones fitted or scored);
4. `fit(X, y)` on the training slice, then `calibrate(X, y)` on a LATER slice (isotonic / Platt
   calibration, conformal shift): calibration data never goes through `fit`;
5. `predict(X)`: the kind's output (failure probability, or quantiles);
6. `files()` / `meta()` to save, `load(d, meta)` to restore: only safe formats (XGBoost UBJ,
   torch state_dict, JSON numbers), each file named in the manifest and hashed;
7. `evaluate(...)` against the obvious baselines, `card_extra(...)` and `card_lines(...)`.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from jobmedic.knowledge.errors import ModelError
from jobmedic.models.features import FEATURES

#: The (jobs, submit-time features) pair every kind trains and evaluates on (same index).
Frame = tuple[pd.DataFrame, pd.DataFrame]


class ModelKind(ABC):
    """One model kind; see the module docstring for the life of a model."""

    name: ClassVar[str]
    #: "risk" (failure probability per job), "request" (quantiles that advise a request) or
    #: "research" (evaluated and compared, not used by predict).
    role: ClassVar[str]
    #: The files of an artifact, each listed and hashed in its manifest.
    FILES: ClassVar[tuple[str, ...]] = ("model.ubj",)
    #: A kind whose predictions this one is compared with in its validation and evaluation.
    compare_with: ClassVar[str | None] = None
    #: A classifier's fewest failed (and successful) jobs in its training slice; training
    #: refuses a slice with fewer (models/training.refuse_useless). 0: not a classifier.
    min_positives: ClassVar[int] = 0
    #: A kind whose predictions are averaged with this one's in `evaluate` when that kind's
    #: card says the average won on its validation slice (failure: the gnn).
    ensemble_with: ClassVar[str | None] = None
    #: Optuna direction of `tune_objective`'s value ("maximize" / "minimize").
    tune_direction: ClassVar[str] = "minimize"

    def __init__(self, params: dict[str, Any] | None = None) -> None:
        self.params = dict(params or {})

    # -- data --------------------------------------------------------------------------------
    @staticmethod
    @abstractmethod
    def labels(df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """(mask of jobs with a known target, target per job)."""

    def inputs(self, frame: Frame, rows: np.ndarray) -> Any:
        """The model input for the frame's `rows` (positions): the feature matrix."""
        return frame[1][FEATURES].to_numpy()[rows]

    # -- learning ----------------------------------------------------------------------------
    @abstractmethod
    def fit(self, X: Any, y: np.ndarray) -> ModelKind:
        """Learn from the training slice."""

    @abstractmethod
    def calibrate(self, X: Any, y: np.ndarray) -> ModelKind:
        """Fit the calibration (or conformal shift) on a slice later than the training one."""

    @abstractmethod
    def predict(self, X: Any) -> np.ndarray:
        """The kind's output for each row of X."""

    def tune_objective(self, X_fit: Any, y_fit: np.ndarray, X_val: Any, y_val: np.ndarray,
                       max_rounds: int) -> Callable[[Any], float]:
        raise ModelError(f"the {self.name} model has no parameter search",
                         f"train it without --tune: `jobmedic train {self.name}`")

    # -- artifact ----------------------------------------------------------------------------
    @abstractmethod
    def files(self) -> dict[str, Callable[[Path], None]]:
        """One writer per file of `FILES`."""

    @abstractmethod
    def meta(self) -> dict[str, Any]:
        """The JSON metadata that restores the model beside its files."""

    @classmethod
    @abstractmethod
    def load(cls, d: Path, meta: dict[str, Any]) -> ModelKind:
        """The model saved in `d` (its files verified against `meta` already)."""

    def for_serving(self) -> ModelKind:
        """The model ready for one-at-a-time predictions (e.g. single-threaded)."""
        return self

    def after_save(self, store: Any, frame: Frame, version: str) -> dict[str, Any] | None:
        """After training saved artifact `version`: precompute what serving needs from the
        store (e.g. the gnn's per-entity neighbour terms); returns what it did, or None."""
        return None

    # -- evaluation and card -----------------------------------------------------------------
    @abstractmethod
    def evaluate(self, frame: Frame, rows: np.ndarray, y: np.ndarray, card: dict[str, Any],
                 reference: np.ndarray | None = None) -> dict[str, Any]:
        """Metrics of the model and its baselines on the frame's `rows` (targets `y`);
        `reference`: the `compare_with` kind's predictions for the same rows, or the message
        saying why there are none."""

    def card_extra(self, frame: Frame, fit_rows: np.ndarray, y_fit: np.ndarray) -> dict[str, Any]:
        """Kind-specific facts for the model card (e.g. the prior the baselines use)."""
        return {}

    def summary(self, card: dict[str, Any]) -> dict[str, Any]:
        """Verdicts drawn from the card's validation, stated in the card and in evaluations."""
        return {}

    @staticmethod
    @abstractmethod
    def card_lines(metrics: dict[str, Any]) -> list[str]:
        """The markdown lines of the card's metrics section."""


def table(rows: dict[str, dict[str, Any]], cols: list[str]) -> list[str]:
    """A markdown table: one row per name, one column per metric."""
    def fmt(v: Any) -> str:
        return f"{v:.4g}" if isinstance(v, float) else "—" if v is None else str(v)

    out = ["| | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for name, r in rows.items():
        out.append(f"| {name} | " + " | ".join(fmt(r.get(c)) for c in cols) + " |")
    return out
