"""Failure risk from a graph of similar earlier jobs (torch-geometric GraphSAGE), as a model
kind: the same contract as the others, with the job graph as its input (models/gnn_graph.py
builds it and holds the network; torch loads only when a gnn model is trained or read).

Every job is a node whose in-edges come only from jobs that had ENDED before it was
submitted, so the model is inductive. It is compared with the XGBoost failure model on the
same rows (`compare_with`) and averaged with it only if that helps on the validation slice.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from jobmedic.knowledge.errors import ModelError
from jobmedic.models import boosting, metrics
from jobmedic.models.base import Frame, ModelKind
from jobmedic.models.failure import FailureModel, classification_table
from jobmedic.models.features import FEATURES, is_ended, is_failed

DEFAULTS = {"hidden": 32, "epochs": 30, "lr": 0.01, "k_shared": 3, "k_knn": 10, "block_s": 86400,
            "knn_ref": 10000, "weight_decay": 1e-5}


def labels(df) -> tuple[np.ndarray, np.ndarray]:
    """(mask of jobs with a known outcome, failed 0/1), as for the failure model."""
    return is_ended(df), is_failed(df).astype(int)


@dataclass
class GraphRows:
    """The gnn model's input: the graph of every job in a frame, and the rows meant."""

    x: Any  # node features (torch tensor)
    y_src: Any  # each node's known outcome, the message channel
    edge_index: Any
    rows: np.ndarray


