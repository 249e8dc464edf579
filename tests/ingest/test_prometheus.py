"""Prometheus exposition text: node_exporter, DCGM, cgroup, a Slurm textfile series and
cAdvisor in one saved file of three scrapes; job mapping, units, counter resets, out-of-order
and repeated samples, stale markers, bad lines, future samples and refusals."""
from __future__ import annotations

import os

import pytest

from jobmedic.ingest import READERS, IngestContext, run_ingest
from jobmedic.ingest.prometheus import normalise, parse_labels, series_of
from jobmedic.knowledge.errors import InputError
from jobmedic.knowledge.templates import Templates
from tests.conftest import FIXTURES

SCRAPES = FIXTURES / "telemetry" / "scrapes.prom"
T0, T1, T2 = 1772445600, 1772445615, 1772445630


def ingest(store, taxonomy, path, **kw):
    ctx = IngestContext(taxonomy, Templates(store.load_templates()), **kw)
    return run_ingest(store, READERS["prometheus"], str(path), ctx)


def series(store, job, metric, device=None):
    rows = store.job_samples(job, metric=metric)
    return [(r["t"], r["value"]) for r in rows if device is None or r["device"] == device]


def test_scrapes(store, taxonomy):
    s = ingest(store, taxonomy, SCRAPES, cluster="c")
    assert (s.samples, s.rejected, s.status) == (27, 2, "partial")
    # DCGM: hpc_job label -> job 4211, Hostname -> node, gpu -> device, MiB -> bytes
    assert series(store, "4211", "gpu_util_pct", "gpu0") == [(T0, 87.0), (T1, 89.0)]
    fb = store.job_samples("4211", metric="gpu_mem_used_bytes")
    assert (fb[0]["node"], fb[0]["device"], fb[0]["value"]) == ("gpu017", "gpu0", 30210 * 2**20)
    assert series(store, "4211", "gpu_engine_active_pct") == [(T0, pytest.approx(83.4512))]
    # cgroup exporter: job_4211 in the cgroup path; the out-of-order 10:00:05 sample sorts in
    assert series(store, "4211", "mem_used_bytes") == [
        (T0, 8589934592.0), (T0 + 5, 9.0e9), (T1, 9663676416.0), (T2, 10737418240.0)]
    assert series(store, "4211", "mem_limit_bytes") == [(T0, 17179869184.0)]
    # a _kilobytes textfile series -> bytes; cAdvisor namespace/pod -> the kubernetes job id
    assert series(store, "4212", "slurm_job_memory_rss_bytes") == [(T0, 524288 * 1024.0)]
    assert series(store, "ml-team/resnet-train-7x9k2", "mem_used_bytes") == [(T0, 2**31)]
    # node_exporter: node from the scrape marker, counters reset-adjusted (idle 2128824.37 -> 14.2)
    idle = [(r["t"], r["value"]) for r in store.node_samples(
        "gpu017", metric="node_cpu_time_s_total:idle") if r["device"] == "cpu0"]
    assert idle == [(T0, 2128809.37), (T1, 2128824.37), (T2, pytest.approx(2128838.57))]
    avail = store.node_samples("gpu017", metric="node_mem_available_bytes")
    assert [r["t"] for r in avail] == [T0, T1]  # the NaN stale marker is no sample
    metrics = {r[0] for r in store.conn.execute("SELECT DISTINCT metric FROM telemetry")}
    assert not any(m.startswith(("go_", "node_scrape")) for m in metrics)  # noise dropped
    rej = {r["line"]: r["reason"] for r in store.recent_rejects()}
    assert "not finite" in rej[67] and "not a Prometheus sample" in rej[68]
    assert ingest(store, taxonomy, SCRAPES, cluster="c").samples == 0  # idempotent


def test_scope_on_prometheus_jobs(store, taxonomy):
    from jobmedic.knowledge.migrations import JOB_COLUMNS
    row = {c: None for c in JOB_COLUMNS} | {"cluster": "c", "job_id": "4211", "state": "running",
                                            "source": "slurm", "project": "astro"}
    store.upsert_jobs([tuple(row[c] for c in JOB_COLUMNS)], JOB_COLUMNS)
    ingest(store, taxonomy, SCRAPES, cluster="c")
    assert {r["job_id"] for r in store.node_samples("gpu017", scope=["astro"])} == {"4211"}
    assert store.job_samples("4212", scope=["astro"]) == []
    assert store.telemetry_counts(["astro"])["jobs"] == 1


def test_time_from_file_and_future(store, taxonomy, tmp_path):
    p = tmp_path / "one.prom"
    p.write_text("# TYPE node_load1 gauge\nnode_load1 0.5\nnode_load5 0.7 99999999999000\n")
    os.utime(p, (1700000000, 1700000000))
    s = ingest(store, taxonomy, p)
    assert s.samples == 1 and "in the future" in store.recent_rejects()[0]["reason"]
    assert [r["t"] for r in store.node_samples("", metric="node_load1")] == [1700000000]


@pytest.mark.parametrize("text", ['{"status":"success","data":{"result":[]}}\n',
                                  "<html><body>Not Found</body></html>\n",
                                  "jobID,user,account\n1,2,3\n", ""])
def test_not_prometheus_text(store, taxonomy, tmp_path, text):
    p = tmp_path / "x.prom"
    p.write_text(text)
    with pytest.raises(InputError, match="not Prometheus text"):
        ingest(store, taxonomy, p)
    assert store.telemetry_counts()["rows"] == 0


def test_helpers():
    assert parse_labels('{a="x",b="y\\"z",c="p\\\\q"}') == {"a": "x", "b": 'y"z', "c": "p\\q"}
    with pytest.raises(ValueError):
        parse_labels('{a=x}')
    assert normalise("DCGM_FI_DEV_FB_USED") == ("gpu_mem_used_bytes", 2.0**20)
    assert normalise("foo_memory_kib") == ("foo_memory_bytes", 1024.0)
    assert normalise("node_filesystem_used_ratio") == ("node_filesystem_used_pct", 100.0)
    assert normalise("x_percent") == ("x_pct", 1.0)
    # Prometheus' own `job` label is the scrape job, never a batch job
    assert series_of({"job": "node", "instance": "c12:9100"}) == (None, "c12", None)
    assert series_of({"exported_namespace": "ml", "exported_pod": "p1", "namespace": "gpu-op",
                      "pod": "dcgm-abc", "gpu": "3"}) == ("ml/p1", None, "gpu3")
    assert series_of({"id": "/system.slice/slurmstepd.scope/job_881_3/step_0"})[0] == "881_3"
