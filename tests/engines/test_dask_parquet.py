"""Training fed from the Parquet export (engines/dask_parquet.py, engines/dask_train.py): the
features computed on the workers equal build_features row by row; the split, counts and
composition equal the single-machine ones; the artifact is the usual one."""
from __future__ import annotations

import numpy as np
import pytest

from jobmedic.engines import dask_parquet, dask_train
from jobmedic.knowledge.errors import InputError, ModelError
from jobmedic.knowledge.store import Store
from jobmedic.models import batch, registry, training
from jobmedic.models.features import FEATURES, build_features
from jobmedic.models.synthetic import fill_store


@pytest.fixture(scope="module")
def store():
    s = Store(":memory:")
    fill_store(s, 3000, seed=5, n_users=30)
    fill_store(s, 600, seed=6, cluster="other", first_id=900000, n_users=8)
    return s


@pytest.mark.slow  # 45-85 s each at load ~13 on this 2-core box
def test_features_from_parquet_equal_single_machine(store, export, client):
    import dask

    with dask.config.set({"dataframe.convert-string": False}):
        got = dask_parquet.features(dask_parquet.jobs(export), 3, "tasks").compute()
    got = got.sort_values("_rowid").reset_index(drop=True)  # the store's row order
    single = build_features(store.jobs_frame())
    assert len(got) == len(single) == 3600
    assert got["job_id"].tolist() == store.jobs_frame()["job_id"].tolist()
    for c in FEATURES:
        x, y = single[c].to_numpy(), got[c].to_numpy()
        assert np.array_equal(np.isnan(x), np.isnan(y)), c
        ok = ~np.isnan(x)
        assert np.allclose(x[ok], y[ok], rtol=1e-12, atol=1e-9), c
    assert single["user_n"].max() > 10 and single["name_fail_rate"].notna().sum() > 1000


@pytest.mark.slow  # 45-85 s each at load ~13 on this 2-core box
def test_train_failure_from_parquet_same_split_and_card(store, export, client, tmp_path):
    d = str(tmp_path / "dask")
    card = dask_train.train(store, "failure", d, client, export, params={"num_boost_round": 60})
    single = training.train(store, "failure", str(tmp_path / "single"),
                            params={"num_boost_round": 60})
    # the same split, slices and composition as the single-machine path
    for k in ("window", "counts", "trained_on", "prior"):
        assert card[k] == single[k], k
    assert card["engine"]["data"] == "parquet" and card["engine"]["workers"] == 2
    assert card["engine"]["exported"]["written"] == 0  # the export was current
    _, meta = registry.load(d, "failure")  # verified through the manifest hashes
    assert meta["version"] == card["version"] and meta["card"]["counts"] == single["counts"]
    # ~700 calibration rows put the AUROC's standard error near 0.02; the 0.01 criterion is
    # checked on a larger store (slow test below) and on real data (bench/bench_dask.py)
    auc = card["validation"]["model"]["auroc"]
    assert abs(auc - single["validation"]["model"]["auroc"]) < 0.03 and auc > 0.6
    # evaluate and batch scoring use the artifact unchanged
    res = training.evaluate(store, "failure", d, card["window"]["until_epoch"])
    assert res["version"] == card["version"] and res["metrics"]["model"]["auroc"] > 0.6
    specs = store.jobs_frame().iloc[::50][["user", "name", "req_cpus", "submit_time"]]
    out = batch.score(store, specs.reset_index(drop=True), d, 1_800_000_000,
                      {"moderate": 0.2, "high": 0.4, "critical": 0.7})
    assert out["failure_risk"].between(0, 1).all()


@pytest.mark.slow  # 45-85 s each at load ~13 on this 2-core box
def test_train_memory_from_parquet_and_cluster_selection(store, export, client, tmp_path):
    card = dask_train.train(store, "memory", str(tmp_path), client, export,
                            params={"num_boost_round": 20}, clusters=["other"], export=False)
    single = training.train(store, "memory", str(tmp_path / "s"), params={"num_boost_round": 20},
                            clusters=["other"])
    assert card["counts"] == single["counts"] and card["window"] == single["window"]
    assert card["trained_on"] == single["trained_on"]
    assert list(card["trained_on"]["clusters"]) == ["other"]
    assert registry.load(str(tmp_path), "memory")[0].predict(np.zeros((1, len(FEATURES)))).shape == (1, 3)
    with pytest.raises(ModelError, match="no jobs of cluster nowhere"):
        dask_train.train(store, "memory", str(tmp_path), client, export, clusters=["nowhere"],
                         export=False)


