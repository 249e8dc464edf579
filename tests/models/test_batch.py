"""Batch scoring (models/batch.py): identical specs are scored once and get the same answer as
when scored alone, and the distinct-row grouping is exact (checked, not trusted to the hash)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from jobmedic.knowledge.store import Store
from jobmedic.models import batch
from tests.models.helpers import build

LEVELS = {"moderate": 0.3, "high": 0.6, "critical": 0.8}


def test_distinct_rows_groups_equal_rows_only():
    q = pd.DataFrame({"user": ["a", "b", "a", None, None, "a"],
                      "cpus": [1.0, 1.0, 1.0, np.nan, np.nan, 2.0]})
    codes, first = batch.distinct_rows(q)
    assert codes.tolist() == [0, 1, 0, 2, 2, 3]
    assert first.tolist() == [0, 1, 3, 5]
    assert (batch.distinct_rows(q.iloc[:1])[0] == [0]).all()


def test_distinct_rows_many_columns_no_overflow():
    rng = np.random.default_rng(0)
    q = pd.DataFrame({f"c{i}": rng.integers(0, 1000, 5000).astype(float) for i in range(12)})
    q = pd.concat([q, q.iloc[:700]], ignore_index=True)  # 700 exact repeats
    codes, first = batch.distinct_rows(q)
    assert len(first) == len(q.drop_duplicates()) == 5000
    assert (q.iloc[first[codes]].to_numpy() == q.to_numpy()).all()


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    return build(tmp_path_factory.mktemp("batch"))


def test_repeated_specs_get_the_answer_of_the_spec_alone(trained):
    db, models, _ = trained
    s = Store(db)
    now = int(s.conn.execute("SELECT MAX(end_time) FROM jobs").fetchone()[0]) + 60
    df = s.jobs_frame()
    base = df.sample(40, random_state=1)[["user", "name", "project", "queue", "qos", "req_cpus",
                                          "req_mem_mb", "timelimit_s"]].rename(
        columns={"timelimit_s": "req_walltime_s"}).reset_index(drop=True)
    base.loc[3, "project"] = None
    rep = base.iloc[np.random.default_rng(0).integers(0, len(base), 300)].reset_index(drop=True)
    rep.insert(0, "job_id", [f"j{i}" for i in range(len(rep))])
    got = batch.score(s, rep, str(models), now, LEVELS, retry_budget=0.05)
    assert len(got) == len(rep) and got["job_id"].tolist() == rep["job_id"].tolist()
    assert {"failure_risk", "runtime_q0.5", "memory_q0.5", "budget_time_s"} <= set(got.columns)
    for i in range(0, len(rep), 23):  # each spec scored alone (one row: the numpy tree walk,
        # equal to XGBoost's up to float32 rounding, hence the tolerance)
        one = batch.score(s, rep.iloc[[i]], str(models), now, LEVELS, retry_budget=0.05)
        pd.testing.assert_frame_equal(got.iloc[[i]], one, check_exact=False, rtol=1e-4)
    # the history-frame path (an explicit history) answers the same
    hist = batch.score(s, rep, str(models), now, LEVELS, history=df, retry_budget=0.05)
    pd.testing.assert_frame_equal(got, hist, check_exact=False, rtol=1e-6)


def test_predict_and_batch_serve_the_point_runtime_that_evaluate_scores(trained):
    """The expected runtime of `predict` (runtime_s.expected) and of batch scoring
    (runtime_expected_s) is RuntimeModel.point, the figure `evaluate runtime` scores as MAE, for
    the same job; the q0.5 stays the calibrated quantile beside it."""
    from jobmedic.models import registry, training
    from jobmedic.models.predictor import predict_one

    db, models, _ = trained
    s = Store(db)
    frame = training.load(s)
    df = frame[0]
    m, _ = registry.load(models, "runtime")
    rows = np.flatnonzero((df["state"] == "completed").to_numpy())[-40::8]
    got = []
    for i in rows:
        job = df.iloc[i]
        now = int(job["submit_time"])
        evaluated = float(m.point(m.inputs(frame, np.array([i])))[0])  # what evaluate scores
        spec = {k: (None if pd.isna(job[k]) else job[k]) for k in
                ("user", "project", "queue", "qos", "image", "name", "req_cpus", "req_gpus",
                 "req_mem_mb", "timelimit_s", "n_nodes")}
        one = predict_one(s, spec, now, str(models), LEVELS)["runtime_s"]
        specs = pd.DataFrame([{k: spec[k] for k in spec if k != "timelimit_s"}
                              | {"req_walltime_s": spec["timelimit_s"], "submit_time": now}] * 3)
        b = batch.score(s, specs, str(models), now, LEVELS, history=df)
        assert one["expected"] == pytest.approx(evaluated, rel=1e-3, abs=0.1)
        assert (b["runtime_expected_s"] == b["runtime_expected_s"].iloc[0]).all()
        assert b["runtime_expected_s"].iloc[0] == pytest.approx(evaluated, rel=1e-3, abs=0.1)
        assert b["runtime_q0.5"].iloc[0] == pytest.approx(one["median"], rel=1e-3, abs=0.1)
        got.append((one["expected"], one["median"]))
    # the point is not the shifted q0.5 (the user's share of the request pulls it)
    assert any(abs(e - q) > 1.0 for e, q in got)
    # specs submitted now (the summary path, no history read) agree with the one-job path too
    spec = {"user": df["user"].iloc[-1], "name": df["name"].iloc[-1], "req_cpus": 4,
            "req_mem_mb": 4096.0, "timelimit_s": 7200}
    now = int(s.conn.execute("SELECT MAX(end_time) FROM jobs").fetchone()[0]) + 60
    one = predict_one(s, spec, now, str(models), LEVELS)["runtime_s"]
    specs = pd.DataFrame([{"user": spec["user"], "name": spec["name"], "req_cpus": 4,
                           "req_mem_mb": 4096.0, "req_walltime_s": 7200}])
    b = batch.score(s, specs, str(models), now, LEVELS)
    assert b["runtime_expected_s"].iloc[0] == pytest.approx(one["expected"], rel=1e-3, abs=0.1)
