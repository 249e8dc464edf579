"""`jobmedic train / evaluate / models / predict-batch` through the CLI."""
from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from jobmedic.cli import app
from jobmedic.knowledge.store import Store
from jobmedic.models.synthetic import fill_store


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cli")
    s = Store(tmp / "jm.db")
    fill_store(s, 1500, seed=2)
    s.close()
    cfg = tmp / "cfg.yaml"
    cfg.write_text(f"models:\n  dir: {tmp / 'models'}\n")
    return tmp, ["--db", str(tmp / "jm.db"), "--config", str(cfg)]


def test_train_evaluate_list_and_batch(env):
    tmp, base = env
    r = CliRunner().invoke(app, base + ["models"])
    assert "no models yet" in r.output
    r = CliRunner().invoke(app, base + ["predict", "--user", "user1", "--json"])
    assert r.exit_code == 2 and "jobmedic train failure" in r.output
    for kind in ("failure", "runtime"):
        r = CliRunner().invoke(app, base + ["train", kind, "--param", "num_boost_round=20",
                                            "--param", "nthread=1"])
        assert r.exit_code == 0, r.output
        assert f"trained {kind} model" in r.output
    r = CliRunner().invoke(app, base + ["evaluate", "failure", "--from", "2023-12-20", "--json"])
    assert r.exit_code == 0, r.output
    card = json.loads(r.output)
    assert card["metrics"]["model"]["n"] > 0 and "name_failure_rate" in card["metrics"]
    r = CliRunner().invoke(app, base + ["evaluate", "runtime", "--from", "2023-12-20"])
    assert "requested_time" in r.output and "Walltime" in r.output
    r = CliRunner().invoke(app, base + ["models"])
    assert "failure" in r.output and "runtime" in r.output
    specs = tmp / "specs.csv"
    specs.write_text("user,name,req_cpus,req_walltime_s\nuser1,job9,4,7200\nnew-user,,1,\n")
    out = tmp / "pred.jsonl"
    r = CliRunner().invoke(app, base + ["predict-batch", str(specs), "--out", str(out), "--format", "jsonl"])
    assert r.exit_code == 0, r.output
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(rows) == 2 and 0 <= rows[0]["failure_risk"] <= 1 and rows[0]["recommended_time_s"] <= 7200
    # the memory model is not trained: its columns are left out, and the command says so
    assert "memory_q0.5" not in rows[0]
    assert "note: no memory columns: no memory model has been trained yet" in r.output
    assert "jobmedic train memory" in r.output
    # The spelling, `jobmedic predict --batch`, gives the same predictions.
    out2 = tmp / "pred2.jsonl"
    r = CliRunner().invoke(app, base + ["predict", "--batch", str(specs), "--out", str(out2), "--format", "jsonl"])
    assert r.exit_code == 0, r.output
    assert [json.loads(x) for x in out2.read_text().splitlines()] == rows


def test_batch_rejects_bad_values_and_columns(env):
    tmp, base = env
    CliRunner().invoke(app, base + ["train", "failure", "--param", "num_boost_round=20", "--param", "nthread=1"])
    bad = tmp / "bad.csv"
    bad.write_text("user,req_cpus\nu,0\n")
    r = CliRunner().invoke(app, base + ["predict-batch", str(bad)])
    assert r.exit_code == 2 and "req_cpus" in r.output and "range" in r.output
    bad.write_text("user,cpus\nu,1\n")
    r = CliRunner().invoke(app, base + ["predict-batch", str(bad)])
    assert r.exit_code == 2 and "unknown column" in r.output


def test_evaluate_with_no_model_says_how_to_train(tmp_path):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(f"models:\n  dir: {tmp_path / 'm'}\n")
    s = Store(tmp_path / "jm.db")
    fill_store(s, 300)
    s.close()
    r = CliRunner().invoke(app, ["--db", str(tmp_path / "jm.db"), "--config", str(cfg),
                                 "evaluate", "memory", "--from", "2023-12-01"])
    assert r.exit_code == 2 and "jobmedic train memory" in r.output
