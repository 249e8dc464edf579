"""`jobmedic predict --batch FILE --engine dask`: the same output as the single-machine batch,
and a scheduler that does not answer is a clear error with nothing written."""
from __future__ import annotations

import time

import pytest
from typer.testing import CliRunner

from jobmedic.knowledge.store import Store
from jobmedic.models import training
from jobmedic.models.synthetic import fill_store


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    d = tmp_path_factory.mktemp("batch")
    path = d / "s.db"
    s = Store(path)
    fill_store(s, 1500, seed=8, n_users=20)
    training.train(s, "failure", str(d / "s.db.models"), params={"num_boost_round": 30})
    df = s.jobs_frame()
    specs = df.iloc[::25][["user", "name", "project", "queue", "req_cpus", "req_mem_mb",
                           "submit_time"]].reset_index(drop=True)
    specs["submit_time"] = specs["submit_time"] + 7200
    specs.to_csv(d / "specs.csv", index=False)
    s.close()
    return path


def _run(db, *args):
    from jobmedic.cli import app

    return CliRunner().invoke(app, ["--db", str(db), "predict", "--batch",
                                    str(db.parent / "specs.csv"), *args])


@pytest.mark.slow
def test_predict_batch_on_dask_equals_single_machine(db, client, tmp_path):
    local = _run(db, "--out", str(tmp_path / "local.csv"))
    assert local.exit_code == 0, local.output
    dist = _run(db, "--engine", "dask", "--scheduler", client.scheduler.address,
                "--out", str(tmp_path / "dask.csv"))
    assert dist.exit_code == 0, dist.output
    a, b = (tmp_path / "local.csv").read_text(), (tmp_path / "dask.csv").read_text()
    assert a == b and len(a.splitlines()) == 61
    assert "failure_risk" in a.splitlines()[0]


@pytest.fixture
def small_db(tmp_path):
    """A store and a specs file, no model: the scheduler is refused before anything is read."""
    s = Store(tmp_path / "s.db")
    fill_store(s, 100, seed=8)
    s.jobs_frame().iloc[::10][["user", "name", "req_cpus"]].to_csv(tmp_path / "specs.csv",
                                                                     index=False)
    s.close()
    return tmp_path / "s.db"


def test_predict_batch_with_a_dead_scheduler_fails_and_writes_nothing(small_db, tmp_path):
    t0 = time.monotonic()
    r = _run(small_db, "--engine", "dask", "--scheduler", "tcp://127.0.0.1:9",
             "--out", str(tmp_path / "p.csv"))
    assert r.exit_code == 2 and "does not answer" in r.output and "nothing was written" in r.output
    assert not (tmp_path / "p.csv").exists()
    assert time.monotonic() - t0 < 20


def test_engine_options_need_batch(small_db):
    from jobmedic.cli import app

    r = CliRunner().invoke(app, ["--db", str(small_db), "predict", "--user", "u1", "--engine", "dask"])
    assert r.exit_code == 2 and "--batch" in r.output
