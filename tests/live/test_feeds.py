"""The kubectl and Run:AI pollers of `jobmedic watch` on recorded answers: a fake `kubectl`
executable on PATH printing tests/fixtures/kubectl_pods.json (a real-format recording) and a
local HTTP server on 127.0.0.1 answering tests/fixtures/runai_failures.jsonl. Only what is new
is ingested; a changed pod is re-read; a failing source does not hide the others."""
from __future__ import annotations

import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from jobmedic.live.feeds import FeedPoller, MultiPoller, http_fetch, kubectl_fetch
from jobmedic.live.poller import SourceUnavailable

FIX = Path(__file__).resolve().parents[1] / "fixtures"
PODS = json.loads((FIX / "kubectl_pods.json").read_text())
RUNAI = (FIX / "runai_failures.jsonl").read_text()
NOW = 1_795_954_940


def _fake_kubectl(tmp_path: Path, payload: dict) -> Path:
    """A `kubectl` on PATH that prints `payload` (rewritten between polls) for `get pods`."""
    data = tmp_path / "pods.json"
    data.write_text(json.dumps(payload))
    exe = tmp_path / "bin" / "kubectl"
    exe.parent.mkdir(exist_ok=True)
    exe.write_text(f"#!/bin/sh\n[ \"$1 $2\" = 'get pods' ] || exit 3\ncat {data}\n")
    exe.chmod(0o755)
    return data


@pytest.fixture
def kube_path(tmp_path, monkeypatch):
    data = _fake_kubectl(tmp_path, PODS)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    return data


def _runs(store) -> int:
    return store.conn.execute("SELECT COUNT(*) FROM ingest_runs").fetchone()[0]


def test_kubectl_poller_ingests_only_what_is_new(file_store, taxonomy, kube_path):
    p = FeedPoller(file_store, taxonomy, "k8s", "kubernetes",
                   kubectl_fetch("kubectl get pods -A -o json"))
    r1 = p.poll(now=NOW)
    assert r1.read == 10
    final = {j for (j,) in file_store.conn.execute(
        "SELECT job_id FROM jobs WHERE cluster = 'k8s' AND state NOT IN "
        "('running', 'pending', 'unknown')")}
    assert {j["job_id"] for j in r1.new_jobs} == final
    assert "runai-ml-team/train-resnet-0-0" in final and "data/etl-nightly-28571040-x7k2p" in final
    assert r1.running == 10 - len(final)
    n_jobs = file_store.conn.execute("SELECT COUNT(*) FROM jobs").fetchone()[0]
    assert n_jobs == 10 and _runs(file_store) == 1
    # the same answer again: nothing new, nothing ingested
    r2 = p.poll(now=NOW + 60)
    assert r2.new_jobs == [] and r2.read == 10 and _runs(file_store) == 1
    # one running pod ends OOMKilled: only it is read and it is the one new job
    pods = json.loads(json.dumps(PODS))
    pod = next(it for it in pods["items"] if it["metadata"]["name"] == "train-gpt-small-0-0")
    pod["status"]["phase"] = "Failed"
    cs = pod["status"]["containerStatuses"][0]
    started = cs["state"]["running"]["startedAt"]
    cs["state"] = {"terminated": {"reason": "OOMKilled", "exitCode": 137,
                                  "startedAt": started, "finishedAt": "2024-05-01T13:00:00Z"}}
    pod["metadata"]["resourceVersion"] = "999999"
    kube_path.write_text(json.dumps(pods))
    r3 = p.poll(now=NOW + 120)
    assert [j["job_id"] for j in r3.new_jobs] == ["runai-ml-team/train-gpt-small-0-0"]
    assert r3.new_jobs[0]["failure_type"] == "oom" and r3.new_jobs[0]["state"] in ("oom", "failed")
    read = file_store.conn.execute(
        "SELECT read FROM ingest_runs ORDER BY id DESC LIMIT 1").fetchone()[0]
    assert _runs(file_store) == 2 and read == 1
    # a restart (a new poller on the same store) remembers what it has seen
    again = FeedPoller(file_store, taxonomy, "k8s", "kubernetes",
                       kubectl_fetch("kubectl get pods -A -o json")).poll(now=NOW + 180)
    assert again.new_jobs == [] and _runs(file_store) == 2


