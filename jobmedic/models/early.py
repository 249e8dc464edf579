"""Failure risk from a running job's first minutes (`jobmedic train early`, `evaluate early`).

Inputs (models/early_data.py): the submit-time features (request + online history of user,
name, project, ...) and the telemetry window up to the prediction time (start + `horizon_s`,
default 180 s: Philly's "start + 3 minutes"). Candidates, all fitted on the first 80 % (by
submit time) of the training slice and compared on its last 20 % (the validation slice, still
inside the training period):

- `history`: XGBoost on the submit-time features only (the baseline to beat);
- `telemetry`: XGBoost on the window statistics only;
- `window`: XGBoost on both;
- `gru`: a GRU over the per-minute metric sequence, with the user's history at its head;
- `ae`: the autoencoder's reconstruction error alone (an anomaly score);
- `window_ae`: `window` plus that error as a feature.

The candidate with the best validation AUROC is the one `predict` uses (ties to the simpler:
`history` wins unless another beats it by `min_gain`); every candidate is calibrated (Platt /
isotonic) on the calibration slice, which is later than all of them. `evaluate` reports every
candidate and the raw user failure rate on the test window.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from jobmedic.models import boosting, metrics
from jobmedic.models.base import Frame, ModelKind, table
from jobmedic.models.early_data import METRICS, SEQ_COLS, TAB_COLS, WINDOW_STATS, seq_of
from jobmedic.models.features import FEATURES, is_failed

OBJECTIVE = {"objective": "binary:logistic", "eval_metric": "auc"}
XGB = {"max_depth": 4, "eta": 0.05, "num_boost_round": 250, "min_child_weight": 5.0}
CANDIDATES = ("history", "telemetry", "window", "gru", "ae", "window_ae")
TABLES = {"history": FEATURES, "telemetry": WINDOW_STATS, "window": TAB_COLS,
          "window_ae": [*TAB_COLS, "ae_error"]}
HIST_COLS = ["user_fail_rate", "user_n", "user_recent_fails"]
#: Columns of each booster's table inside [*TAB_COLS, *SEQ_COLS] (window_ae adds ae_error).
_TABLE_SLICES = {"history": slice(0, len(FEATURES)),
                 "telemetry": slice(len(FEATURES), len(TAB_COLS)),
                 "window": slice(0, len(TAB_COLS)), "window_ae": slice(0, len(TAB_COLS))}


def labels(df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(jobs with an outcome and a telemetry window, failed 0/1)."""
    has = df["has_telemetry"].to_numpy(dtype=bool) if "has_telemetry" in df else \
        np.zeros(len(df), dtype=bool)
    return has, is_failed(df).astype(int)


def _auroc(y: np.ndarray, s: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, s)) if len(np.unique(y)) == 2 else float("nan")


