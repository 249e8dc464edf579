"""sacct --parsable2 ingest: real fixtures, every state and unit, steps, arrays, node lists,
rejects with line numbers, idempotence and updates."""
from __future__ import annotations

import gzip
import shutil

import pytest

from jobmedic.ingest import READERS, IngestContext, run_ingest
from jobmedic.knowledge.errors import InputError
from jobmedic.knowledge.templates import Templates
from tests.conftest import FIXTURES

SLURM = READERS["slurm"]


def ingest(store, taxonomy, path, **kw):
    ctx = IngestContext(taxonomy, Templates(store.load_templates()), **kw)
    return run_ingest(store, SLURM, str(path), ctx)


def jobs(store):
    cur = store.conn.execute("SELECT * FROM jobs ORDER BY job_id")
    cols = [d[0] for d in cur.description]
    return {r[1]: dict(zip(cols, r)) for r in cur}


@pytest.fixture
def loaded(store, taxonomy):
    summary = ingest(store, taxonomy, FIXTURES / "sacct_states.txt")
    return summary, jobs(store)


def test_summary_counts_and_rejects(loaded, store):
    summary, j = loaded
    assert summary.read == 21  # data lines; the header is not a record
    assert summary.rejected == 2
    rejects = {r["line"]: r["reason"] for r in store.recent_rejects()}
    assert set(rejects) == {20, 21}
    assert "expected 21" in rejects[20]
    assert "Submit" in rejects[21] and "yesterday" in rejects[21]
    assert "1014" in j  # the line after the bad ones still landed


@pytest.mark.parametrize("job_id,state,failure_type,blame", [
    ("1001", "oom", "oom", "job"),
    ("1002", "timeout", "timeout", "job"),
    ("1003", "node_fail", "node_failure", "cluster"),
    ("1004", "node_fail", "node_failure", "cluster"),
    ("1005", "timeout", "timeout", "job"),
    ("1006", "preempted", "preempted", "cluster"),
    ("1007", "failed", "segfault", "job"),  # exit 139 from the batch step
    ("1008", "failed", "segfault", "job"),
    ("1009", "cancelled", "cancelled", "job"),
    ("1010_4", "completed", None, None),
    ("1011", "running", None, None),
    ("1012", "unknown", None, None),
])
def test_states(loaded, job_id, state, failure_type, blame):
    job = loaded[1][job_id]
    assert (job["state"], job["failure_type"], job["blame"]) == (state, failure_type, blame)


def test_units_steps_and_times(loaded):
    j = loaded[1]
    a = j["1001"]
    assert a["req_mem_mb"] == 8192
    assert a["max_rss_mb"] == 8100  # the largest step
    assert a["req_gpus"] == 2 and a["req_cpus"] == 4
    assert a["exit_code"] == 0 and a["signal"] == 125
    assert a["name"] == "train_résnet"
    assert a["submit_time"] == 1714557600
    b = j["1002"]
    assert b["req_mem_mb"] == 3000 * 32  # per CPU
    assert b["elapsed_s"] == 86400 + 2 * 3600 + 3 * 60 + 4
    assert b["timelimit_s"] == 86400 + 2 * 3600
    assert b["max_rss_mb"] == 40 * 1024
    c = j["1003"]
    assert c["req_mem_mb"] == 48000 * 3  # per node
    assert c["timelimit_s"] is None  # UNLIMITED
    assert j["1004"]["timelimit_s"] is None  # Partition_Limit
    assert j["1006"]["req_gpus"] == 1
    assert j["1009"]["start_time"] is None and j["1009"]["end_time"] is None


def test_arrays_and_nodes(loaded, store):
    j = loaded[1]
    assert j["1010_4"]["array_id"] == "1010"
    # a pending array range is one job per task, sharing the line's fields (issue 12)
    assert "1010_[5-7,9]" not in j
    for i in (5, 6, 7, 9):
        assert j[f"1010_{i}"]["state"] == "pending" and j[f"1010_{i}"]["array_id"] == "1010"
    nodes = [r[0] for r in store.conn.execute(
        "SELECT node FROM job_nodes WHERE job_id = '1003' ORDER BY node")]
    assert nodes == ["cn5", "gpu01", "gpu02", "gpu03", "gpu07"]
    assert not list(store.conn.execute("SELECT * FROM job_nodes WHERE job_id = '1009'"))


def test_failure_events_for_failed_jobs(loaded, store):
    rows = dict(store.conn.execute("SELECT job_id, failure_type FROM failure_events"))
    assert rows["1001"] == "oom" and rows["1003"] == "node_failure"
    assert "1009" not in rows and "1014" not in rows  # cancelled and completed are not failures
    ev = store.conn.execute("SELECT error_message, evidence, template_id FROM failure_events "
                            "WHERE job_id = '1008'").fetchone()
    assert "Segmentation fault" in ev[0] and ev[2] is not None


