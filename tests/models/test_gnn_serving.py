"""The GNN + XGBoost ensemble for one new job (models/gnn_serving.py): the numpy score from the
precomputed serving state equals the full-graph GraphSAGE with that job appended, the predict
path averages it with XGBoost when the gnn card says so, and falls back (saying why) when the
state is stale or the caller scoped; `evaluate failure` reports the ensemble."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from jobmedic.knowledge import gnn_state
from jobmedic.knowledge.migrations import JOB_COLUMNS
from jobmedic.knowledge.store import Store
from jobmedic.models import artifacts, registry, training
from jobmedic.models.ensemble import ensemble_one
from jobmedic.models.features import build_features, spec_features
from jobmedic.models.gnn_serving import GnnServer
from jobmedic.models.predictor import predict_one
from jobmedic.models.synthetic import fill_store, synthetic_jobs
from tests.models.helpers import resign

TINY = {"hidden": 8, "epochs": 5, "block_s": 7 * 86400, "knn_ref": 300}
LEVELS = {"moderate": 0.3, "high": 0.6, "critical": 0.8}


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("gnnserve")
    s = Store(tmp / "jm.db")
    fill_store(s, 1500, seed=4)
    frame = training.load(s)
    models = tmp / "m"
    training.train(s, "failure", str(models), frame=frame, params={"num_boost_round": 20, "nthread": 1})
    card = training.train(s, "gnn", str(models), frame=frame, params=TINY)
    return s, frame, models, card


def _full_graph_score(model, frame, spec: dict, now: int) -> float:
    """The gnn's probability for `spec` submitted at `now`, appended to the full job graph."""
    df = frame[0]
    row = {c: None for c in df.columns} | spec | {"cluster": "synth", "job_id": "new-1",
                                                  "state": "pending", "submit_time": float(now)}
    df2 = pd.concat([df, pd.DataFrame([row])], ignore_index=True)
    for c in df.columns:
        df2[c] = df2[c].astype(df[c].dtype) if df[c].dtype != object else df2[c].astype(object)
    X2 = build_features(df2)
    return float(model.predict(model.inputs((df2, X2), np.array([len(df)])))[0])


def test_state_is_stored_with_the_gnn_version(env):
    s, _, _, card = env
    head = gnn_state.header(s)
    assert head is not None and head[0] == card["version"]
    assert card["serving_state"]["kept_rows"] > 0


@pytest.mark.parametrize("i", [3, 40, 700])
def test_one_new_job_scores_as_in_the_full_graph(env, i):
    s, frame, models, _ = env
    model, _ = registry.load(models, "gnn")
    srv = GnnServer(model, gnn_state.load(s))
    df = frame[0]
    now = int(df["end_time"].max()) + 3600
    spec = {k: df[k].iloc[i] for k in ("user", "name", "project", "queue", "qos", "image",
                                       "req_cpus", "req_gpus", "req_mem_mb", "timelimit_s", "n_nodes")}
    spec = {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in spec.items()}
    if i == 40:
        spec["user"] = "someone-new"  # fewer shared neighbours
    x, _ = spec_features(s, spec, now)
    got = srv.score(x, spec, now)
    assert got is not None
    assert got == pytest.approx(_full_graph_score(model, frame, spec, now), abs=1e-4)


def test_predict_uses_the_ensemble_when_the_card_says_so(env, tmp_path):
    s, frame, models, _ = env
    d = artifacts.current_dir(models, "gnn")
    meta = json.loads((d / "meta.json").read_text())
    spec = {"user": frame[0]["user"].iloc[5], "name": frame[0]["name"].iloc[5], "req_cpus": 4,
            "timelimit_s": 3600}
    now = int(frame[0]["end_time"].max()) + 600
    was = meta["card"]["ensemble_with_xgboost"]
    try:
        meta["card"]["ensemble_with_xgboost"] = True
        (d / "meta.json").write_text(json.dumps(meta))
        resign(models, "gnn")
        out = predict_one(s, spec, now, str(models), LEVELS)
        e = out["ensemble"]
        assert e["used"] is True
        assert out["failure_risk"] == pytest.approx((e["xgboost"] + e["gnn"]) / 2, abs=2e-4)
        x, _ = spec_features(s, spec, now, ["proj1"])
        p, why = ensemble_one(s, str(models), x, spec, now, 0.25, ["proj1"])
        assert p == 0.25 and why["used"] is False and "scoped" in why["reason"]
        res = training.evaluate(s, "failure", str(models), int(frame[0]["submit_time"].quantile(0.8)),
                                frame=frame)
        assert res["ensemble"]["used"] is True and res["ensemble"]["metrics"]["auroc"] > 0.5
        # a job ends after the state was built: XGBoost alone, and why
        row = list(synthetic_jobs(1, seed=9, first_id=999_999)[0])
        row[JOB_COLUMNS.index("end_time")] = now - 100
        s.upsert_jobs([tuple(row)])
        out = predict_one(s, spec, now, str(models), LEVELS)
        assert out["ensemble"]["used"] is False and "ended since" in out["ensemble"]["reason"]
    finally:
        meta["card"]["ensemble_with_xgboost"] = was
        (d / "meta.json").write_text(json.dumps(meta))
        resign(models, "gnn")
