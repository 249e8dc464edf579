"""Standard Workload Format: the real RICC log (excerpt and full file) and every status code."""
from __future__ import annotations

import pytest

from jobmedic.ingest import READERS, IngestContext, run_ingest
from jobmedic.ingest.swf import cluster_from_path
from jobmedic.knowledge.errors import InputError
from jobmedic.knowledge.templates import Templates
from tests.conftest import FIXTURES

SWF = READERS["swf"]
RICC_T0 = 1272639895  # UnixStartTime in the RICC header (2010-05-01 00:04:55 JST)


def ingest(store, taxonomy, path, **kw):
    ctx = IngestContext(taxonomy, Templates(store.load_templates()), **kw)
    return run_ingest(store, SWF, str(path), ctx)


def jobs(store):
    cur = store.conn.execute("SELECT * FROM jobs")
    cols = [d[0] for d in cur.description]
    return {r[1]: dict(zip(cols, r)) for r in cur}


@pytest.mark.parametrize("path,cluster", [
    ("/x/RICC-2010-2.swf.gz", "ricc"), ("CTC-SP2-1996-3.1-cln.swf", "ctc"),
    ("mylog.swf", "mylog"), ("ANL-Intrepid-2009-1.swf.xz", "anl"),
])
def test_cluster_from_file_name(path, cluster):
    assert cluster_from_path(path) == cluster


def test_ricc_excerpt(store, taxonomy):
    s = ingest(store, taxonomy, FIXTURES / "RICC-2010-2_excerpt.swf", batch_size=100)
    assert (s.read, s.inserted, s.rejected) == (351, 351, 0)
    j = jobs(store)
    two = j["2"]  # "2 1136 0 244682 128 -1 -1 128 259200 1024000 1 2 2 -1 1 -1 -1 -1"
    assert two["cluster"] == "ricc" and two["source"] == "swf"
    assert two["submit_time"] == RICC_T0 + 1136
    assert two["start_time"] == RICC_T0 + 1136
    assert two["end_time"] == RICC_T0 + 1136 + 244682
    assert two["elapsed_s"] == 244682 and two["timelimit_s"] == 259200
    assert two["req_cpus"] == 128 and two["req_mem_mb"] == 1024000 * 128 / 1024
    assert two["max_rss_mb"] is None  # -1: not recorded
    assert (two["user"], two["project"], two["queue"], two["qos"], two["name"]) == (
        "u2", "g2", "q1", None, None)
    assert (two["state"], two["raw_state"], two["failure_type"]) == ("completed", "COMPLETED", None)
    three = j["3"]  # waited 2534 s
    assert three["start_time"] == RICC_T0 + 1160 + 2534
    c = j["28"]
    assert (c["state"], c["failure_type"], c["blame"]) == ("cancelled", "cancelled", "job")
    states = dict(store.conn.execute("SELECT state, COUNT(*) FROM jobs GROUP BY 1"))
    assert states == {"completed": 299, "cancelled": 52}
    assert store.table_counts()["failure_events"] == 0  # cancelled is not a failure


def test_statuses_memory_comments_and_rejects(store, taxonomy):
    s = ingest(store, taxonomy, FIXTURES / "swf_statuses.swf", cluster="lab")
    j = jobs(store)
    assert s.inserted == 8 and s.rejected == 2
    rej = {r["line"]: r["reason"] for r in store.recent_rejects()}
    assert "expected 18 whitespace-separated fields, found 5" in rej[16]
    assert "user" in rej[17] and "'x'" in rej[17]
    t0 = 1700000000
    one = j["1"]
    assert one["cluster"] == "lab"
    assert (one["submit_time"], one["start_time"], one["end_time"]) == (t0, t0 + 10, t0 + 110)
    assert one["max_rss_mb"] == 2048 * 4 / 1024 and one["req_mem_mb"] == 4096 * 4 / 1024
    assert (one["name"], one["queue"], one["qos"]) == ("app-12", "q2", "p1")
    expect = {
        "2": ("timeout", "FAILED", "timeout"),  # failed after running its requested 600 s
        "3": ("failed", "FAILED", "app_error"),
        "4": ("cancelled", "CANCELLED", "cancelled"),
        "5": ("unknown", "PARTIAL", None),
        "6": ("completed", "PARTIAL_COMPLETED", None),
        "7": ("failed", "PARTIAL_FAILED", "app_error"),
        "10": ("unknown", "UNKNOWN", None),
    }
    assert {k: (j[k]["state"], j[k]["raw_state"], j[k]["failure_type"]) for k in expect} == expect
    four = j["4"]  # never started: no start, end or run time; requested 16 procs
    assert (four["start_time"], four["end_time"], four["elapsed_s"], four["req_cpus"]) == (
        None, None, None, 16)
    ev = dict(store.conn.execute("SELECT job_id, failure_type FROM failure_events"))
    assert ev == {"2": "timeout", "3": "app_error", "7": "app_error"}
    again = ingest(store, taxonomy, FIXTURES / "swf_statuses.swf", cluster="lab")
    assert (again.inserted, again.updated, again.events) == (0, 0, 0)


def test_relative_times_without_unix_start(store, taxonomy, tmp_path):
    p = tmp_path / "nohdr.swf"
    p.write_text("1 100 5 10 1 -1 -1 1 60 -1 1 1 1 -1 1 -1 -1 -1\n")
    ingest(store, taxonomy, p)
    j = jobs(store)["1"]
    assert (j["cluster"], j["submit_time"], j["end_time"]) == ("nohdr", 100, 115)


@pytest.mark.parametrize("text", ["job_id,user\n1,2\n", "JobID|State\n1|x\n",
                                  "; only a comment\n", "a b c d e f g h i j k l m n o p q r\n"])
def test_wrong_format_refused(store, taxonomy, tmp_path, text):
    p = tmp_path / "bad.swf"
    p.write_text(text)
    with pytest.raises(InputError):
        ingest(store, taxonomy, p)
    assert store.table_counts()["jobs"] == 0


@pytest.mark.slow
def test_real_ricc_log(shared_data, file_store, taxonomy):
    s = ingest(file_store, taxonomy, shared_data / "pwa_ricc" / "RICC-2010-2.swf.gz")
    assert (s.read, s.inserted, s.rejected) == (447_794, 447_794, 0)
    states = dict(file_store.conn.execute("SELECT state, COUNT(*) FROM jobs GROUP BY 1"))
    assert states == {"completed": 431_549, "cancelled": 16_245}
    lo, hi = file_store.conn.execute("SELECT MIN(submit_time), MAX(submit_time) FROM jobs").fetchone()
    assert lo == RICC_T0 and hi < 1285858800  # May - Sep 2010
