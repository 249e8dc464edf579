"""Philly GPU jobs and their telemetry windows: a real excerpt (jobs, samples at the right
minutes, percent-free memory turned into used, missing cells, the source's multi-line DST
cells), a job with no samples, refusals, and the whole real folder."""
from __future__ import annotations

import pytest

from jobmedic.ingest import READERS, IngestContext, run_ingest
from jobmedic.ingest.philly import metric_name
from jobmedic.knowledge.errors import InputError
from jobmedic.knowledge.templates import Templates
from tests.conftest import FIXTURES

DIR = FIXTURES / "philly"


def ingest(store, taxonomy, path, **kw):
    ctx = IngestContext(taxonomy, Templates(store.load_templates()), **kw)
    return run_ingest(store, READERS["philly"], str(path), ctx)


def test_philly_excerpt(store, taxonomy):
    s = ingest(store, taxonomy, DIR)
    assert (s.inserted, s.events, s.samples, s.rejected, s.status) == (6, 3, 720, 2, "partial")
    job = store.get_job("application_1506638472019_14164", "philly")
    # ...,Pass,103959,bf8cc2,2017-10-06 23:27:26,2017-10-09 02:49:20,2017-10-09 06:45:55,
    #   236.58333333333334,1,4,m22
    assert (job["state"], job["project"], job["user"], job["req_gpus"], job["n_nodes"]) == (
        "completed", "103959", "bf8cc2", 4, 1)
    assert (job["start_time"], job["elapsed_s"], job["node_list"]) == (1507517360, 14195, "m22")
    failed = store.get_job("application_1506638472019_9261", "philly")
    assert (failed["state"], failed["failure_type"], failed["blame"]) == ("failed", "unknown",
                                                                          "unclear")
    two = store.get_job("application_1508364558011_27860", "philly")
    assert two["node_list"] == "m412,m155"
    start = 1507517340  # 02:49:20 rounded down to the minute
    gpu = store.job_samples("application_1506638472019_14164", metric="gpu_util_pct")
    assert {(r["node"], r["device"]) for r in gpu} == {("m22", f"gpu{i}") for i in (2, 3, 4, 6)}
    g2 = [r for r in gpu if r["device"] == "gpu2"]
    assert [r["t"] for r in g2] == [start + 60 * m for m in range(-10, 4)]
    assert [r["value"] for r in g2[:3]] == [50.0, 100.0, 100.0]
    mem = store.job_samples("application_1506638472019_14164", metric="mem_used_pct")
    # the file's first memory cell is 46.38899208475429 % FREE
    assert mem[0]["t"] == start - 600 and mem[0]["value"] == pytest.approx(100 - 46.38899208475429)
    cpu = store.job_samples("application_1506638472019_14164", metric="cpu_util_pct")
    assert [r["value"] for r in cpu[:2]] == [25.1, 22.76] and cpu[0]["device"] == ""
    # all -1 / empty cells: a job with no samples at all
    assert store.job_samples("application_1508364558011_17022") == []
    # the printed-Series cells of the repeated DST hour are missing, the rest of the row kept
    dst = store.job_samples("application_1508364558011_27860", metric="cpu_util_pct")
    assert len([r for r in dst if r["node"] == "m155"]) == 10
    rej = sorted((r["line"], r["reason"]) for r in store.recent_rejects())
    why = "philly_job_windows_long.csv: minute -10, -9, -8, -7: not a number, taken as missing"
    assert rej == [(7, why), (20, why)]
    again = ingest(store, taxonomy, DIR)
    assert (again.inserted, again.updated, again.events, again.samples) == (0, 0, 0, 0)
    assert len(store.recent_rejects()) == 2  # a re-ingest replaces its rejects


def test_philly_jobs_file_path_and_scope(store, taxonomy):
    s = ingest(store, taxonomy, DIR / "philly_jobs.csv", cluster="philly2")
    assert s.samples == 720
    assert store.telemetry_counts(["103959"])["jobs"] == 1
    assert store.telemetry_counts(["nope"])["rows"] == 0


def test_philly_bad_rows(store, taxonomy, tmp_path):
    jobs = (DIR / "philly_jobs.csv").read_text().splitlines()
    jobs[3] = jobs[3].replace(",Failed,", ",Maybe,")  # job 9261
    (tmp_path / "philly_jobs.csv").write_text("\n".join(jobs) + "\n")
    win = (DIR / "philly_job_windows_long.csv").read_text().splitlines()
    win[1] = win[1].replace(",25.1,", ",125.1,")
    (tmp_path / "philly_job_windows_long.csv").write_text("\n".join(win) + "\n")
    s = ingest(store, taxonomy, tmp_path)
    rej = {(r["reason"].split(":")[0], r["line"]): r["reason"] for r in store.recent_rejects()}
    assert "Pass/Failed" in rej[("philly_jobs.csv", 4)]
    assert "outside [0, 100]: 125.1" in rej[("philly_job_windows_long.csv", 2)]
    # job 9261 was dropped with its line: its windows are rejects, not orphan samples
    assert "not in philly_jobs.csv" in rej[("philly_job_windows_long.csv", 5)]
    assert "not in philly_jobs.csv" in rej[("philly_job_windows_long.csv", 53)]
    assert s.inserted == 5 and store.job_samples("application_1506638472019_9261") == []
    assert len(store.job_samples("application_1506638472019_14164", metric="cpu_util_pct")) == 0


def test_philly_refusals(store, taxonomy, tmp_path):
    with pytest.raises(InputError, match="not philly_jobs.csv"):
        ingest(store, taxonomy, FIXTURES / "eagle_excerpt.csv")
    (tmp_path / "philly_jobs.csv").write_text((DIR / "philly_jobs.csv").read_text())
    with pytest.raises(InputError, match="philly_job_windows_long.csv not found"):
        ingest(store, taxonomy, tmp_path)
    assert store.table_counts()["jobs"] == 0


def test_metric_names():
    assert metric_name("mem_util", "memory") == "mem_used_pct"
    assert metric_name("gpu_util", "utilization") == "gpu_util_pct"
    assert metric_name("mem_util", "utilization") == "mem_util_utilization_pct"


def test_philly_real_folder(shared_data, store, taxonomy):
    s = ingest(store, taxonomy, shared_data / "philly_gpu_jobs")
    assert (s.inserted, s.events, s.samples, s.rejected) == (4219, 1871, 533940, 16)
    states = dict(store.conn.execute("SELECT raw_state, COUNT(*) FROM jobs GROUP BY 1"))
    assert states == {"Pass": 2348, "Failed": 1871}