class EarlyModel(ModelKind):
    name = "early"
    role = "research"  # scored for running jobs by predict; not the submit-time risk
    FILES: ClassVar[tuple[str, ...]] = ("history.ubj", "telemetry.ubj", "window.ubj",
                                        "window_ae.ubj", "gru.pt", "ae.pt")
    min_positives = 20
    tune_direction = "maximize"
    labels = staticmethod(labels)

    def inputs(self, frame: Frame, rows: np.ndarray) -> pd.DataFrame:
        return frame[1].iloc[rows][[*TAB_COLS, *SEQ_COLS]].reset_index(drop=True)

    # -- scores ------------------------------------------------------------------------------
    def raw_scores(self, X: pd.DataFrame) -> dict[str, np.ndarray]:
        from jobmedic.models import early_seq

        seq = seq_of(X)
        hist = X[HIST_COLS].to_numpy(dtype=np.float64)
        out = {"ae": early_seq.ae_error(self.ae_, seq),
               "gru": early_seq.gru_score(self.gru_, seq, hist)}
        tab = X.assign(ae_error=out["ae"])
        for name, cols in TABLES.items():
            out[name] = self.boosters_[name].inplace_predict(tab[cols].to_numpy(dtype="float32"))
        return out

    def fit(self, X: pd.DataFrame, y: np.ndarray) -> EarlyModel:
        from jobmedic.models import early_seq

        cut = int(len(y) * 0.8)
        p = XGB | {k: v for k, v in self.params.items() if k in XGB}
        self.min_gain_ = float(self.params.get("min_gain", 0.005))
        import time

        t0 = time.perf_counter()
        seq = seq_of(X)
        self.ae_ = early_seq.fit_ae(seq[:cut], epochs=int(self.params.get("ae_epochs", 40)))
        err = early_seq.ae_error(self.ae_, seq)
        self.ae_scale_ = float(np.median(err[:cut])) or 1e-3
        self.gru_ = early_seq.fit_gru(seq[:cut], X[HIST_COLS].to_numpy()[:cut], y[:cut],
                                      epochs=int(self.params.get("gru_epochs", 15)))
        self.seconds_ = {"ae_gru": round(time.perf_counter() - t0, 1)}
        t0 = time.perf_counter()
        tab = X.assign(ae_error=err)
        self.boosters_ = {name: boosting.train(tab[cols].to_numpy(dtype="float32")[:cut],
                                               y[:cut], OBJECTIVE, p)
                          for name, cols in TABLES.items()}
        self.seconds_["boosters"] = round(time.perf_counter() - t0, 1)
        s = self.raw_scores(X.iloc[cut:])
        self.validation_ = {k: round(_auroc(y[cut:], v), 4) for k, v in s.items()}
        best = max(CANDIDATES, key=lambda k: self.validation_[k]
                   if np.isfinite(self.validation_[k]) else -1)
        self.chosen_ = best if self.validation_[best] >= \
            self.validation_["history"] + self.min_gain_ else "history"
        self.counts_ = {"fit": cut, "validation": len(y) - cut, "seconds": self.seconds_}
        return self

    def calibrate(self, X: pd.DataFrame, y: np.ndarray) -> EarlyModel:
        s = self.raw_scores(X)
        self.calibration_ = {}
        for k, v in s.items():
            if k == "ae":  # an error, not a probability: rank-map it to (0, 1) first
                v = self._ae_unit(v)
            self.calibration_[k] = boosting.fit_calibration(v, y)
        return self

    def _ae_unit(self, err: np.ndarray) -> np.ndarray:
        return 1.0 - np.exp(-np.asarray(err) / max(getattr(self, "ae_scale_", 0.0) or 0.05, 1e-6))

    def calibrated(self, X: pd.DataFrame) -> dict[str, np.ndarray]:
        s = self.raw_scores(X)
        s["ae"] = self._ae_unit(s["ae"])
        return {k: boosting.apply_calibration(self.calibration_[k], v) for k, v in s.items()}

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """The chosen candidate's calibrated probability (only what it needs is computed)."""
        from jobmedic.models import early_seq

        k = self.chosen_
        if k in ("gru", "ae"):
            return self.calibrated(X)[k]
        if k == "window_ae":
            X = X.assign(ae_error=early_seq.ae_error(self.ae_, seq_of(X)))
        raw = self.boosters_[k].inplace_predict(X[TABLES[k]].to_numpy(dtype="float32"))
        return boosting.apply_calibration(self.calibration_[k], raw)

    def predict_array(self, A: np.ndarray) -> np.ndarray:
        """`predict` of rows given as an array whose columns are [*TAB_COLS, *SEQ_COLS] (the
        frame's order): no DataFrame is built, which is most of the cost of scoring one running
        job. The same figures as `predict` (tests/models/test_early.py compares every
        candidate)."""
        from jobmedic.models import early_seq

        A = np.asarray(A, dtype=np.float64).reshape(-1, len(TAB_COLS) + len(SEQ_COLS))
        k = self.chosen_
        seq = A[:, len(TAB_COLS):].reshape(len(A), -1, len(METRICS))
        if k in ("gru", "ae"):
            if k == "gru":
                hist = A[:, [TAB_COLS.index(c) for c in HIST_COLS]]
                raw = early_seq.gru_score(self.gru_, seq, hist)
            else:
                raw = self._ae_unit(early_seq.ae_error(self.ae_, seq))
            return boosting.apply_calibration(self.calibration_[k], raw)
        cols = _TABLE_SLICES[k]
        tab = A[:, cols] if k != "window_ae" else np.column_stack(
            [A[:, cols], early_seq.ae_error(self.ae_, seq)])
        raw = self.boosters_[k].inplace_predict(tab.astype("float32"))
        return boosting.apply_calibration(self.calibration_[k], raw)

    # -- artifact ----------------------------------------------------------------------------
    def files(self) -> dict[str, Any]:
        from jobmedic.models import early_seq

        out = {f"{k}.ubj": boosting.save_booster(b) for k, b in self.boosters_.items()}
        return out | {"gru.pt": early_seq.save(self.gru_), "ae.pt": early_seq.save(self.ae_)}

    def meta(self) -> dict[str, Any]:
        return {"features": FEATURES, "early_features": [*TAB_COLS, *SEQ_COLS],
                "params": self.params, "chosen": self.chosen_, "calibration": self.calibration_,
                "validation_auroc": self.validation_, "fit_counts": self.counts_,
                "n_seq": len(SEQ_COLS), "ae_scale": self.ae_scale_}

    @classmethod
    def load(cls, d: Path, meta: dict[str, Any]) -> EarlyModel:
        from jobmedic.models import early_seq

        if meta.get("early_features") != [*TAB_COLS, *SEQ_COLS]:
            from jobmedic.knowledge.errors import ModelError

            raise ModelError("the early model lists window features other than this version's",
                             "retrain: `jobmedic train early`")
        m = cls(meta.get("params"))
        m.boosters_ = {k: boosting.load_booster(d / f"{k}.ubj", len(cols), "early")
                       for k, cols in TABLES.items()}
        n_in = 2 * len(SEQ_COLS)
        m.ae_ = early_seq.load(early_seq.AENet(n_in), d / "ae.pt")
        m.gru_ = early_seq.load(early_seq.GRUNet(2 * len(METRICS), len(HIST_COLS)),
                                d / "gru.pt")
        m.chosen_, m.calibration_ = meta["chosen"], meta["calibration"]
        m.validation_ = meta.get("validation_auroc", {})
        m.ae_scale_ = float(meta.get("ae_scale") or 1e-3)
        return m

    def for_serving(self) -> EarlyModel:
        import torch

        torch.set_num_threads(1)
        for b in self.boosters_.values():
            b.set_param({"nthread": 1})
        return self

    # -- evaluation and card -----------------------------------------------------------------
    def evaluate(self, frame: Frame, rows: np.ndarray, y: np.ndarray, card: dict[str, Any],
                 reference: Any = None) -> dict[str, Any]:
        X = self.inputs(frame, rows)
        out: dict[str, Any] = {k: metrics.classification(y, v)
                               for k, v in self.calibrated(X).items()}
        rate = X["user_fail_rate"].to_numpy(dtype=np.float64)
        prior = float(np.nanmean(rate)) if np.isfinite(rate).any() else 0.0
        out["user_failure_rate (no model)"] = metrics.classification(
            y, np.where(np.isfinite(rate), rate, prior), calibrated=False)
        out["chosen"] = self.chosen_
        out["validation_auroc"] = getattr(self, "validation_", {})
        return out

    def card_extra(self, frame: Frame, fit_rows: np.ndarray, y_fit: np.ndarray) -> dict[str, Any]:
        return {"chosen": self.chosen_, "validation_auroc": self.validation_,
                "split": self.counts_ | {"rule": "candidates fitted on the first 80% of the "
                                         "training slice, chosen on its last 20%"}}

    @staticmethod
    def card_lines(m: dict[str, Any]) -> list[str]:
        rows = {k: v for k, v in m.items() if isinstance(v, dict) and "n" in v}
        lines = table(rows, ["n", "positives", "auroc", "auprc", "brier", "ece"])
        return [*lines, "", (f"chosen on validation: **{m.get('chosen')}** "
                             f"(validation AUROC {m.get('validation_auroc')})")]
