"""kubectl get pods / events -A -o json: every pod failure kind, events linked to pods,
quantities, streaming of the items, rejects and refusals."""
from __future__ import annotations

import io
import json

import pytest

from jobmedic.ingest import READERS, IngestContext, jsonstream, run_ingest
from jobmedic.ingest.k8s_fields import QuantityError, mem_mb, quantity, rfc3339
from jobmedic.knowledge.errors import InputError
from jobmedic.knowledge.templates import Templates
from tests.conftest import FIXTURES

K8S = READERS["kubernetes"]
PODS, EVENTS = FIXTURES / "kubectl_pods.json", FIXTURES / "kubectl_events.json"
T = 1714521600  # 2024-05-01T00:00:00Z


def ingest(store, taxonomy, path, **kw):
    kw.setdefault("cluster", "gpu-a")
    ctx = IngestContext(taxonomy, Templates(store.load_templates()), **kw)
    return run_ingest(store, K8S, str(path), ctx)


def jobs(store):
    cur = store.conn.execute("SELECT * FROM jobs")
    cols = [d[0] for d in cur.description]
    return {r[1]: dict(zip(cols, r)) for r in cur}


@pytest.mark.parametrize("text,value", [
    ("500m", 0.5), ("2", 2.0), ("1.5", 1.5), ("512Mi", 512 * 2**20), ("64Gi", 64 * 2**30),
    ("1G", 1e9), ("100k", 1e5), ("1e3", 1000.0), (4, 4.0)])
def test_quantities(text, value):
    assert quantity(text) == value


def test_memory_in_mb_and_bad_quantity():
    assert mem_mb("64Gi") == 65536 and mem_mb("512Mi") == 512
    with pytest.raises(QuantityError):
        quantity("lots")


def test_rfc3339():
    assert rfc3339("2024-05-01T10:00:00Z") == T + 36000
    assert rfc3339("2024-05-01T12:00:00+02:00") == T + 36000
    assert rfc3339("2024-05-01T10:00:00.123456Z") == T + 36000


@pytest.fixture
def pods(store, taxonomy):
    return ingest(store, taxonomy, PODS), jobs(store)


def test_pod_counts(pods, store):
    s, _ = pods
    assert (s.read, s.inserted, s.rejected) == (10, 10, 0)
    assert store.table_counts()["job_nodes"] == 9  # the unschedulable pod has no node


@pytest.mark.parametrize("job_id,state,raw_state,failure_type,blame,exit_code", [
    ("runai-ml-team/train-resnet-0-0", "oom", "Failed/OOMKilled", "oom", "job", 137),
    ("research/bert-finetune-8xk2q", "failed", "Failed/Error", "dependency_error", "job", 1),
    ("data/etl-nightly-28571040-x7k2p", "completed", "Succeeded", None, None, 0),
    ("runai-ml-team/infer-server-5d8f7c9b4-qwx8z", "failed", "Running/CrashLoopBackOff",
     "crash_loop", "job", None),
    ("research/llm-eval-7c9d", "failed", "Pending/ImagePullBackOff", "image_pull", "job", None),
    ("runai-ml-team/big-train-0-0", "pending", "Pending/Unschedulable", "scheduling", "unclear",
     None),
    ("batch/report-gen-28571100-q2x9s", "timeout", "Failed/DeadlineExceeded", "timeout", "job",
     None),
    ("batch/cache-warm-6b7f9-abcde", "preempted", "Failed/Evicted", "preempted", "cluster", None),
    ("runai-ml-team/sweep-lr-3-0-0", "failed", "Pending/CreateContainerConfigError",
     "config_error", "job", None),
    ("runai-ml-team/train-gpt-small-0-0", "running", "Running", None, None, None),
])
def test_pod_states(pods, job_id, state, raw_state, failure_type, blame, exit_code):
    j = pods[1][job_id]
    assert (j["state"], j["raw_state"], j["failure_type"], j["blame"], j["exit_code"]) == (
        state, raw_state, failure_type, blame, exit_code)


def test_pod_fields(pods):
    j = pods[1]
    a = j["runai-ml-team/train-resnet-0-0"]
    assert (a["cluster"], a["project"], a["user"], a["name"], a["image"]) == (
        "gpu-a", "ml-team", "alice", "train-resnet", "nvcr.io/nvidia/pytorch:24.03-py3")
    assert (a["req_cpus"], a["req_gpus"], a["req_mem_mb"], a["node_list"]) == (8, 2, 65536.0,
                                                                           "gpu-node-03")
    assert (a["submit_time"], a["start_time"], a["end_time"], a["elapsed_s"]) == (
        T + 36000, T + 36005, T + 36000 + 4360, 4355)
    b = j["research/bert-finetune-8xk2q"]
    assert (b["project"], b["name"], b["req_cpus"], b["req_mem_mb"]) == (
        "research", "bert-finetune", 1, 512.0)  # 500m rounds up; 512Mi
    assert j["data/etl-nightly-28571040-x7k2p"]["user"] == "carol"  # from the owner annotation
    big = j["runai-ml-team/big-train-0-0"]
    assert (big["queue"], big["req_gpus"], big["user"]) == ("a100", 16, "bob")
    assert j["runai-ml-team/train-gpt-small-0-0"]["qos"] == "Guaranteed"


