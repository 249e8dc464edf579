"""Quantile boosters with their own number of rounds per quantile (boosting.train_stopped /
keep_rounds): the cut booster is what each quantile alone gives, the chosen counts are the
minima on the latest fit rows, crossing quantiles are still served sorted, the numpy walk and
batch scoring agree with XGBoost on the ragged layout, and artifacts written before (300
rounds for every quantile, no "boosting" entry in the metadata) load and predict the same."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb

from jobmedic.knowledge.store import Store
from jobmedic.models import artifacts, batch, boosting, registry, training
from jobmedic.models.forest import Forest
from jobmedic.models.memory import MemoryModel
from jobmedic.models.runtime import RuntimeModel
from jobmedic.models.synthetic import fill_store

ALPHAS = [0.1, 0.5, 0.9]
EXACT = {"subsample": 1.0, "colsample_bytree": 1.0, "max_depth": 3, "nthread": 1}


def _data(n: int = 1500, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 5))
    X[rng.random(X.shape) < 0.1] = np.nan
    y = np.exp(0.5 * np.nan_to_num(X[:, 0]) + rng.normal(size=n)) * (1 + 3 * (np.nan_to_num(X[:, 1]) > 0))
    return X, y


def _obj(alphas=ALPHAS) -> dict:
    return {"objective": "reg:quantileerror", "quantile_alpha": np.array(alphas)}


def _trees_per_output(b: xgb.Booster) -> list[int]:
    info = json.loads(b.save_raw("json"))["learner"]["gradient_booster"]["model"]["tree_info"]
    return np.bincount(info).tolist()


def _pinball(a: np.ndarray, y: np.ndarray, raw: np.ndarray) -> np.ndarray:
    r = y[:, None] - raw
    return np.mean(np.maximum(a * r, (a - 1) * r), axis=0)


def test_cut_booster_equals_each_quantile_alone():
    X, y = _data()
    full = boosting.train(X, y, _obj(), EXACT | {"num_boost_round": 40})
    cut = boosting.keep_rounds(full, [7, 40, 19])
    assert _trees_per_output(cut) == [7, 40, 19]
    got = cut.inplace_predict(X.astype("float32"))
    for k, (a, r) in enumerate(zip(ALPHAS, [7, 40, 19])):
        alone = boosting.train(X, y, _obj([a]), EXACT | {"num_boost_round": r})
        np.testing.assert_allclose(got[:, k], alone.inplace_predict(X.astype("float32")),
                                   rtol=1e-6, atol=1e-6)


def test_rounds_are_the_minima_on_the_latest_fit_rows():
    X, y = _data(2000, seed=1)
    b, how = boosting.train_stopped(X, y, _obj(), EXACT)
    rounds = how["rounds"]
    assert len(rounds) == 3 and all(1 <= r <= boosting.ES_MAX_ROUNDS for r in rounds)
    assert _trees_per_output(b) == rounds
    es = how["early_stopping"]
    cut = len(y) - es["scored_rows"]
    assert cut == int(len(y) * (1 - boosting.ES_FRACTION))
    # the probe again (fitted on the earlier rows only), scored at every round count
    probe = boosting.train(X[:cut], y[:cut], _obj(), EXACT | {"num_boost_round": es["probe_rounds"]})
    Xs = X[cut:].astype("float32")
    curve = np.array([_pinball(np.array(ALPHAS), y[cut:],
                               probe.inplace_predict(Xs, iteration_range=(0, it)))
                      for it in range(1, es["probe_rounds"] + 1)])
    assert (np.argmin(curve, axis=0) + 1).tolist() == rounds
    np.testing.assert_allclose(es["pinball_at_best"], curve.min(axis=0), rtol=1e-4)
    # every quantile had its patience spent when the probe stopped (or it hit the cap)
    assert (es["probe_rounds"] == boosting.ES_MAX_ROUNDS
            or all(es["probe_rounds"] - r >= boosting.ES_PATIENCE for r in rounds))
    # the final booster is refitted on all rows (not the probe): it differs from the probe
    assert not np.allclose(b.inplace_predict(Xs[:50]),
                           probe.inplace_predict(Xs[:50], iteration_range=(0, max(rounds))))


def test_fixed_rounds_skip_early_stopping():
    X, y = _data(800)
    b, how = boosting.train_stopped(X, y, _obj(), EXACT | {"num_boost_round": 12})
    assert how == {"rounds": 12, "early_stopping": None}
    assert _trees_per_output(b) == [12, 12, 12]
    b, how = boosting.train_stopped(X[:300], y[:300], _obj(), EXACT)  # too few rows
    assert how["early_stopping"] is None and _trees_per_output(b) == [300] * 3


def test_crossing_quantiles_are_served_sorted():
    """Quantiles with very different round counts cross more often; predict and serve sort
    them per row, as with one count for all."""
    X, y = _data()
    m = MemoryModel(EXACT | {"num_boost_round": 60})
    m.fit(X, y)
    m.booster_ = boosting.keep_rounds(m.booster_, [60, 1, 60])  # q5/6 barely moved
    m.calibrate(X[-500:], y[-500:])
    raw = m._raw(X)
    shifted = raw + np.asarray(m.shift_)
    assert (np.diff(shifted, axis=1) < 0).any()  # the raw quantiles do cross here
    q = m.predict(X)
    assert (np.diff(q, axis=1) >= 0).all()
    np.testing.assert_allclose(q, np.expm1(np.sort(shifted, axis=1)).clip(min=0))
    served = m.serve(X, None)
    np.testing.assert_array_equal(served.q, q)
    np.testing.assert_array_equal(served.raw, raw)  # the unsorted output the advice starts from


def test_ragged_booster_walks_like_xgboost():
    X, y = _data()
    b = boosting.keep_rounds(boosting.train(X, y, _obj(), EXACT | {"num_boost_round": 30}),
                             [3, 30, 11])
    f = Forest.from_booster(b)
    np.testing.assert_allclose(f.predict(X[:20]), b.inplace_predict(X[:20].astype("float32")),
                               rtol=1e-5, atol=1e-5)


@pytest.fixture(scope="module")
def stopped(tmp_path_factory):
    """The synthetic store with runtime and memory trained as `train` does by default (no
    num_boost_round given: memory with early stopping, runtime with its ROUNDS, here made
    ragged) and failure with a fixed count."""
    tmp = tmp_path_factory.mktemp("rounds")
    mp = pytest.MonkeyPatch()
    mp.setattr(RuntimeModel, "ROUNDS", [5, 20, 12, 20])
    db, models = tmp / "jm.db", tmp / "models"
    s = Store(db)
    fill_store(s, 2000, seed=1)
    frame = training.load(s)
    cards = {"failure": training.train(s, "failure", str(models), frame=frame,
                                       params={"num_boost_round": 25, "max_depth": 4, "nthread": 1})}
    for k in ("runtime", "memory"):
        cards[k] = training.train(s, k, str(models), frame=frame, params={"max_depth": 3, "eta": 0.3, "nthread": 1})
    s.close()
    yield db, models, cards
    mp.undo()


def test_trained_models_record_their_rounds_and_batch_equals_one_spec(stopped):
    db, models, _ = stopped
    for kind in ("runtime", "memory"):
        m, meta = registry.load(models, kind)
        rounds = meta["boosting"]["rounds"]
        if kind == "runtime":
            assert rounds == [5, 20, 12, 20] and meta["boosting"]["early_stopping"] is None
        else:
            assert meta["boosting"]["early_stopping"]["max_rounds"] == boosting.ES_MAX_ROUNDS
        assert _trees_per_output(m.booster_) == rounds
    s = Store(db)
    now = int(s.conn.execute("SELECT MAX(end_time) FROM jobs").fetchone()[0]) + 60
    df = s.jobs_frame()
    specs = df.sample(30, random_state=2)[["user", "name", "project", "queue", "req_cpus",
                                           "req_mem_mb", "timelimit_s"]].rename(
        columns={"timelimit_s": "req_walltime_s"}).reset_index(drop=True)
    levels = {"moderate": 0.3, "high": 0.6, "critical": 0.8}
    got = batch.score(s, specs, str(models), now, levels, retry_budget=0.05)
    q = got[[c for c in got.columns if c.startswith("runtime_q")]].to_numpy()
    assert (np.diff(q, axis=1) >= 0).all()
    for i in range(0, len(specs), 7):  # one row: the numpy walk over the ragged booster
        one = batch.score(s, specs.iloc[[i]], str(models), now, levels, retry_budget=0.05)
        pd.testing.assert_frame_equal(got.iloc[[i]], one, check_exact=False, rtol=1e-4)


def test_artifacts_from_before_load_and_predict_the_same(tmp_path):
    """An artifact as the code before wrote it (the same count for every quantile, no
    "boosting" in meta.json) is served unchanged."""
    X, y = _data()
    old = MemoryModel({"num_boost_round": 40, "max_depth": 3, "nthread": 1}).fit(X, y)
    old.calibrate(X[-500:], y[-500:])
    meta = old.meta()
    del meta["boosting"]
    meta["features"] = [f"f{i}" for i in range(X.shape[1])]
    path = artifacts.save(str(tmp_path), "memory", old.files(), meta | {"card": {}})
    loaded = MemoryModel.load(path, json.loads((path / "meta.json").read_text()))
    assert _trees_per_output(loaded.booster_) == [40, 40, 40]
    np.testing.assert_array_equal(loaded.predict(X), old.predict(X))
    loaded.for_serving()
    np.testing.assert_allclose(loaded.predict(X[:1]), old.predict(X[:1]), rtol=1e-5)
