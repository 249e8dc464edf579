"""Google Borg 2011 trace: jobs table and raw task events, on real excerpts and the real files."""
from __future__ import annotations

import gzip

import pytest

from jobmedic.ingest import READERS, IngestContext, run_ingest
from jobmedic.ingest.google2011 import EPOCH_OFFSET
from jobmedic.knowledge.errors import InputError
from jobmedic.knowledge.templates import Templates
from tests.conftest import FIXTURES

GOOGLE = READERS["google2011"]
JOBS = FIXTURES / "google2011_jobs_excerpt.csv"
TASKS = FIXTURES / "google2011_task_events_excerpt.csv"


def ingest(store, taxonomy, path, **kw):
    ctx = IngestContext(taxonomy, Templates(store.load_templates()), **kw)
    return run_ingest(store, GOOGLE, str(path), ctx)


def rows(store, sql, *params):
    cur = store.conn.execute(sql, params)
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r)) for r in cur]


def job(store, job_id):
    return rows(store, "SELECT * FROM jobs WHERE job_id = ?", job_id)[0]


def test_epoch_offset_is_trace_600s_at_may_1_2011_19h_eastern():
    from datetime import datetime
    from zoneinfo import ZoneInfo

    t600 = datetime(2011, 5, 1, 19, 0, tzinfo=ZoneInfo("America/New_York")).timestamp()
    assert EPOCH_OFFSET + 600 == int(t600)


@pytest.fixture
def loaded(store, taxonomy):
    return ingest(store, taxonomy, JOBS, batch_size=500)


def test_jobs_counts(loaded, store):
    assert loaded.read == 1885 and loaded.inserted == 1885 and loaded.rejected == 0
    by_state = dict(store.conn.execute("SELECT state, COUNT(*) FROM jobs GROUP BY state"))
    assert by_state == {"running": 908, "completed": 473, "cancelled": 425, "failed": 48,
                        "preempted": 16, "node_fail": 15}
    # FAIL, EVICT and LOST jobs are failures with an event each; KILL is cancelled, no event.
    assert loaded.events == 48 + 16 + 15
    assert store.conn.execute("SELECT COUNT(DISTINCT cluster) FROM jobs").fetchone()[0] == 1


@pytest.mark.parametrize("job_id,expect", [
    ("609252510", {"state": "failed", "raw_state": "FAIL", "failure_type": "app_error", "blame": "job",
                       "user": "u27", "project": "u27", "name": "job-90", "queue": "class-2",
                       "submit_time": EPOCH_OFFSET, "end_time": EPOCH_OFFSET + 493328}),
    ("6132986890", {"state": "preempted", "failure_type": "preempted", "blame": "cluster",
                        "reason": "job events: 1 schedule, 1 evict, 0 fail, 0 kill, 0 lost"}),
    ("6255429781", {"state": "node_fail", "failure_type": "node_failure", "blame": "cluster",
                        "submit_time": EPOCH_OFFSET + 57553, "start_time": EPOCH_OFFSET + 57553,
                        "end_time": EPOCH_OFFSET + 86959, "elapsed_s": 29406}),
    ("259659137", {"state": "cancelled", "raw_state": "KILL", "failure_type": "cancelled", "blame": "job"}),
    ("6251750324", {"state": "completed", "raw_state": "FINISH", "failure_type": None, "blame": None,
                        "submit_time": EPOCH_OFFSET + 1572, "start_time": EPOCH_OFFSET + 1573,
                        "end_time": EPOCH_OFFSET + 1625, "elapsed_s": 51, "queue": "class-1",
                        "name": "job-3758", "user": "u238", "reason": None}),
    ("3418309", {"state": "running", "raw_state": "RUNNING", "end_time": None, "elapsed_s": None,
                     "user": "u0", "queue": "class-3", "source": "google2011", "cluster": "google2011"}),
])
def test_job_rows(loaded, store, job_id, expect):
    got = job(store, job_id)
    assert {k: got[k] for k in expect} == expect


def test_failure_event_of_a_failed_job(loaded, store):
    ev = rows(store, "SELECT * FROM failure_events WHERE job_id = '6255429781'")
    assert len(ev) == 1
    e = ev[0]
    assert (e["failure_type"], e["blame"], e["phase"], e["project"]) == ("node_failure", "cluster",
                                                                          "LOST", "u74")
    assert e["timestamp"] == EPOCH_OFFSET + 86959
    assert "LOST" in e["error_message"]


def test_reingest_adds_nothing(loaded, store, taxonomy):
    again = ingest(store, taxonomy, JOBS)
    assert (again.inserted, again.updated, again.events) == (0, 0, 0)
    assert store.table_counts()["jobs"] == 1885


def test_custom_cluster_name(store, taxonomy):
    ingest(store, taxonomy, JOBS, cluster="borg-a")
    assert store.conn.execute("SELECT DISTINCT cluster FROM jobs").fetchall() == [("borg-a",)]