def test_reingest_adds_nothing(store, taxonomy):
    first = ingest(store, taxonomy, FIXTURES / "sacct_states.txt")
    counts = store.table_counts()
    again = ingest(store, taxonomy, FIXTURES / "sacct_states.txt")
    assert first.inserted > 0
    assert (again.inserted, again.updated, again.events) == (0, 0, 0)
    after = store.table_counts()
    assert after == counts  # rejects of the same file are replaced, not duplicated


def test_running_job_updated_to_final_state(store, taxonomy, tmp_path):
    header = "JobID|State|ExitCode|Submit|End|NodeList"
    (tmp_path / "a.txt").write_text(f"{header}\n77|RUNNING|0:0|2024-05-01T10:00:00|Unknown|cn1\n")
    (tmp_path / "b.txt").write_text(f"{header}\n77|FAILED|3:0|2024-05-01T10:00:00|2024-05-01T11:00:00|cn1\n")
    ingest(store, taxonomy, tmp_path / "a.txt")
    s = ingest(store, taxonomy, tmp_path / "b.txt")
    assert (s.inserted, s.updated) == (0, 1)
    job = jobs(store)["77"]
    assert job["state"] == "failed" and job["exit_code"] == 3 and job["failure_type"] == "app_error"
    assert job["end_time"] == 1714561200


def test_headerless_with_fields(store, taxonomy, tmp_path):
    p = tmp_path / "noheader.txt"
    p.write_text("55|COMPLETED|0:0|cn[1-2]\n56|FAILED|1:0|cn3\n")
    s = ingest(store, taxonomy, p, fields=["JobID,State,ExitCode,NodeList"])
    assert s.inserted == 2
    with pytest.raises(InputError, match="--fields"):
        ingest(store, taxonomy, p)


@pytest.mark.realdata
@pytest.mark.parametrize("name", ["slurm2sql_test-data1.csv", "slurm2sql_test-data2.csv"])
def test_real_slurm2sql_fixtures(store, taxonomy, shared_data, name):
    s = ingest(store, taxonomy, shared_data / "slurm_sacct_fixtures" / name)
    assert (s.inserted, s.rejected) == (2, 0)
    j = jobs(store)
    assert j["43974388"]["state"] == "cancelled"
    assert j["43974388"]["raw_state"] == "CANCELLED by 1300204"
    assert j["43974388"]["req_mem_mb"] == 2200  # 2252800K
    assert round(j["43974388"]["max_rss_mb"], 2) == round(231092 / 1024, 2)
    assert j["43974388"]["timelimit_s"] == 5 * 86400
    assert j["43977780"]["end_time"] is None  # Unknown


def test_gzip_and_stdin_like_paths(store, taxonomy, tmp_path):
    gz = tmp_path / "s.txt.gz"
    with open(FIXTURES / "sacct_states.txt", "rb") as src, gzip.open(gz, "wb") as dst:
        shutil.copyfileobj(src, dst)
    s = ingest(store, taxonomy, gz)
    # the file's 2 rejects (issue 11); its pending range 1010_[5-7,9] is 4 jobs (issue 12)
    assert s.inserted == 17 and s.status == "partial"


def test_truncated_gzip_keeps_what_was_read(store, taxonomy, tmp_path):
    body = (FIXTURES / "sacct_states.txt").read_text(encoding="utf-8")
    header, _rest = body.split("\n", 1)
    lines = [header] + [f"{9000 + i}|{9000 + i}|j|u|p|q|n|COMPLETED|0:0|2024-05-01T10:00:00|"
                        f"2024-05-01T10:00:01|2024-05-01T10:00:02|00:00:01|01:00:00|1|1G||1|cn1||"
                        for i in range(5000)]
    data = gzip.compress("\n".join(lines).encode())
    p = tmp_path / "cut.txt.gz"
    p.write_bytes(data[: len(data) // 2])
    s = ingest(store, taxonomy, p, batch_size=500)
    assert s.status == "truncated" and "ends early" in s.error
    assert 0 < store.table_counts()["jobs"] < 5000
    assert any("ends early" in r["reason"] for r in store.recent_rejects())


def test_binary_file_refused_store_untouched(store, taxonomy, tmp_path):
    p = tmp_path / "x.bin"
    p.write_bytes(bytes(range(256)) * 64)
    with pytest.raises(InputError, match="binary"):
        ingest(store, taxonomy, p)
    assert store.table_counts()["jobs"] == 0


def test_unknown_format_refused(store, taxonomy, tmp_path):
    p = tmp_path / "x.csv"
    p.write_text("a,b,c\n1,2,3\n")
    with pytest.raises(InputError, match="not sacct"):
        ingest(store, taxonomy, p)
    assert sum(store.table_counts().values()) == 0


def test_missing_file_is_input_error(store, taxonomy, tmp_path):
    with pytest.raises(InputError, match="cannot read"):
        ingest(store, taxonomy, tmp_path / "nope.txt")
