"""The runtime model's point (models/runtime_point.py): the exact repeat is the last COMPLETED
job of the request shape that ended before the submit, equal in the bulk, single-spec and
per-spec paths; the stack is a least-absolute-deviation fit that recovers a planted rule, is
served only where a repeat exists, travels in the artifact, and leaves the booster alone."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from jobmedic.knowledge.errors import ModelError
from jobmedic.knowledge.store import Store
from jobmedic.models import artifacts, registry, runtime_point, training
from jobmedic.models.runtime import RuntimeModel
from jobmedic.models.runtime_point import (
    _RATIO,
    _WIDTH,
    STACK_INPUTS,
    blend,
    fit_stack,
    lad,
    loaded,
    repeat_bulk,
    repeat_spec,
    repeat_specs,
    stacked,
)
from jobmedic.models.synthetic import synthetic_jobs
from tests.models.helpers import build


@pytest.fixture(scope="module")
def store_df():
    s = Store()
    s.upsert_jobs(synthetic_jobs(2000, seed=5, n_users=15, days=20))
    return s, s.jobs_frame()


def _shape(df: pd.DataFrame) -> pd.Series:
    return (df["user"].astype(str) + "|" + df["req_cpus"].astype("Int64").astype(str) + "|"
            + df["timelimit_s"].astype("Int64").astype(str))


def test_repeat_is_the_last_completed_job_of_the_shape_before_submit(store_df):
    _, df = store_df
    rep = repeat_bulk(df)[:, 0]
    key = _shape(df)
    found = 0
    for i in range(0, 2000, 7):
        t = df.loc[i, "submit_time"]
        done = df[(key == key[i]) & (df["state"] == "completed") & (df["end_time"] < t)]
        if not len(done):
            assert np.isnan(rep[i])
            continue
        last = done.sort_values("end_time", kind="stable").iloc[-1]
        assert rep[i] == pytest.approx(last["elapsed_s"])
        found += 1
    assert found >= 20
    assert (df["state"] != "completed").any()  # the data has ended jobs that are not repeats


def test_repeat_paths_agree(store_df):
    s, df = store_df
    rep = repeat_bulk(df)
    idx = [3, 400, 999, 1500, 1999]
    for i in idx:
        v = repeat_spec(s, df.loc[i].to_dict(), int(df.loc[i, "submit_time"]))
        np.testing.assert_allclose(rep[i], v[0], equal_nan=True)
    q = df.loc[idx].reset_index(drop=True)
    np.testing.assert_allclose(rep[idx], repeat_specs(s, q), equal_nan=True)
    np.testing.assert_allclose(rep[idx], repeat_bulk(df, q), equal_nan=True)
    assert np.isnan(repeat_spec(s, {"user": "nobody", "req_cpus": 1, "timelimit_s": 60}, 2**31))


@pytest.mark.parametrize("coef", [[0.3, 0.1, 0.6, -0.2], [0.0, 0.0, 1.0, 0.0], [0.8, 0.2, 0.0, 0.1]])
def test_lad_recovers_a_planted_rule_despite_outliers(coef):
    rng = np.random.default_rng(3)
    A = np.column_stack([rng.uniform(2, 10, (3000, 3)), np.ones(3000)])
    t = A @ np.array(coef) + rng.laplace(0, 0.05, 3000)
    t[::25] += 8.0  # 4 % gross outliers: least squares would follow them, LAD does not
    np.testing.assert_allclose(lad(A, t, np.ones(3000)), coef, atol=0.03)


def _inputs(n: int, rng, with_repeat: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    X = np.full((n, _WIDTH + 1), np.nan)
    X[:, _RATIO] = rng.uniform(600, 20000, n)
    X[::5, _RATIO] = np.nan  # users without history
    rep = rng.uniform(600, 40000, n)
    rep[::3] = np.nan  # shapes without a completed job
    X[:, _WIDTH] = rep
    med = np.log1p(rng.uniform(600, 20000, n))
    return (X if with_repeat else X[:, :_WIDTH]), med, rep


def test_stack_serves_where_a_repeat_exists_and_the_blend_elsewhere(monkeypatch):
    rng = np.random.default_rng(1)
    X, med, rep = _inputs(4000, rng)
    y = np.expm1(0.2 * med + 0.8 * np.log1p(np.nan_to_num(rep, nan=5000.0)))
    st = fit_stack(med, X, y)
    assert st["inputs"] == STACK_INPUTS and st["n"] == int(np.isfinite(rep).sum())
    np.testing.assert_allclose(st["coef"], [0.2, 0.0, 0.8, 0.0], atol=1e-3)
    p = stacked(st, med, X)
    has = np.isfinite(rep)
    np.testing.assert_allclose(p[has], y[has], rtol=1e-3)
    np.testing.assert_array_equal(p[~has], blend(med, X[:, _RATIO])[~has])
    # inputs without the repeat column (the Dask engine's frames) and no stack: the blend
    Xn, _, _ = _inputs(4000, np.random.default_rng(1), with_repeat=False)
    np.testing.assert_array_equal(stacked(st, med, Xn), blend(med, Xn[:, _RATIO]))
    np.testing.assert_array_equal(stacked(None, med, X), blend(med, X[:, _RATIO]))
    # switched off (runtime_point.SERVE_STACK = False): the blend from the same artifact
    monkeypatch.setattr(runtime_point, "SERVE_STACK", False)
    np.testing.assert_array_equal(stacked(st, med, X), blend(med, X[:, _RATIO]))
    # too few calibration jobs with a repeat: no stack
    assert fit_stack(med[:50], X[:50], y[:50]) is None


@pytest.mark.parametrize("meta,ok", [
    (None, True),
    ({"inputs": STACK_INPUTS, "coef": [0.1, 0.2, 0.7, 0.0], "n": 9}, True),
    ({"inputs": ["something", "else"], "coef": [1, 2]}, False),
    ({"inputs": STACK_INPUTS, "coef": [0.1, 0.2]}, False),
    ({"inputs": STACK_INPUTS, "coef": [0.1, 0.2, "x", 0.0]}, False),
    ("not a mapping", False),
])
def test_loaded_checks_the_stored_stack(meta, ok):
    if ok:
        got = loaded(meta)
        assert got is None if meta is None else got["coef"] == meta["coef"]
    else:
        with pytest.raises(ModelError):
            loaded(meta)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    return build(tmp_path_factory.mktemp("point"), kinds=("runtime",))


def test_trained_model_keeps_its_stack_and_an_old_artifact_serves_the_blend(trained):
    db, models, _ = trained
    s = Store(db)
    frame = training.load(s)
    d = artifacts.current_dir(models, "runtime")
    meta = json.loads((d / "meta.json").read_text())
    m = RuntimeModel.load(d, meta)
    assert m.stack_ is not None and meta["point_stack"]["inputs"] == STACK_INPUTS
    rows = np.arange(len(frame[0]))[-300:]
    X = m.inputs(frame, rows)
    assert X.shape[1] == _WIDTH + 1
    # the booster reads the first _WIDTH columns only: the repeat does not move the quantiles
    X2 = X.copy()
    X2[:, _WIDTH] = np.nan
    np.testing.assert_array_equal(m.predict(X), m.predict(X2))
    # an artifact from before the stack (no point_stack in its meta) serves the blend
    old = RuntimeModel.load(d, {k: v for k, v in meta.items() if k != "point_stack"})
    assert old.stack_ is None
    np.testing.assert_array_equal(old.point(X), blend(old._raw(X)[:, 1], X[:, _RATIO]))
    has = np.isfinite(X[:, _WIDTH])
    assert has.any()
    assert not np.allclose(m.point(X)[has], old.point(X)[has])
    assert runtime_point.REPEAT == ["shape_last_completed_rt"]
    s.close()


def test_recalibrate_keeps_the_stack(trained):
    db, models, _ = trained
    s = Store(db)
    before, meta0 = registry.load(models, "runtime")
    training.recalibrate(s, "runtime", str(models))
    after, meta1 = registry.load(models, "runtime")
    assert meta1["version"] != meta0["version"]
    assert meta1["point_stack"] == meta0["point_stack"] and after.stack_ == before.stack_
    s.close()
