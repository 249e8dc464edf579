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
from jobmedic.models import artifacts, ensemble, gnn_blend, registry, training
from jobmedic.models.ensemble import ensemble_one
from jobmedic.models.features import build_features, spec_features
from jobmedic.models.gnn_serving import GnnServer
from jobmedic.models.predictor import predict_one
from jobmedic.models.synthetic import fill_store, seen_at, synthetic_jobs
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


def test_a_card_without_a_chosen_blend_means_the_plain_mean(env):
    """(Before the next test, which ends a job after the state.) Artifacts written before the blend was chosen (no `ensemble_blend`) still load, and
    predict / evaluate failure average the two probabilities as they did."""
    s, frame, models, _ = env
    d = artifacts.current_dir(models, "gnn")
    meta = json.loads((d / "meta.json").read_text())
    old = json.loads(json.dumps(meta))
    spec = {"user": frame[0]["user"].iloc[7], "name": frame[0]["name"].iloc[7], "req_cpus": 2}
    now = int(frame[0]["end_time"].max()) + 600
    try:
        meta["card"]["ensemble_with_xgboost"] = True
        meta["card"].pop("ensemble_blend", None)
        meta["card"]["validation"].pop("ensemble_choice", None)
        (d / "meta.json").write_text(json.dumps(meta))
        resign(models, "gnn")
        ensemble._SERVERS.clear()
        out = predict_one(s, spec, now, str(models), LEVELS)
        e = out["ensemble"]
        assert e["used"] is True and e["blend"] == "prob:0.5"
        assert out["failure_risk"] == pytest.approx((e["xgboost"] + e["gnn"]) / 2, abs=2e-4)
        res = training.evaluate(s, "failure", str(models), int(frame[0]["submit_time"].quantile(0.8)),
                                frame=frame)
        assert res["ensemble"]["blend"] == gnn_blend.MEAN
    finally:
        (d / "meta.json").write_text(json.dumps(old))
        resign(models, "gnn")
        ensemble._SERVERS.clear()


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
        how = meta["card"].get("ensemble_blend")  # the blend the card chose on validation
        assert e["blend"] == gnn_blend.label(gnn_blend.checked_blend(how))
        assert out["failure_risk"] == pytest.approx(gnn_blend.blend(e["xgboost"], e["gnn"], how), abs=2e-4)
        x, _ = spec_features(s, spec, now, ["proj1"])
        p, why = ensemble_one(s, str(models), x, spec, now, 0.25, ["proj1"])
        assert p == 0.25 and why["used"] is False and "scoped" in why["reason"]
        res = training.evaluate(s, "failure", str(models), int(frame[0]["submit_time"].quantile(0.8)),
                                frame=frame)
        assert res["ensemble"]["used"] is True and res["ensemble"]["metrics"]["auroc"] > 0.5
        assert res["ensemble"]["blend"] == gnn_blend.checked_blend(how)
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



def test_after_ingest_refreshes_the_state_as_a_full_build_would(tmp_path):
    """Train on the jobs seen at t1, ingest two later polls (new jobs, running ones ending):
    after each, the hook's incremental state equals a from-scratch build with the same model,
    and predict keeps the ensemble with the same answer."""
    from jobmedic.app import App, after_ingest
    from jobmedic.knowledge import entity_summary
    from jobmedic.models import gnn_refresh, gnn_serving
    from jobmedic.settings import load_settings

    rows = synthetic_jobs(1800, seed=11)
    c = {name: i for i, name in enumerate(JOB_COLUMNS)}
    sub = np.array([r[c["submit_time"]] for r in rows])
    t1, t2 = (int(np.quantile(sub, f)) for f in (0.8, 0.9))
    s = Store(tmp_path / "jm.db")
    s.upsert_jobs(seen_at(rows, t1))
    models = tmp_path / "m"
    training.train(s, "failure", str(models), params={"num_boost_round": 20, "nthread": 1})
    card = training.train(s, "gnn", str(models), params=TINY)
    assert card["serving_state"]["pending"] > 0  # running jobs at t1
    app = App(load_settings(db=str(tmp_path / "jm.db")), store=s)
    model, _ = registry.load(models, "gnn")
    d = artifacts.current_dir(models, "gnn")
    meta = json.loads((d / "meta.json").read_text())
    meta["card"]["ensemble_with_xgboost"] = True  # whatever validation said: the path is tested
    (d / "meta.json").write_text(json.dumps(meta))
    resign(models, "gnn")
    for t, later in ((t2, seen_at(rows, t2)), (None, rows)):
        s.upsert_jobs(later)
        res = after_ingest(app, s)
        assert res.gnn["mode"] == "incremental" and res.gnn["jobs"] > 0, res.gnn
        assert entity_summary.watermark(s) == gnn_state.header(s)[1]
        inc = gnn_state.load(s)
        spec = {"user": rows[-1][c["user"]], "name": rows[-1][c["name"]], "req_cpus": 8,
                "timelimit_s": 7200}
        now = int(inc["watermark"]) + 60
        got = predict_one(s, spec, now, str(models), LEVELS)
        assert got["ensemble"]["used"] is True
        model._graph = None  # a from-scratch build over the whole store, same weights
        model.version_ = inc["version"]
        gnn_serving.build_state(s, model, training.load(s))
        full = gnn_state.load(s)
        assert full["watermark"] == inc["watermark"]
        a, b = inc["arrays"], full["arrays"]
        assert sorted(a) == sorted(b)
        for k in a:
            if a[k].dtype.kind in "fc":
                np.testing.assert_allclose(a[k], b[k], rtol=1e-4, atol=1e-4, err_msg=k)
            else:
                np.testing.assert_array_equal(a[k], b[k], err_msg=k)
        want = predict_one(s, spec, now, str(models), LEVELS)
        assert want["ensemble"]["gnn"] == pytest.approx(got["ensemble"]["gnn"], abs=1e-4)
        assert want["failure_risk"] == pytest.approx(got["failure_risk"], abs=1e-4)
        again = gnn_refresh.refresh(s)  # nothing new: the jobs submitted since are redone
        assert again["mode"] in ("current", "incremental")
        np.testing.assert_allclose(gnn_state.load(s)["arrays"]["q"], b["q"], rtol=1e-4, atol=1e-4)
    # a job submitted before the watermark arriving only now cannot be placed: stale, and
    # predict says why (XGBoost alone)
    late = list(synthetic_jobs(1, seed=5, first_id=990_000)[0])
    w = gnn_state.header(s)[1]
    late[c["submit_time"]], late[c["start_time"]], late[c["end_time"]] = w - 500, w - 400, w + 50
    s.upsert_jobs([tuple(late)])
    res = after_ingest(app, s)
    assert res.gnn["mode"] == "stale" and "late" in res.gnn["reason"] and "gnn" in res.message()
    out = predict_one(s, spec, int(w) + 3600, str(models), LEVELS)
    assert out["ensemble"]["used"] is False
