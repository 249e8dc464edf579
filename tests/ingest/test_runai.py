"""Run:AI-style failure records: JSON Lines and arrays, classification when failure_type is
absent or not a code, jobs rows, broken lines rejected with their numbers."""
from __future__ import annotations

import json

import pytest

from jobmedic.ingest import READERS, IngestContext, run_ingest
from jobmedic.ingest.runai import FieldProblem, parse_timestamp
from jobmedic.knowledge.errors import InputError
from jobmedic.knowledge.templates import Templates
from tests.conftest import FIXTURES

RUNAI = READERS["runai"]
JSONL = FIXTURES / "runai_failures.jsonl"


def ingest(store, taxonomy, path, **kw):
    ctx = IngestContext(taxonomy, Templates(store.load_templates()), **kw)
    return run_ingest(store, RUNAI, str(path), ctx)


def events(store):
    cur = store.conn.execute("SELECT * FROM failure_events ORDER BY id")
    cols = [d[0] for d in cur.description]
    return {r[cols.index("job_name")] or r[cols.index("pod_name")]: dict(zip(cols, r)) for r in cur}


@pytest.mark.parametrize("value,epoch", [
    ("2024-05-01T10:00:00Z", 1714557600), ("2024-05-01T12:00:00+02:00", 1714557600),
    ("2024-05-01 10:00:00", 1714557600), (1714557600, 1714557600), (1714557600123, 1714557600),
    ("1714557600", 1714557600)])
def test_timestamps(value, epoch):
    assert parse_timestamp(value) == epoch


def test_bad_timestamp_names_the_field():
    with pytest.raises(FieldProblem, match="timestamp"):
        parse_timestamp("yesterday")


@pytest.fixture
def loaded(store, taxonomy):
    return ingest(store, taxonomy, JSONL, cluster="runai-prod")


def test_counts_and_rejects(loaded, store):
    assert (loaded.read, loaded.events, loaded.rejected) == (9, 6, 3)
    rej = {r["line"]: r["reason"] for r in store.recent_rejects()}
    assert set(rej) == {6, 7, 8}
    assert "bad JSON" in rej[6]
    assert "job_name" in rej[7]
    assert "timestamp" in rej[8] and "yesterday" in rej[8]


@pytest.mark.parametrize("name,failure_type,blame", [
    ("train-resnet", "oom", "job"),               # a known code is kept
    ("bert-finetune", "dependency_error", "job"),  # classified from the text
    ("llm-eval", "image_pull", "job"),            # a Kubernetes reason, not a code
    ("ddp-pretrain", "nccl_error", "unclear"),
    ("xid-victim", "gpu_error", "cluster"),       # the events snippet says Xid
    ("sweep-lr-3", "config_error", "job"),
])
def test_classification(loaded, store, name, failure_type, blame):
    e = events(store)[name]
    assert (e["failure_type"], e["blame"]) == (failure_type, blame)
    assert e["template_id"] is not None and e["cluster"] == "runai-prod"


def test_event_fields_and_job_rows(loaded, store):
    e = events(store)["train-resnet"]
    assert (e["project"], e["user"], e["pod_name"], e["node_name"], e["gpu_count"],
            e["memory_request"], e["cpu_request"], e["timestamp"]) == (
        "ml-team", "alice", "train-resnet-0-0", "gpu-node-03", 2, "64Gi", "8", 1714561960)
    assert "epoch 3" in e["logs_snippet"]
    cur = store.conn.execute("SELECT * FROM jobs WHERE job_id = 'ml-team/train-resnet'")
    j = dict(zip([d[0] for d in cur.description], cur.fetchone()))
    assert (j["state"], j["failure_type"], j["req_gpus"], j["req_mem_mb"], j["req_cpus"],
            j["end_time"], j["node_list"]) == ("oom", "oom", 2, 65536.0, 8, 1714561960, "gpu-node-03")
    states = dict(store.conn.execute("SELECT name, state FROM jobs"))
    assert states["llm-eval"] == "failed" and states["sweep-lr-3"] == "failed"
    assert store.conn.execute("SELECT req_cpus FROM jobs WHERE name = 'sweep-lr-3'").fetchone() == (1,)


def test_reingest_is_idempotent(loaded, store, taxonomy):
    again = ingest(store, taxonomy, JSONL, cluster="runai-prod")
    assert (again.events, again.inserted, again.updated, again.rejected) == (0, 0, 0, 3)
    assert store.conn.execute("SELECT COUNT(*) FROM rejects").fetchone()[0] == 3


def test_json_array_and_wrapper(store, taxonomy, tmp_path):
    good = [json.loads(line) for line in JSONL.read_text().splitlines()[:5]]
    p = tmp_path / "a.json"
    p.write_text(json.dumps(good, indent=2))
    assert ingest(store, taxonomy, p).events == 5
    q = tmp_path / "b.json"
    q.write_text(json.dumps({"total": 5, "failures": good}))
    assert ingest(store, taxonomy, q, cluster="other").events == 5


@pytest.mark.parametrize("text", ["job_name,project\n", '{"kind": "List", "items": [{"a": 1}]}',
                                  '[{"apiVersion": "v1", "kind": "Pod"}]'])
def test_wrong_input_refused(store, taxonomy, tmp_path, text):
    p = tmp_path / "x.json"
    p.write_text(text)
    with pytest.raises(InputError):
        ingest(store, taxonomy, p)
    assert store.table_counts()["failure_events"] == 0