def test_task_events(store, taxonomy):
    s = ingest(store, taxonomy, TASKS)
    assert s.read == 935 and s.rejected == 0
    counts = dict(store.conn.execute(
        "SELECT phase, COUNT(*) FROM failure_events GROUP BY phase"))
    assert counts == {"FAIL": 22, "EVICT": 43, "KILL": 43}
    types = dict(store.conn.execute(
        "SELECT phase, failure_type || '/' || blame FROM failure_events GROUP BY phase"))
    assert types == {"FAIL": "app_error/job", "EVICT": "preempted/cluster",
                     "KILL": "cancelled/job"}
    e = rows(store, "SELECT * FROM failure_events WHERE job_id = '5285926325' AND phase = 'FAIL'")[0]
    assert e["node_name"] == "m294847189" and e["pod_name"] == "5285926325/0"
    assert e["timestamp"] == EPOCH_OFFSET + 648  # 648,247,247 µs
    # A KILL of a task that never ran has no machine.
    k = rows(store, "SELECT node_name FROM failure_events WHERE job_id = '515042969'")
    assert k and all(r["node_name"] is None for r in k)
    # SCHEDULE events give the machines a job ran on.
    assert store.conn.execute("SELECT COUNT(*) FROM job_nodes").fetchone()[0] == 484
    assert store.conn.execute(
        "SELECT node FROM job_nodes WHERE job_id = '3418395'").fetchall() == [("m336036882",)]
    again = ingest(store, taxonomy, TASKS)
    assert again.events == 0
    assert store.conn.execute("SELECT COUNT(*) FROM failure_events").fetchone()[0] == 108


def test_events_take_project_from_jobs_ingested_before(store, taxonomy):
    ingest(store, taxonomy, JOBS)
    ingest(store, taxonomy, TASKS)
    linked = store.conn.execute(
        "SELECT COUNT(*) FROM failure_events f JOIN jobs j USING (cluster, job_id) "
        "WHERE f.source = 'google2011' AND f.pod_name IS NOT NULL AND f.project = j.project"
    ).fetchone()[0]
    unlinked = store.conn.execute(
        "SELECT COUNT(*) FROM failure_events f JOIN jobs j USING (cluster, job_id) "
        "WHERE f.pod_name IS NOT NULL AND f.project IS NULL").fetchone()[0]
    assert linked > 0 and unlinked == 0


def test_bad_lines_are_rejected_with_line_numbers(store, taxonomy, tmp_path):
    lines = JOBS.read_text().splitlines()
    lines[3] = lines[3] + ",extra"
    lines[5] = "abc" + lines[5]
    lines[7] = lines[7].replace(",,", ",WEIRD,", 1) if ",," in lines[7] else lines[7]
    p = tmp_path / "jobs.csv.gz"
    p.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    s = ingest(store, taxonomy, p)
    rej = {r["line"]: r["reason"] for r in store.recent_rejects(50)}
    assert 4 in rej and "expected 15" in rej[4]
    assert 6 in rej and "job_id" in rej[6]
    assert 8 in rej and "WEIRD" in rej[8]
    raw = {r["line"]: r["raw"] for r in store.recent_rejects(50)}
    assert raw[6] == lines[5] and raw[4] == lines[3]
    assert s.rejected == 3 and s.inserted == 1885 - 3


@pytest.mark.parametrize("text", ["hello,world\n1,2\n", "JobID|State\n1|COMPLETED\n", "\n"])
def test_wrong_format_is_refused_before_writing(store, taxonomy, tmp_path, text):
    p = tmp_path / "x.csv"
    p.write_text(text)
    with pytest.raises(InputError):
        ingest(store, taxonomy, p)
    assert store.table_counts()["jobs"] == 0
    assert store.conn.execute("SELECT COUNT(*) FROM ingest_runs").fetchone()[0] == 0


def test_real_task_events_part(shared_data, store, taxonomy):
    part = shared_data / "google_clusterdata_2011" / "task_events_part-00001-of-00500.csv.gz"
    s = ingest(store, taxonomy, part)
    assert s.rejected == 0 and s.read == 77_776
    assert s.events == 11_172 and store.table_counts()["job_nodes"] > 0


@pytest.mark.slow
def test_real_jobs_table(shared_data, file_store, taxonomy):
    path = shared_data / "google_clusterdata_2011" / "google2011_jobs.csv.gz"
    s = ingest(file_store, taxonomy, path)
    assert (s.read, s.inserted, s.rejected) == (490_845, 490_845, 0)
    by_state = dict(file_store.conn.execute("SELECT raw_state, COUNT(*) FROM jobs GROUP BY 1"))
    assert by_state == {"FINISH": 281_848, "KILL": 199_169, "FAIL": 6_731, "EVICT": 16,
                        "LOST": 15, "RUNNING": 3_066}
    assert file_store.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
