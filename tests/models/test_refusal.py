"""Training that refuses to mislead (issue 12, item 6): the mixed-store case, --cluster and
--source, the card's clusters and label counts, and predict's unseen-cluster warning."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from jobmedic.ingest import READERS, IngestContext, run_ingest
from jobmedic.knowledge.errors import ModelError
from jobmedic.knowledge.store import Store
from jobmedic.knowledge.templates import Templates
from jobmedic.models import training
from jobmedic.models.predictor import predict_one, unseen_cluster
from jobmedic.reports.predict import render
from tests.conftest import FIXTURES

SMALL = {"num_boost_round": 15, "max_depth": 3, "nthread": 1}
LEVELS = {"moderate": 0.3, "high": 0.6, "critical": 0.8}
HEADER = ("JobID|JobIDRaw|JobName|User|Account|Partition|QOS|State|ExitCode|Submit|Start|End|"
          "Elapsed|Timelimit|ReqCPUS|ReqMem|MaxRSS|NNodes|NodeList|ReqTRES|Comment")


def _sacct(n: int, seed: int = 0) -> str:
    """A real-format sacct dump of `n` jobs in 2024: user u0 fails 2 jobs of 3, the others
    rarely; a few users, one partition."""
    rng = np.random.default_rng(seed)
    t0 = datetime(2024, 5, 1, tzinfo=UTC)
    lines = [HEADER]
    for i in range(n):
        user = f"u{i % 6}"
        fails = rng.random() < (0.67 if user == "u0" else 0.08)
        sub = t0 + timedelta(minutes=17 * i)
        start, end = sub + timedelta(seconds=30), sub + timedelta(minutes=20)
        f = "%Y-%m-%dT%H:%M:%S"
        lines.append(f"{5000 + i}|{5000 + i}|job{i % 4}|{user}|acct{i % 3}|cpu|normal|"
                     f"{'FAILED' if fails else 'COMPLETED'}|{'1:0' if fails else '0:0'}|"
                     f"{sub:{f}}|{start:{f}}|{end:{f}}|00:19:30|01:00:00|4|4G||1|cn{i % 5:02d}||")
    return "\n".join(lines) + "\n"


def _ingest(store: Store, taxonomy, reader: str, path, cluster: str | None = None) -> None:
    kw = {"cluster": cluster} if cluster else {}
    ctx = IngestContext(taxonomy, Templates(store.load_templates()), **kw)
    run_ingest(store, READERS[reader], str(path), ctx)


@pytest.fixture
def mixed(tmp_path, taxonomy):
    """A RICC-like SWF store (no failures) plus a later, small Slurm cluster with failures."""
    sacct = tmp_path / "sacct.txt"
    sacct.write_text(_sacct(240))
    store = Store(tmp_path / "mixed.db")
    _ingest(store, taxonomy, "swf", FIXTURES / "RICC-2010-2_excerpt.swf")
    _ingest(store, taxonomy, "slurm", sacct, cluster="hpc2")
    yield store, tmp_path / "models"
    store.close()


def test_the_mixed_store_time_split_is_refused(mixed):
    store, models = mixed
    clusters = set(store.jobs_frame()["cluster"])
    assert clusters == {"ricc", "hpc2"}
    with pytest.raises(ModelError) as exc:
        training.train(store, "failure", str(models), params=SMALL)
    msg = exc.value.message
    assert "refusing" in msg and "0 failed" in msg and "ricc" in msg
    assert "--cluster" in exc.value.hint
    assert not models.exists() or not any(models.rglob("meta.json"))  # nothing became current


@pytest.mark.parametrize("kw", [{"clusters": ["hpc2"]}, {"sources": ["slurm"]}])
def test_train_on_one_cluster_or_source_states_what_it_saw(mixed, kw):
    store, models = mixed
    card = training.train(store, "failure", str(models), params=SMALL, **kw)
    on = card["trained_on"]
    assert set(on["clusters"]) == {"hpc2"} and set(on["sources"]) == {"slurm"}
    fit = on["labels"]["fit"]
    assert fit["positives"] >= 10 and fit["negatives"] >= 10
    assert on["clusters"]["hpc2"]["jobs"] == card["counts"]["fit"] + card["counts"]["calibration"]
    assert on["clusters"]["hpc2"]["positives"] == fit["positives"] + on["labels"]["calibration"]["positives"]
    # predict: the cluster it saw gives no warning, another one does (field and text line)
    now = int(datetime(2024, 6, 1, tzinfo=UTC).timestamp())
    seen = predict_one(store, {"cluster": "hpc2", "user": "u0", "req_cpus": 4}, now, str(models),
                       LEVELS)
    assert "unseen_cluster" not in seen and not seen.get("warnings")
    other = predict_one(store, {"cluster": "ricc", "user": "u0", "req_cpus": 4}, now, str(models),
                        LEVELS)
    assert other["unseen_cluster"]["cluster"] == "ricc"
    assert other["unseen_cluster"]["trained_on"] == ["hpc2"]
    text = render(other, LEVELS)
    assert "**Warning:** the failure model never saw cluster ricc" in text
    # the user who failed 2 of 3 jobs is riskier than a user who rarely fails
    low = predict_one(store, {"cluster": "hpc2", "user": "u3", "req_cpus": 4}, now, str(models),
                      LEVELS)
    assert seen["failure_risk"] > low["failure_risk"]


def test_unknown_cluster_or_source_names_what_the_store_holds(mixed):
    store, models = mixed
    with pytest.raises(ModelError) as exc:
        training.train(store, "failure", str(models), params=SMALL, clusters=["nope"])
    assert "ricc" in exc.value.hint and "hpc2" in exc.value.hint
    with pytest.raises(ModelError) as exc:
        training.train(store, "failure", str(models), params=SMALL, sources=["kubernetes"])
    assert "slurm" in exc.value.hint and "swf" in exc.value.hint


def test_single_class_calibration_and_few_positives_are_refused():
    on = {"clusters": {"a": {"jobs": 100, "positives": 3}}}
    yf = np.array([1] * 3 + [0] * 97)
    with pytest.raises(ModelError, match="fewer than 10 failed"):
        training.refuse_useless("failure", 10, yf, np.array([0, 1]), on, 0)
    yf = np.array([1] * 20 + [0] * 80)
    with pytest.raises(ModelError, match="single class"):
        training.refuse_useless("failure", 10, yf, np.zeros(20, int), on, 0)
    with pytest.raises(ModelError, match="fewer than 10 successful"):
        training.refuse_useless("failure", 10, 1 - np.array([1] * 3 + [0] * 97), np.array([0, 1]), on, 0)
    training.refuse_useless("failure", 10, yf, np.array([0, 1]), on, 0)  # enough of both
    training.refuse_useless("runtime", 0, np.zeros(5), np.zeros(5), on, 0)  # not a classifier


def test_unseen_cluster_needs_a_card_that_names_clusters():
    assert unseen_cluster({"card": {}}, "x") is None  # an older card: nothing to say
    meta = {"card": {"trained_on": {"clusters": {"a": {"jobs": 1}}}}}
    assert unseen_cluster(meta, "a") is None and unseen_cluster(meta, None) is None
    assert unseen_cluster(meta, "b")["trained_on"] == ["a"]


def test_cli_train_cluster_and_predict_warning(tmp_path, taxonomy):
    """`jobmedic train failure` refuses the mixed store (exit 2, the reason), `--cluster hpc2`
    trains, and `predict --cluster ricc` warns in the envelope and the text."""
    import json

    from typer.testing import CliRunner

    from jobmedic.cli import app

    db = tmp_path / "jm.db"
    sacct = tmp_path / "sacct.txt"
    sacct.write_text(_sacct(240))
    with Store(db) as store:
        _ingest(store, taxonomy, "swf", FIXTURES / "RICC-2010-2_excerpt.swf")
        _ingest(store, taxonomy, "slurm", sacct, cluster="hpc2")
    run = CliRunner().invoke
    params = ["--param", "num_boost_round=15", "--param", "nthread=1"]
    res = run(app, ["--db", str(db), "train", "failure", *params])
    assert res.exit_code == 2 and "refusing" in res.output
    res = run(app, ["--db", str(db), "train", "failure", "--cluster", "hpc2", *params])
    assert res.exit_code == 0, res.output
    assert '"hpc2"' in res.output and '"trained_on"' in res.output
    res = run(app, ["--db", str(db), "models"])
    assert res.exit_code == 0 and "on hpc2" in res.output
    res = run(app, ["--db", str(db), "predict", "--cluster", "ricc", "--user", "u0", "--json"])
    assert res.exit_code == 0, res.output
    env = json.loads(res.stdout)
    assert env["data"]["unseen_cluster"]["cluster"] == "ricc"
    assert "never saw cluster ricc" in env["text"]