def test_kubectl_missing_or_failing_is_a_source_error(tmp_path, monkeypatch):
    with pytest.raises(SourceUnavailable, match="not on PATH"):
        kubectl_fetch("kubectl-that-does-not-exist get pods -A -o json")()
    _fake_kubectl(tmp_path, PODS)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    with pytest.raises(SourceUnavailable, match="exited with 3"):
        kubectl_fetch("kubectl get nodes")()


class _Runai(BaseHTTPRequestHandler):
    body = RUNAI
    hits = 0

    def do_GET(self):
        type(self).hits += 1
        data = type(self).body.encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def runai_url():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Runai)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    _Runai.body, _Runai.hits = RUNAI, 0
    yield f"http://127.0.0.1:{srv.server_address[1]}/api/v1/failures"
    srv.shutdown()
    srv.server_close()


def _ingested_events(taxonomy, tmp_path) -> int:
    from jobmedic.ingest import READERS, IngestContext, run_ingest
    from jobmedic.knowledge.store import Store
    from jobmedic.knowledge.templates import Templates

    s = Store(tmp_path / "ref.db")
    try:
        run_ingest(s, READERS["runai"], str(FIX / "runai_failures.jsonl"),
                   IngestContext(taxonomy, Templates(s.load_templates()), cluster="runai"))
        return s.conn.execute("SELECT COUNT(*) FROM failure_events").fetchone()[0]
    finally:
        s.close()


def test_runai_endpoint_poller_ingests_only_new_records(file_store, taxonomy, runai_url,
                                                        tmp_path):
    p = FeedPoller(file_store, taxonomy, "runai", "runai", http_fetch(runai_url))
    r1 = p.poll(now=NOW)
    records = []
    for line in RUNAI.splitlines():  # the recording ends with one truncated record
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    assert len(records) == 8
    assert r1.read == len(records) and _Runai.hits == 1
    named = {f"{r.get('project') or 'default'}/{r['job_name']}" for r in records
             if r.get("job_name")}
    assert {j["job_id"] for j in r1.new_jobs} <= named
    assert "ml-team/train-resnet" in {j["job_id"] for j in r1.new_jobs}
    events = file_store.conn.execute("SELECT COUNT(*) FROM failure_events").fetchone()[0]
    assert events == _ingested_events(taxonomy, tmp_path)  # what `jobmedic ingest runai` keeps
    assert p.poll(now=NOW + 60).new_jobs == [] and _runs(file_store) == 1
    new = {"job_name": "fresh-job", "project": "ml-team", "user": "bob", "phase": "Failed",
           "failure_type": "oom", "timestamp": "2024-05-02T08:00:00Z",
           "error_message": "CUDA out of memory"}
    _Runai.body = RUNAI + json.dumps(new) + "\n"
    r3 = p.poll(now=NOW + 120)
    assert [j["job_id"] for j in r3.new_jobs] == ["ml-team/fresh-job"]
    assert r3.new_jobs[0]["failure_type"] == "oom"
    after = file_store.conn.execute("SELECT COUNT(*) FROM failure_events").fetchone()[0]
    assert after == events + 1


def test_multi_poller_survives_one_failing_source(store, taxonomy, runai_url):
    ok = FeedPoller(store, taxonomy, "runai", "runai", http_fetch(runai_url))
    bad = FeedPoller(store, taxonomy, "k8s", "kubernetes",
                     kubectl_fetch("kubectl-that-does-not-exist get pods -A -o json"))
    m = MultiPoller([bad, ok])
    r = m.poll(now=NOW)
    assert r.new_jobs and len(m.errors) == 1 and "not on PATH" in m.errors[0]
    with pytest.raises(SourceUnavailable):
        MultiPoller([bad]).poll(now=NOW)
    down = FeedPoller(store, taxonomy, "runai", "runai", http_fetch("http://127.0.0.1:9/x", 2))
    with pytest.raises(SourceUnavailable, match="could not be read"):
        down.poll(now=NOW)


