"""The telemetry table: idempotent writes, scoped reads (through the jobs' projects),
downsampling that keeps means, peaks and counts, and pruning."""
from __future__ import annotations

import pytest

from jobmedic.knowledge.migrations import JOB_COLUMNS


def _job(store, job_id, project):
    row = {c: None for c in JOB_COLUMNS} | {"cluster": "c", "job_id": job_id, "state": "running",
                                            "source": "test", "project": project}
    store.upsert_jobs([tuple(row[c] for c in JOB_COLUMNS)], JOB_COLUMNS)


@pytest.fixture
def tstore(store):
    _job(store, "1", "pa")
    _job(store, "2", "pb")
    rows = [("c", "1", "n1", None, "mem_used_bytes", 1000 + 10 * i, float(i), "t")
            for i in range(60)]
    rows += [("c", "2", "n2", "gpu0", "gpu_util_pct", 1000 + 10 * i, 50.0, "t") for i in range(6)]
    rows += [("c", None, "n1", None, "node_mem_available_bytes", 1000, 7.0, "t")]
    assert store.add_samples(rows) == 67
    return store


def test_writes_are_idempotent_and_replace(tstore):
    assert tstore.add_samples([("c", "1", "n1", None, "mem_used_bytes", 1000, 0.0, "t")]) == 0
    assert tstore.add_samples([("c", "1", "n1", None, "mem_used_bytes", 1000, 9.0, "t")]) == 1
    s = tstore.job_samples("1", metric="mem_used_bytes")
    assert len(s) == 60 and s[0]["value"] == 9.0 and s[0]["device"] == "" and s[0]["t"] == 1000
    assert [r["t"] for r in s] == sorted(r["t"] for r in s)


def test_scope_joins_jobs(tstore):
    assert tstore.telemetry_counts() == {"rows": 67, "jobs": 2, "metrics": 3, "first_t": 1000,
                                         "last_t": 1590}
    assert tstore.telemetry_counts(["pa"])["rows"] == 60  # node-level rows need no scope
    assert tstore.job_samples("2", scope=["pa"]) == []
    assert len(tstore.job_samples("2", scope=["pb"])) == 6
    assert tstore.telemetry_counts([])["rows"] == 0
    assert len(tstore.node_samples("n1")) == 61
    assert len(tstore.node_samples("n1", scope=["pa"])) == 60
    summ = {r["metric"]: r for r in tstore.job_telemetry_summary("1")}
    m = summ["mem_used_bytes"]
    assert (m["samples"], m["series"], m["min"], m["max"], m["first_t"], m["last_t"]) == (
        60, 1, 0.0, 59.0, 1000, 1590)
    assert m["mean"] == pytest.approx(29.5)


def test_downsample_keeps_mean_max_count(tstore):
    res = tstore.downsample_telemetry(older_than=1300, step_s=60)
    # 30 raw samples of job 1 (t 1000..1290) and 6 of job 2 (t 1000..1050): buckets of 60 s
    # starting at 960 (t 1000..1010 | 1020..1070 | ...), the node row alone and unaligned
    assert res["rows_before"] == 30 + 6 + 1
    s = tstore.job_samples("1", metric="mem_used_bytes", until=1300)
    assert [r["t"] for r in s] == [960, 1020, 1080, 1140, 1200, 1260]
    assert [r["n"] for r in s] == [2, 6, 6, 6, 6, 4]
    assert s[0]["value"] == pytest.approx(0.5) and s[0]["vmax"] == 1.0
    assert s[-1]["value"] == pytest.approx(27.5) and s[-1]["vmax"] == 29.0
    total = sum(r["value"] * r["n"] for r in s)
    assert total == pytest.approx(sum(range(30)))  # the mean of the raw samples survives
    assert len(tstore.job_samples("1", since=1300)) == 30  # newer samples untouched
    assert tstore.downsample_telemetry(older_than=1300, step_s=60) == {"rows_before": 0,
                                                                       "rows_after": 0}
    # a coarser step merges the downsampled rows, weighting by their counts
    tstore.downsample_telemetry(older_than=1300, step_s=600)
    s = tstore.job_samples("1", metric="mem_used_bytes", until=1300)
    assert [(r["t"], r["n"], r["vmax"]) for r in s] == [(600, 20, 19.0), (1200, 10, 29.0)]
    assert s[1]["value"] == pytest.approx(24.5)
    summ = {r["metric"]: r for r in tstore.job_telemetry_summary("1")}
    assert summ["mem_used_bytes"]["samples"] == 60 and summ["mem_used_bytes"]["max"] == 59.0


def test_retention_prunes_then_downsamples(tstore):
    res = tstore.apply_telemetry_retention(now=1400, raw_keep_s=100, step_s=60, keep_s=300)
    # older than 1100: job 1's t 1000..1090 (10), all of job 2 (6) and the node row
    assert res["pruned"] == 17
    assert tstore.telemetry_counts()["jobs"] == 1
    s = tstore.job_samples("1")
    # 1100..1290 (20 raw) became buckets 1080 (1100..1130), 1140, 1200 (6 each), 1260 (4)
    assert [(r["t"], r["n"]) for r in s if r["t"] < 1300] == [(1080, 4), (1140, 6), (1200, 6),
                                                               (1260, 4)]
    assert (res["rows_before"], res["rows_after"]) == (20, 4)
    assert sum(r["n"] for r in s) == 50