class GnnModel(ModelKind):
    name = "gnn"
    role = "research"
    FILES = ("model.pt",)
    compare_with = FailureModel.name
    min_positives = FailureModel.min_positives

    labels = staticmethod(labels)

    def __init__(self, params: dict[str, Any] | None = None) -> None:
        super().__init__(DEFAULTS | dict(params or {}))
        self.mean_: np.ndarray | None = None
        self.std_: np.ndarray | None = None
        self._graph: tuple[Any, tuple] | None = None  # (jobs frame, (x, y_src, edge_index))
        self._raw: np.ndarray | None = None  # uncalibrated scores of every node of that graph
        self.graph_seconds_ = 0.0

    def inputs(self, frame: Frame, rows: np.ndarray) -> GraphRows:
        """The graph of the whole frame (built once per frame; standardised with the fitted
        mean and scale once there are some) and the rows to fit or score."""
        from jobmedic.models import gnn_graph

        if self._graph is None or self._graph[0] is not frame[0]:  # held: no id reuse
            t = time.perf_counter()
            df, X = frame
            # first call (training): the scaling is fitted on the rows to fit, nothing later
            x, ys, ei, mean, std = gnn_graph.build_graph(df, X, self.params, self.mean_, self.std_,
                                                         None if self.mean_ is not None else rows)
            self.mean_, self.std_ = mean, std
            self._graph, self._raw = (df, (x, ys, ei)), None
            self.graph_seconds_ = time.perf_counter() - t
        return GraphRows(*self._graph[1], np.asarray(rows))

    def fit(self, X: GraphRows, y: np.ndarray) -> GnnModel:
        import torch

        from jobmedic.models import gnn_graph

        if int(np.sum(y)) == 0:
            raise ModelError("too few labelled jobs (or no failures) to train the gnn model",
                             "ingest more history or pass a later --until")
        torch.set_num_threads(int(self.params.get("threads", 2)))  # 1 on a saturated machine
        torch.manual_seed(0)
        self.net_ = gnn_graph.SageNet(X.x.shape[1], int(self.params["hidden"]))
        submit = self._graph[0]["submit_time"].to_numpy(dtype="float64") if self._graph else None
        gnn_graph.fit(self.net_, X.x, X.y_src, X.edge_index, X.rows, np.asarray(y), self.params, submit)
        self._raw = None
        return self

    def _scores(self, X: GraphRows) -> np.ndarray:
        from jobmedic.models import gnn_graph

        if self._raw is None:
            self._raw = 1 / (1 + np.exp(-gnn_graph.logits(self.net_, X.x, X.y_src, X.edge_index)))
        return self._raw[X.rows]

    def calibrate(self, X: GraphRows, y: np.ndarray) -> GnnModel:
        self.calibration_ = boosting.fit_calibration(self._scores(X), y)
        return self

    def predict(self, X: GraphRows) -> np.ndarray:
        return boosting.apply_calibration(self.calibration_, self._scores(X))

    def after_save(self, store, frame, version: str) -> dict[str, Any]:
        """The serving state of this model over the store's jobs (models/gnn_serving.py)."""
        from jobmedic.models import gnn_serving

        self.version_ = version
        return gnn_serving.build_state(store, self, frame)

    # -- artifact ----------------------------------------------------------------------------
    def files(self) -> dict[str, Any]:
        import torch

        return {"model.pt": lambda f: torch.save(self.net_.state_dict(), f)}

    def meta(self) -> dict[str, Any]:
        return {"features": FEATURES, "params": self.params, "mean": np.asarray(self.mean_).tolist(),
                "std": np.asarray(self.std_).tolist(), "calibration": self.calibration_}

    @classmethod
    def load(cls, d: Path, meta: dict[str, Any]) -> GnnModel:
        import torch

        from jobmedic.models import gnn_graph

        m = cls(meta.get("params"))
        n = len(meta["features"])
        m.mean_ = np.asarray(boosting.checked_numbers(meta.get("mean"), n, "gnn mean"))
        m.std_ = np.asarray(boosting.checked_numbers(meta.get("std"), n, "gnn scale"))
        m.calibration_ = boosting.checked_calibration(meta.get("calibration"), cls.name, d.name)
        m.net_ = gnn_graph.SageNet(n, int(m.params["hidden"]))
        try:
            state = torch.load(d / "model.pt", weights_only=True, map_location="cpu")
            m.net_.load_state_dict(state)
        except Exception as exc:  # noqa: BLE001 - any unreadable state dict is refused the same way
            raise ModelError(f"cannot read the gnn model {meta.get('version')!r}: "
                             f"{str(exc).splitlines()[0][:200]}",
                             "retrain with `jobmedic train gnn`") from None
        return m

    # -- evaluation and card -----------------------------------------------------------------
    def evaluate(self, frame, rows, y, card, reference=None) -> dict[str, Any]:
        y = np.asarray(y).astype(int)
        pg = self.predict(self.inputs(frame, rows))
        out: dict[str, Any] = {"gnn": metrics.classification(y, pg)}
        if isinstance(reference, str) or reference is None:
            out["xgboost"] = {"error": reference or "no failure model to compare with"}
        else:
            from jobmedic.models import gnn_blend

            out["xgboost"] = metrics.classification(y, reference)
            how = card.get("ensemble_blend")
            if how is None and "ensemble_with_xgboost" not in card:  # validation: choose it here
                how, table = gnn_blend.choose(y, reference, pg)
                out["ensemble_choice"] = {"blend": how, "auprc_by_blend": table}
            out["ensemble"] = metrics.classification(y, gnn_blend.blend(reference, pg, how))
        return out

    def card_extra(self, frame, fit_rows, y_fit) -> dict[str, Any]:
        edges = int(self._graph[1][2].shape[1]) if self._graph else 0
        return {"counts": {"nodes": len(frame[0]), "edges": edges}, "params": self.params,
                "graph_seconds": round(self.graph_seconds_, 1)}

    def summary(self, card: dict[str, Any]) -> dict[str, Any]:
        v = card.get("validation") or {}
        ens = ("ensemble" in v and v["ensemble"]["auprc"]
               > max(v["xgboost"]["auprc"], v["gnn"]["auprc"]))
        out: dict[str, Any] = {"ensemble_with_xgboost": bool(ens)}
        if card.get("ensemble_blend") or "ensemble_choice" in v:  # the blend chosen on validation
            out["ensemble_blend"] = card.get("ensemble_blend") or v["ensemble_choice"]["blend"]
        return out

    @staticmethod
    def card_lines(m: dict[str, Any]) -> list[str]:
        return classification_table(m)
