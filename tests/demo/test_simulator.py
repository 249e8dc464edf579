"""The demo's simulated cluster: deterministic, written as real sacct text and kubectl JSON
that the real readers parse without rejects, with each planted mechanism present."""
from __future__ import annotations

import json
from collections import Counter

from jobmedic.demo.cluster import BUSY_HOURS, FAILING_NODE, OOM_PROJECT, simulate
from jobmedic.demo.kubectl_json import BAD_IMAGE, simulate_pods, write_pods
from jobmedic.demo.sacct_text import compress_nodes, write_sacct
from jobmedic.ingest import READERS, IngestContext, run_ingest
from jobmedic.knowledge.store import Store
from jobmedic.knowledge.templates import Templates

ANCHOR = 1763856000


def test_same_seed_same_history(tmp_path):
    a, b = simulate(ANCHOR, days=3, seed=5), simulate(ANCHOR, days=3, seed=5)
    write_sacct(a.jobs, tmp_path / "a.txt")
    write_sacct(b.jobs, tmp_path / "b.txt")
    assert (tmp_path / "a.txt").read_bytes() == (tmp_path / "b.txt").read_bytes()
    assert simulate(ANCHOR, days=3, seed=6).jobs != a.jobs


def test_compressed_node_lists():
    assert compress_nodes(["cn003", "cn004", "cn005", "cn009"]) == "cn[003-005,009]"
    assert compress_nodes(["gpu07"]) == "gpu07"
    assert compress_nodes([]) == "None assigned"


def test_mechanisms_are_planted():
    c = simulate(ANCHOR, days=14, seed=7)
    jobs = c.jobs
    oom_rate = lambda p: (sum(j.state == "OUT_OF_MEMORY" for j in jobs if j.project == p)
                          / max(1, sum(j.project == p for j in jobs)))
    assert oom_rate(OOM_PROJECT) > 0.15 and oom_rate("climate") == 0
    bad = [j for j in jobs if FAILING_NODE in j.nodes and j.submit >= c.truth["node_bad_from"]]
    early = [j for j in jobs if FAILING_NODE in j.nodes and j.submit < c.truth["node_bad_from"]]
    fail = lambda js: sum(j.state in ("NODE_FAIL", "FAILED") for j in js) / len(js)
    assert fail(bad) > 3 * fail(early)
    by_hour = Counter((j.submit // 3600) % 24 for j in jobs)
    assert min(by_hour[h] for h in BUSY_HOURS) > 2 * by_hour[10]
    retries = [j for j in jobs if j.resubmit_of]
    assert retries and all(j.req_mem_mb == 2 * next(f for f in jobs if f.job_id == j.resubmit_of
                                                    ).req_mem_mb for j in retries[:20])
    assert all(j.submit < ANCHOR and (j.end <= ANCHOR) for j in jobs)


def test_real_readers_parse_everything(tmp_path, taxonomy):
    c = simulate(ANCHOR, days=4, seed=2, jobs_per_day=200)
    write_sacct(c.jobs, tmp_path / "sacct.txt")
    pods = simulate_pods(ANCHOR, days=6, seed=2, pods_per_day=40)
    write_pods(pods, tmp_path / "pods.json")
    assert json.loads((tmp_path / "pods.json").read_text())["kind"] == "List"
    with Store(tmp_path / "d.db") as store:
        s = run_ingest(store, READERS["slurm"], str(tmp_path / "sacct.txt"),
                       IngestContext(taxonomy, Templates([]), cluster="hpc"))
        assert (s.inserted, s.rejected) == (len(c.jobs), 0)
        k = run_ingest(store, READERS["kubernetes"], str(tmp_path / "pods.json"),
                       IngestContext(taxonomy, Templates(store.load_templates()), cluster="k8s"))
        assert (k.inserted, k.rejected) == (len(pods), 0)
        types = dict(store.conn.execute(
            "SELECT failure_type, COUNT(*) FROM jobs WHERE cluster = 'k8s' AND image = ? "
            "GROUP BY failure_type", (BAD_IMAGE,)).fetchall())
        assert set(types) == {"image_pull"}
        oom = store.conn.execute("SELECT COUNT(*) FROM jobs WHERE cluster = 'hpc' AND "
                                 "failure_type = 'oom' AND project = ?", (OOM_PROJECT,)).fetchone()[0]
        assert oom == sum(j.state == "OUT_OF_MEMORY" for j in c.jobs)
