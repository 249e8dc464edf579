"""The fast Dask tier of `make test` (issue 17 item 4): one 2-worker LocalCluster for the module,
in-process, on a 2 000-job store with 20 boosting rounds.

- the history features on Dask (store-fed, Parquet-fed, and for separate past specs from the
  export) equal `build_features` row by row;
- `train failure --engine dask` through the CLI writes the usual signed artifact and card (the
  single-machine split and counts), and `evaluate` / `predict` use it;
- `predict --batch --engine dask` writes the very bytes of the single-machine file, for specs
  at "now" (the per-entity summary) and for past specs (features on the workers from the
  export), with the driver never reading the jobs frame.

The big equivalence checks (AUROC within 0.01, FRESCO/Google) stay `slow`
(test_dask_parquet.py, bench/bench_dask.py)."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from jobmedic.engines import dask_engine, dask_parquet, parquet
from jobmedic.engines.dask_features import build_features_dask
from jobmedic.knowledge.store import Store
from jobmedic.models import batch, registry, summary_features, training
from jobmedic.models.features import FEATURES, build_features
from jobmedic.models.synthetic import fill_store

ROUNDS = 20
SPEC_COLS = ["user", "name", "project", "queue", "req_cpus", "req_mem_mb", "submit_time"]


@pytest.fixture(scope="module")
def client():
    """The module's cluster: two workers in this process (worker processes would add ~2 s of
    imports each and the serialisation; `--workers N` processes are exercised by the slow
    test_dask_killed_worker.py)."""
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                      dashboard_address=None) as cluster, Client(cluster) as c:
        yield c


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    path = tmp_path_factory.mktemp("fast") / "s.db"
    s = Store(path)
    fill_store(s, 2000, seed=7, n_users=20)
    s.close()
    return path


def _cli(*args):
    from jobmedic.cli import app

    return CliRunner().invoke(app, [str(a) for a in args])


def _same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    assert list(a.columns) == list(b.columns) == FEATURES
    assert a.index.equals(b.index)
    for c in FEATURES:
        x, y = a[c].to_numpy(dtype="float64"), b[c].to_numpy(dtype="float64")
        assert np.array_equal(np.isnan(x), np.isnan(y)), c
        ok = ~np.isnan(x)
        assert np.allclose(x[ok], y[ok], rtol=1e-12, atol=1e-9), c


def _past_specs(df: pd.DataFrame) -> pd.DataFrame:
    specs = df.iloc[::25][SPEC_COLS].reset_index(drop=True)
    specs["submit_time"] = specs["submit_time"] + 7200
    return specs


def test_features_on_dask_equal_single_machine_row_by_row(db, client, tmp_path):
    import dask

    s = Store(db)
    df = s.jobs_frame()
    single = build_features(df)
    # not vacuous: the history columns carry information
    assert single["user_n"].max() > 10 and single["name_fail_rate"].notna().sum() > 1000
    # store-fed (dask_features): the frame shuffled by entity
    _same(single, build_features_dask(df, client=client, npartitions=3))
    # Parquet-fed (dask_parquet): the workers read the export
    root = tmp_path / "pq"
    parquet.export(s, root, tables=("jobs",))
    with dask.config.set({"dataframe.convert-string": False}):
        got = dask_parquet.features(dask_parquet.jobs(root), 3, "tasks").compute()
    got = got.sort_values("_rowid").reset_index(drop=True)
    assert got["job_id"].tolist() == df["job_id"].tolist()
    _same(single, got[FEATURES])
    # separate past specs, history from the export (the batch scorer's re-scoring path)
    q = batch.specs_frame(_past_specs(df), 0)
    q.loc[3, "project"] = None  # a spec without a project: no history of that kind
    _same(build_features(df, q), dask_engine.export_features(root, q, client))
    s.close()


@pytest.fixture(scope="module")
def trained(db, client):
    """`train failure --engine dask` through the CLI (against the module's cluster), and the
    runtime model trained locally so the batch files carry its columns and its recent-run
    inputs (indexed lookups on the Dask path, the history frame on the local one) are compared
    too (the memory model adds no input of its own: left out, ~6 s of CPU)."""
    r = _cli("--db", db, "train", "failure", "--engine", "dask",
             "--scheduler", client.scheduler.address, "--param", f"num_boost_round={ROUNDS}")
    s = Store(db)
    training.train(s, "runtime", str(db.with_name("s.db.models")),
                   params={"num_boost_round": ROUNDS})
    s.close()
    return r


def test_cli_train_on_dask_writes_the_usual_artifact_evaluate_and_predict_use_it(
        db, trained, tmp_path):
    r = trained
    assert r.exit_code == 0, r.output
    assert "on Dask" in r.output and '"workers": 2' in r.output and '"parquet"' in r.output
    assert (db.with_name("s.db.parquet") / "_schema.json").exists()  # the workers' input
    _, meta = registry.load(str(db.with_name("s.db.models")), "failure")  # manifest hashes
    card = meta["card"]
    # the single-machine split, counts and composition
    s = Store(db)
    single = training.train(s, "failure", str(tmp_path / "single"),
                            params={"num_boost_round": ROUNDS})
    s.close()
    for k in ("window", "counts", "trained_on", "prior"):
        assert card[k] == single[k], k
    assert 0.5 < card["validation"]["model"]["auroc"] <= 1
    # evaluate reads it unchanged
    e = _cli("--db", db, "evaluate", "failure", "--from", card["window"]["until_epoch"], "--json")
    assert e.exit_code == 0, e.output
    res = json.loads(e.output)
    assert res["version"] == meta["version"] and 0.5 < res["metrics"]["model"]["auroc"] <= 1
    # predict (one spec) serves it
    p = _cli("--db", db, "predict", "--user", "u1", "--req-cpus", 4, "--json")
    assert p.exit_code == 0, p.output
    assert meta["version"] in p.output


def test_predict_batch_on_dask_writes_the_single_machine_file(db, client, trained, tmp_path,
                                                            monkeypatch):
    s = Store(db)
    df = s.jobs_frame()
    past = _past_specs(df)
    now = df.iloc[::40][["user", "name", "project", "queue", "req_cpus"]]  # submitted now
    assert not summary_features.exact_for(s, past["submit_time"].to_numpy(dtype="float64"))
    s.close()
    past.to_csv(tmp_path / "past.csv", index=False)
    now.to_csv(tmp_path / "now.csv", index=False)
    local = {}
    for name in ("past", "now"):
        r = _cli("--db", db, "predict", "--batch", tmp_path / f"{name}.csv",
                 "--retry-budget", 0.05, "--out", tmp_path / f"{name}.local.csv")
        assert r.exit_code == 0, r.output
        local[name] = (tmp_path / f"{name}.local.csv").read_text()

    def no_history(*a, **k):
        raise AssertionError("the Dask batch read the jobs frame on the driver")
    monkeypatch.setattr(Store, "jobs_frame", no_history)
    for name in ("past", "now"):
        r = _cli("--db", db, "predict", "--batch", tmp_path / f"{name}.csv", "--engine", "dask",
                 "--scheduler", client.scheduler.address, "--retry-budget", 0.05,
                 "--out", tmp_path / f"{name}.dask.csv")
        assert r.exit_code == 0, r.output
        assert (tmp_path / f"{name}.dask.csv").read_text() == local[name], name
    head = local["past"].splitlines()[0].split(",")
    assert {"failure_risk", "runtime_expected_s", "budget_time_s"} <= set(head)
    assert len(local["past"].splitlines()) == len(past) + 1
    assert len(local["now"].splitlines()) == len(now) + 1
