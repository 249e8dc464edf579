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
from jobmedic.knowledge.feature_queries import FeatureQueries
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
from tests.models.helpers import build


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
    # every job at once: more than one 500-shape statement, repeated shapes, and the bulk path
    every = repeat_specs(s, pd.concat([df, df.iloc[:300]], ignore_index=True))
    np.testing.assert_allclose(every[:len(df)], rep, equal_nan=True)
    np.testing.assert_allclose(every[len(df):], rep[:300], equal_nan=True)


def test_many_shapes_in_one_statement_equal_one_lookup_each(store_df):
    s, df = store_df
    projects = sorted(df["project"].dropna().unique())[:2]
    rows = df.iloc[::37]
    shapes = [(u, int(c), int(t), int(b)) for u, c, t, b in zip(
        rows["user"], rows["req_cpus"], rows["timelimit_s"], rows["submit_time"])]
    for scope in (None, projects, []):
        many = s.features.last_completed_runtimes(shapes, scope)
        one = [s.features.recent_runs("shape", f"{u}|{c}|{t}", b, scope, 1, completed=True)
               for u, c, t, b in shapes]
        assert many == [r[0][0] if r else None for r in one]
        assert scope == [] or any(v is not None for v in many)  # not vacuous


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


_GOOD = {"inputs": STACK_INPUTS, "coef": [0.1, 0.2, 0.7, 0.0], "n": 9}


@pytest.mark.parametrize("meta,ok", [
    (None, True),
    (_GOOD, True),
    (_GOOD | {"n": 0, "coef": [1, 0, 0, -2]}, True),
    (_GOOD | {"inputs": ["something", "else"], "coef": [1, 2]}, False),
    (_GOOD | {"inputs": list(reversed(STACK_INPUTS))}, False),
    (_GOOD | {"coef": [0.1, 0.2]}, False),
    (_GOOD | {"coef": [0.1, 0.2, "x", 0.0]}, False),
    (_GOOD | {"coef": [0.1, 0.2, float("nan"), 0.0]}, False),
    (_GOOD | {"coef": [0.1, 0.2, float("inf"), 0.0]}, False),
    (_GOOD | {"coef": [0.1, 0.2, True, 0.0]}, False),
    (_GOOD | {"coef": [0.1, 0.2, None, 0.0]}, False),
    (_GOOD | {"coef": "0.1,0.2,0.7,0"}, False),
    (_GOOD | {"coef": None}, False),
    (_GOOD | {"n": "x"}, False),
    (_GOOD | {"n": [1]}, False),
    (_GOOD | {"n": -1}, False),
    (_GOOD | {"n": 2.5}, False),
    (_GOOD | {"n": None}, False),
    (_GOOD | {"n": True}, False),
    ({k: v for k, v in _GOOD.items() if k != "n"}, False),
    (_GOOD | {"inputs": 5}, False),
    (_GOOD | {"inputs": "q0.5_unshifted"}, False),
    (_GOOD | {"inputs": [1, 2, 3, 4]}, False),
    (_GOOD | {"inputs": None}, False),
    ("not a mapping", False),
    ([0.1, 0.2, 0.7, 0.0], False),
    (5, False),
])
def test_loaded_checks_every_field_of_the_stored_stack(meta, ok):
    """A malformed point stack in meta.json is a ModelError naming the artifact and the fix,
    never a ValueError / TypeError."""
    if ok:
        got = loaded(meta)
        assert got is None if meta is None else (got["coef"] == meta["coef"]
                                                 and got["n"] == meta["n"])
    else:
        with pytest.raises(ModelError) as e:
            loaded(meta)
        assert "point stack" in e.value.message and "train runtime" in e.value.hint


class _Booster:
    """What PointStack stacks on (QuantileModel's part of the MRO): a booster whose raw output
    has its median in column `ALPHAS.index(0.5)`, whatever the order of the alphas."""

    ALPHAS = (0.5, 0.9, 0.1)  # q0.5 first: not at index 1

    def __init__(self, med: np.ndarray) -> None:
        self.med = med

    def _raw(self, X: np.ndarray) -> np.ndarray:
        n = len(X)
        return np.column_stack([self.med[:n], self.med[:n] + 1.0, self.med[:n] - 1.0])

    def calibrate(self, X: np.ndarray, y: np.ndarray):  # as QuantileModel: one booster pass
        return self.calibrate_raw(self._raw(X), X, y)

    def calibrate_raw(self, raw: np.ndarray, X: np.ndarray, y: np.ndarray):
        return self

    def meta(self) -> dict:
        return {}


class _Stacked(runtime_point.PointStack, _Booster):
    pass