def test_pod_failure_events(pods, store, taxonomy):
    ev = store.conn.execute(
        "SELECT job_id, phase, failure_type, node_name, error_message, gpu_count, "
        "memory_request, cpu_request FROM failure_events ORDER BY id").fetchall()
    by = {(e[0].split("/")[1], e[1]): e for e in ev}
    assert len(ev) == 10  # 8 failing pods + 2 restarts seen in lastState
    oom = by[("train-resnet-0-0", "Failed")]
    assert oom[2:] == ("oom", "gpu-node-03", "OOMKilled", 2, "64Gi", "8")
    assert "No module named 'transformers'" in by[("bert-finetune-8xk2q", "Failed")][4]
    assert by[("infer-server-5d8f7c9b4-qwx8z", "Restarted")][2] == "segfault"  # exit 139
    assert by[("train-gpt-small-0-0", "Restarted")][2] == "oom"
    assert "Insufficient nvidia.com/gpu" in by[("big-train-0-0", "Pending")][4]
    again = ingest(store, taxonomy, PODS)
    assert (again.inserted, again.updated, again.events) == (0, 0, 0)


def test_events(store, taxonomy):
    ingest(store, taxonomy, PODS)
    s = ingest(store, taxonomy, EVENTS)
    assert (s.read, s.events, s.rejected) == (9, 7, 0)  # Scheduled and Pulled are not failures
    rows = store.conn.execute(
        "SELECT phase, job_id, project, job_name, failure_type, blame, node_name FROM "
        "failure_events WHERE dedup_key LIKE 'k8sevent:%'").fetchall()
    by = {r[0]: r[1:] for r in rows}
    assert by["FailedScheduling"] == ("runai-ml-team/big-train-0-0", "ml-team", "big-train-0-0",
                                      "scheduling", "unclear", None)
    assert by["BackOff"][3:] == ("crash_loop", "job", "gpu-node-01")
    assert by["BackOff"][2] == "infer-server"  # the job's name, linked from the pod row
    assert by["Failed"][3] == "image_pull"
    assert by["FailedMount"][3] == "config_error"
    assert by["Evicted"][3:5] == ("preempted", "cluster")
    assert by["OOMKilling"] == (None, None, None, "oom", "job", "gpu-node-03")
    assert by["NodeNotReady"][3:] == ("node_failure", "cluster", "gpu-node-05")
    assert ingest(store, taxonomy, EVENTS).events == 0


def test_items_are_streamed_in_small_blocks(store, taxonomy, monkeypatch):
    monkeypatch.setattr(jsonstream, "_BLOCK", 97)
    s = ingest(store, taxonomy, PODS)
    assert (s.inserted, s.rejected) == (10, 0)


def test_bad_pod_is_rejected_rest_lands(store, taxonomy, tmp_path):
    doc = json.loads(PODS.read_text())
    doc["items"][2]["spec"]["containers"][0]["resources"]["requests"]["memory"] = "lots"
    p = tmp_path / "pods.json"
    p.write_text(json.dumps(doc, indent=4, sort_keys=True))
    s = ingest(store, taxonomy, p)
    assert (s.inserted, s.rejected) == (9, 1)
    r = store.recent_rejects()[0]
    assert "etl-nightly" in r["reason"] and "lots" in r["reason"] and r["line"] > 100


def test_truncated_json_keeps_the_pods_before(store, taxonomy, tmp_path):
    text = PODS.read_text()
    p = tmp_path / "cut.json"
    p.write_text(text[: len(text) // 2])
    s = ingest(store, taxonomy, p)
    assert 0 < s.inserted < 10 and s.rejected == 1
    assert "truncated" in store.recent_rejects()[0]["reason"]


@pytest.mark.parametrize("text", ["JobID|State\n", '{"kind": "Deployment", "metadata": {}}',
                                  '{"apiVersion": "v1", "items": [{"kind": "Node"}]}'])
def test_wrong_input_refused(store, taxonomy, tmp_path, text):
    p = tmp_path / "x.json"
    p.write_text(text)
    with pytest.raises(InputError):
        ingest(store, taxonomy, p)
    assert store.table_counts()["jobs"] == 0


def test_single_pod_object_and_json_lines():
    doc = json.loads(PODS.read_text())
    one = json.dumps(doc["items"][0])
    assert [r[1]["kind"] for r in jsonstream.records(io.StringIO(one))] == ["Pod"]
    lines = "\n".join(json.dumps(i) for i in doc["items"][:3])
    assert [r[0] for r in jsonstream.records(io.StringIO(lines))] == [1, 2, 3]
