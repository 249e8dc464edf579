"""FRESCO job accounting (Stampede 2017): asserted parse of a real excerpt, the whole real
months, bad rows rejected with their line numbers, and a refusal of other CSVs."""
from __future__ import annotations

import pytest

from jobmedic.ingest import READERS, IngestContext, run_ingest
from jobmedic.knowledge.errors import InputError
from jobmedic.knowledge.templates import Templates
from tests.conftest import FIXTURES

EXCERPT = FIXTURES / "fresco_stampede_excerpt.csv"


def ingest(store, taxonomy, path, **kw):
    ctx = IngestContext(taxonomy, Templates(store.load_templates()), **kw)
    return run_ingest(store, READERS["fresco"], str(path), ctx)


def jobs(store):
    cur = store.conn.execute("SELECT * FROM jobs")
    cols = [d[0] for d in cur.description]
    return {r[1]: dict(zip(cols, r)) for r in cur}


def test_fresco_excerpt(store, taxonomy):
    s = ingest(store, taxonomy, EXCERPT)
    assert (s.read, s.inserted, s.rejected, s.events) == (49, 49, 0, 10)
    j = jobs(store)
    # jobID8618020,USER8594,ACCOUNT2348,JOB872778,QUEUE4,10,FAILED,
    #   09/01/2017 00:00:31,09/01/2017 00:00:46,09/01/2017 00:00:09,2,32
    a = j["8618020"]
    assert (a["cluster"], a["user"], a["project"], a["name"], a["queue"], a["source"]) == (
        "stampede", "USER8594", "ACCOUNT2348", "JOB872778", "QUEUE4", "fresco")
    assert (a["state"], a["raw_state"], a["failure_type"], a["blame"]) == (
        "failed", "FAILED", "app_error", "job")
    assert (a["timelimit_s"], a["n_nodes"], a["req_cpus"]) == (600, 2, 32)
    assert a["submit_time"] == 1504224009  # 2017-09-01 00:00:09 taken as UTC
    assert (a["start_time"], a["end_time"], a["elapsed_s"]) == (1504224031, 1504224046, 15)
    nf = j["8622378"]
    assert (nf["state"], nf["failure_type"], nf["blame"]) == ("node_fail", "node_failure",
                                                               "cluster")
    to = j["8675102"]  # TIMEOUT at 120 min across the 2017-11-05 DST change: no jump
    assert (to["state"], to["failure_type"], to["timelimit_s"], to["elapsed_s"]) == (
        "timeout", "timeout", 7200, 7204)
    c = j["8618027"]
    assert (c["state"], c["failure_type"]) == ("cancelled", "cancelled")
    assert j["8671317"]["elapsed_s"] is None  # end before start in the source: no duration
    ev = store.conn.execute("SELECT failure_type, blame, timestamp, user, project FROM "
                            "failure_events WHERE job_id = '8618020'").fetchone()
    assert ev == ("app_error", "job", 1504224046, "USER8594", "ACCOUNT2348")
    states = dict(store.conn.execute("SELECT raw_state, COUNT(*) FROM jobs GROUP BY 1"))
    assert states == {"CANCELLED": 19, "COMPLETED": 20, "FAILED": 2, "NODE_FAIL": 3,
                      "TIMEOUT": 5}
    again = ingest(store, taxonomy, EXCERPT)
    assert (again.inserted, again.updated, again.events) == (0, 0, 0)


def test_fresco_cluster_option(store, taxonomy):
    ingest(store, taxonomy, EXCERPT, cluster="stampede1")
    assert {r[0] for r in store.conn.execute("SELECT cluster FROM jobs")} == {"stampede1"}


def test_fresco_bad_rows(store, taxonomy, tmp_path):
    lines = EXCERPT.read_text().splitlines()
    lines[2] = lines[2].replace("09/01/2017 00:06:22", "2017-09-01T00:06:22", 1)
    lines[3] = lines[3] + ",extra"
    lines[4] = lines[4].replace(",30,COMPLETED,", ",thirty,COMPLETED,", 1)
    lines[5] = lines[5].replace(",COMPLETED,", ",,", 1)
    p = tmp_path / "f.csv"
    p.write_text("\n".join(lines) + "\n")
    s = ingest(store, taxonomy, p)
    rej = {r["line"]: r["reason"] for r in store.recent_rejects()}
    assert set(rej) == {3, 4, 5, 6}
    assert "start" in rej[3] and "expected 12" in rej[4] and "walltime" in rej[5]
    assert "exit_status" in rej[6]
    assert (s.inserted, s.rejected) == (45, 4)


def test_fresco_refuses_other_csv(store, taxonomy):
    with pytest.raises(InputError, match="not a FRESCO"):
        ingest(store, taxonomy, FIXTURES / "eagle_excerpt.csv")
    assert store.conn.execute("SELECT COUNT(*) FROM jobs").fetchone()[0] == 0


def test_fresco_real_months(shared_data, store, taxonomy):
    folder = shared_data / "fresco_stampede_accounting"
    for name, rows in (("sep", 30785), ("oct", 24107), ("nov", 17875)):
        s = ingest(store, taxonomy, folder / f"stampede_{name}_2017_job_accounting.csv")
        assert (s.read, s.inserted, s.rejected) == (rows, rows, 0)
    states = dict(store.conn.execute("SELECT raw_state, COUNT(*) FROM jobs GROUP BY 1"))
    assert states == {"COMPLETED": 42388, "CANCELLED": 13128, "FAILED": 9333,
                      "TIMEOUT": 7874, "NODE_FAIL": 44}
    assert store.conn.execute("SELECT COUNT(*) FROM failure_events").fetchone()[0] == 17251