def test_calibration_cut_caps_the_slice_at_cal_max():
    assert training.calibration_cut(1000, 0.2) == 800  # under the cap: the fraction as before
    n = 10 * training.CAL_MAX
    assert n - training.calibration_cut(n, 0.2) == training.CAL_MAX  # the most recent CAL_MAX


@pytest.mark.slow  # 45-85 s at load ~13 on this 2-core box
def test_capped_calibration_slice_same_on_both_paths(store, export, client, tmp_path,
                                                     monkeypatch):
    """Over CAL_MAX the calibration slice is the most recent CAL_MAX labelled jobs (the rest go
    to the fit slice) on both paths, and the card says so."""
    monkeypatch.setattr(training, "CAL_MAX", 150)
    card = dask_train.train(store, "failure", str(tmp_path / "d"), client, export,
                            params={"num_boost_round": 20}, export=False)
    single = training.train(store, "failure", str(tmp_path / "s"), params={"num_boost_round": 20})
    assert card["counts"]["calibration"] == single["counts"]["calibration"] == 150
    assert card["window"] == single["window"] and single["window"]["calibration_capped_at"] == 150
    assert card["counts"] == single["counts"] and card["trained_on"] == single["trained_on"]
    uncapped = training.train(store, "failure", str(tmp_path / "u"),
                              params={"num_boost_round": 20}, cal_fraction=0.01)
    assert "calibration_capped_at" not in uncapped["window"]


def test_other_kinds_and_old_exports_are_refused(store, client, tmp_path):
    with pytest.raises(InputError, match="covers failure, memory, runtime, not gnn"):
        dask_train.train(store, "gnn", str(tmp_path), client, tmp_path / "pq")
    assert not (tmp_path / "gnn").exists() and not (tmp_path / "pq").exists()
    with pytest.raises(InputError, match="no jobmedic Parquet export"):
        dask_train.train(store, "failure", str(tmp_path), client, tmp_path / "none", export=False)
    assert not (tmp_path / "failure").exists()


@pytest.mark.slow
def test_parquet_model_auroc_within_001_of_single_machine(client, tmp_path):
    """The issue's criterion on a store large enough for a stable AUROC (~5 000 held-out jobs)."""
    s = Store(":memory:")
    fill_store(s, 25000, seed=11, n_users=120)
    card = dask_train.train(s, "failure", str(tmp_path / "d"), client, tmp_path / "pq",
                            params={"num_boost_round": 80})
    single = training.train(s, "failure", str(tmp_path / "s"), params={"num_boost_round": 80})
    assert card["counts"] == single["counts"]
    start, df = card["window"]["until_epoch"], s.jobs_frame()
    a = training.evaluate(s, "failure", str(tmp_path / "d"), start)["metrics"]["model"]["auroc"]
    b = training.evaluate(s, "failure", str(tmp_path / "s"), start)["metrics"]["model"]["auroc"]
    assert len(df) == 25000 and abs(a - b) < 0.01, (a, b)


@pytest.mark.slow
def test_cli_train_failure_on_dask_reads_the_export_beside_the_store(client, tmp_path):
    from typer.testing import CliRunner

    from jobmedic.cli import app

    db = tmp_path / "s.db"
    s = Store(db)
    fill_store(s, 2000, seed=12, n_users=20)
    s.close()
    r = CliRunner().invoke(app, ["--db", str(db), "train", "failure", "--engine", "dask",
                                 "--scheduler", client.scheduler.address,
                                 "--param", "num_boost_round=30"])
    assert r.exit_code == 0, r.output
    assert "on Dask" in r.output
    assert (tmp_path / "s.db.parquet" / "_schema.json").exists()  # exported first
    _, meta = registry.load(str(tmp_path / "s.db.models"), "failure")
    assert meta["card"]["counts"]["fit"] > 50