def test_the_stack_reads_the_median_column_by_its_alpha():
    rng = np.random.default_rng(4)
    X, med, rep = _inputs(3000, rng)
    y = np.expm1(0.5 * med + 0.5 * np.log1p(np.nan_to_num(rep, nan=5000.0)))
    m = _Stacked(med).calibrate(X, y)
    assert m._mid == 0 and m.stack_ is not None and m.stack_reason_ is None
    np.testing.assert_allclose(m.stack_["coef"], fit_stack(med, X, y)["coef"])
    np.testing.assert_array_equal(m.point(X), stacked(m.stack_, med, X))
    assert "point_stack_reason" not in m.meta()


def test_no_stack_says_why_in_the_meta():
    rng = np.random.default_rng(4)
    X, med, _ = _inputs(3000, rng)
    y = np.expm1(med)
    # inputs without the repeat column (what engines/dask_train.py calibrates on)
    m = _Stacked(med).calibrate(X[:, :_WIDTH], y)
    assert m.stack_ is None and m.meta() == {"point_stack": None,
                                              "point_stack_reason": runtime_point.NO_REPEAT}
    assert "--engine dask" in m.meta()["point_stack_reason"]
    few = _Stacked(med).calibrate(X[:100], y[:100])
    assert few.meta()["point_stack_reason"] == runtime_point.FEW_REPEATS
    assert _Stacked(med).calibrate(X[:0], y[:0]).meta()["point_stack_reason"] == (
        runtime_point.NO_CALIBRATION)


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


def test_spec_paths_look_the_repeat_up_only_where_it_can_change_the_point(trained, monkeypatch):
    """With a served stack, predict (one spec) and batch scoring (many) look the repeat up; for
    an artifact without a stack, or with the stack switched off, they pass a NaN column
    without the SQL lookup, and the point is the same as with it."""
    db, models, _ = trained
    s = Store(db)
    d = artifacts.current_dir(models, "runtime")
    meta = json.loads((d / "meta.json").read_text())
    m = RuntimeModel.load(d, meta)
    old = RuntimeModel.load(d, {k: v for k, v in meta.items() if k != "point_stack"})
    calls: list[tuple] = []  # shapes looked up: one per spec, and each distinct one in a batch
    real, real_many = runtime_point._one, FeatureQueries.last_completed_runtimes
    monkeypatch.setattr(runtime_point, "_one", lambda *a: calls.append(a) or real(*a))
    monkeypatch.setattr(FeatureQueries, "last_completed_runtimes",
                        lambda self, shapes, scope=None: calls.extend(shapes) or real_many(self, shapes, scope))
    df = s.jobs_frame()
    q = df.iloc[-60:].reset_index(drop=True)
    spec, now = q.iloc[-1].to_dict(), int(q["submit_time"].iloc[-1])
    with_rep, with_reps = m.extra_spec(s, spec, now, None), m.extra_specs(s, q, None)
    assert len(calls) == 1 + len(set(zip(q["user"], q["req_cpus"], q["timelimit_s"],
                                         q["submit_time"])))
    assert np.isfinite(with_reps[:, -1]).any()  # not vacuous: the lookups found repeats
    for model, switched_off in ((old, False), (m, True)):
        monkeypatch.setattr(runtime_point, "SERVE_STACK", not switched_off)
        calls.clear()
        one, many = model.extra_spec(s, spec, now, None), model.extra_specs(s, q, None)
        assert calls == []
        assert one.shape == with_rep.shape and many.shape == with_reps.shape
        assert np.isnan(one[:, -1]).all() and np.isnan(many[:, -1]).all()
        np.testing.assert_array_equal(one[:, :-1], with_rep[:, :-1])
        np.testing.assert_array_equal(many[:, :-1], with_reps[:, :-1])
        # the same point as with the looked-up repeat
        X = m.inputs(training.load(s), np.arange(len(df))[-60:])
        Xn = X.copy()
        Xn[:, -1] = np.nan
        np.testing.assert_array_equal(model.point(Xn), model.point(X))
    s.close()


def test_the_reason_for_no_stack_travels_with_the_artifact(trained):
    _db, models, _ = trained
    d = artifacts.current_dir(models, "runtime")
    meta = json.loads((d / "meta.json").read_text())
    assert "point_stack_reason" not in meta  # this one has a stack
    why = meta | {"point_stack": None, "point_stack_reason": runtime_point.NO_REPEAT}
    m = RuntimeModel.load(d, why)
    assert m.stack_ is None and m.meta()["point_stack_reason"] == runtime_point.NO_REPEAT
    assert "point_stack_reason" not in RuntimeModel.load(d, meta).meta()