def test_watch_once_polls_kubectl_from_the_configuration(tmp_path, kube_path):
    """`jobmedic watch --once` with live.sacct off and live.kubectl_command set."""
    import subprocess

    cfg = tmp_path / "jm.yaml"
    cfg.write_text("live:\n  sacct: false\n  read_output: false\n"
                   "  kubectl_command: kubectl get pods -A -o json\n")
    exe = Path(sys.executable).with_name("jobmedic")
    env = {**os.environ, "JOBMEDIC_DB": str(tmp_path / "w.db")}
    cmd = [str(exe), "--config", str(cfg), "watch", "--once",
           "--sink", f"jsonl:{tmp_path / 'a.jsonl'}"]
    proc = subprocess.run(cmd, check=False, capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "10 jobs read" in proc.stderr
    proc2 = subprocess.run(cmd, check=False, capture_output=True, text=True, env=env, timeout=120)
    assert proc2.returncode == 0 and "0 new" in proc2.stderr, proc2.stderr


def _rejects(store):
    return store.conn.execute("SELECT source, file, line, reason, raw FROM rejects "
                              "ORDER BY id").fetchall()


@pytest.mark.parametrize(("case", "break_pod", "why"), [
    ("a memory request that is no quantity",
     lambda p: p["spec"]["containers"][0].setdefault("resources", {}).__setitem__(
         "requests", {"memory": "12Qx"}), "is not a Kubernetes quantity"),
    ("metadata that is not an object", lambda p: p.__setitem__("metadata", "oops"),
     "AttributeError"),
    ("an object that is not a Pod (first in the answer)",
     lambda p: p.__setitem__("kind", "Service"), "expected Pod or Event"),
])
def test_kubectl_poller_rejects_a_broken_pod_and_keeps_the_rest(file_store, taxonomy, kube_path,
                                                                case, break_pod, why):
    pods = json.loads(json.dumps(PODS))
    broken = pods["items"][0]
    name = broken["metadata"]["name"]
    break_pod(broken)
    kube_path.write_text(json.dumps(pods, indent=1))
    p = FeedPoller(file_store, taxonomy, "k8s", "kubernetes",
                   kubectl_fetch("kubectl get pods -A -o json"))
    r = p.poll(now=NOW)
    assert (r.read, r.rejected) == (10, 1), case
    ids = {j for (j,) in file_store.conn.execute("SELECT job_id FROM jobs")}
    assert len(ids) == 9 and not any(i.endswith(f"/{name}") for i in ids), case
    [(source, file, line, reason, raw)] = _rejects(file_store)
    assert (source, file) == ("kubernetes", "kubectl get pods -A -o json")
    assert why in reason and "skipped, the other records were read" in reason
    assert "jobmedic ingest kubernetes" in reason  # what to do
    assert line == 4 and f'"kind": "{broken["kind"]}"' in raw  # where, and what it was
    # the same answer again: nothing new, and the broken pod is not rejected a second time
    r2 = p.poll(now=NOW + 60)
    assert (r2.new_jobs, r2.rejected) == ([], 0) and len(_rejects(file_store)) == 1
    # fixed, it is read like any changed pod
    kube_path.write_text(json.dumps(PODS))
    r3 = p.poll(now=NOW + 120)
    assert r3.rejected == 0 and len({j for (j,) in file_store.conn.execute(
        "SELECT job_id FROM jobs")}) == 10


def test_runai_poller_rejects_bad_records_and_keeps_the_rest(store, taxonomy, runai_url):
    """The recording holds a truncated record, one without a name and one whose timestamp is
    no time (lines 6-8); a line that is not JSON is added after line 2 and a good record at
    the end. Every bad one is a reject naming its line; every good one is read."""
    lines = RUNAI.splitlines()
    good = {"job_name": "ok-job", "project": "ml-team", "phase": "Failed",
            "failure_type": "oom", "timestamp": "2024-05-02T08:00:00Z"}
    _Runai.body = "\n".join([*lines[:2], "{this is not json", *lines[2:],
                             json.dumps(good)]) + "\n"
    p = FeedPoller(store, taxonomy, "runai", "runai", http_fetch(runai_url + "?token=s3cret"))
    r = p.poll(now=NOW)
    rej = _rejects(store)
    assert r.rejected == len(rej) == 4
    assert {f for _, f, *_ in rej} == {runai_url}  # the URL, without its query
    assert [x[2] for x in rej] == [3, 7, 8, 9]  # the lines of the answer they start on
    assert "bad JSON" in rej[0][3] and "bad JSON" in rej[1][3] and "broken" in rej[1][4]
    assert "job_name: missing" in rej[2][3] and "not an ISO 8601 time" in rej[3][3]
    assert all("jobmedic ingest runai" in x[3] for x in rej)
    ids = {j["job_id"] for j in r.new_jobs}
    assert {"ml-team/train-resnet", "ml-team/sweep-lr-3", "ml-team/ok-job"} <= ids
    assert "ml-team/bad-time" not in ids
    assert p.poll(now=NOW + 60).rejected == 0 and len(_rejects(store)) == 4
