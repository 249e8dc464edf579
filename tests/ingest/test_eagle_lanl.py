"""NREL Eagle job CSV and LANL node failure records: asserted parses of real excerpts, the
real files, array tasks without ids, root-cause mapping, rejects and refusals."""
from __future__ import annotations

import pytest

from jobmedic.ingest import READERS, IngestContext, run_ingest
from jobmedic.ingest.lanl import failure_type_of
from jobmedic.knowledge.errors import InputError
from jobmedic.knowledge.templates import Templates
from tests.conftest import FIXTURES


def ingest(store, taxonomy, source, path, **kw):
    ctx = IngestContext(taxonomy, Templates(store.load_templates()), **kw)
    return run_ingest(store, READERS[source], str(path), ctx)


def jobs(store):
    cur = store.conn.execute("SELECT * FROM jobs")
    cols = [d[0] for d in cur.description]
    return {r[1]: dict(zip(cols, r)) for r in cur}


def test_eagle_excerpt(store, taxonomy):
    s = ingest(store, taxonomy, "eagle", FIXTURES / "eagle_excerpt.csv")
    assert (s.read, s.inserted, s.rejected, s.events) == (60, 60, 0, 15)
    j = jobs(store)
    a = j["532209"]  # 532209,user0014,account0003,partition001,normal,172800.0,10,10,0,0.0,...
    assert (a["cluster"], a["user"], a["project"], a["queue"], a["qos"]) == (
        "eagle", "user0014", "account0003", "partition001", "normal")
    assert (a["timelimit_s"], a["n_nodes"], a["req_cpus"], a["req_gpus"], a["req_mem_mb"]) == (
        172800, 10, 10, 0, None)
    assert a["submit_time"] == 1546332955  # 2019-01-01 08:55:55 UTC
    assert (a["start_time"], a["end_time"], a["elapsed_s"]) == (1546332956, 1546432781, 99825)
    assert (a["state"], a["name"], a["work_dir"], a["script"]) == (
        "completed", "name00005115", "work_dir00003818", "submit_line00000001")
    t = j["532225"]
    assert (t["state"], t["failure_type"], t["blame"], t["elapsed_s"]) == (
        "timeout", "timeout", "job", 172813)
    arr = [k for k in j if k.startswith("532939")]
    assert sorted(arr) == ["532939", "532939_1", "532939_2", "532939_3", "532939_4", "532939_5"]
    assert {j[k]["array_id"] for k in arr} == {"532939"}
    again = ingest(store, taxonomy, "eagle", FIXTURES / "eagle_excerpt.csv")
    assert (again.inserted, again.updated, again.events) == (0, 0, 0)


def test_eagle_bad_rows(store, taxonomy, tmp_path):
    lines = (FIXTURES / "eagle_excerpt.csv").read_text().splitlines()
    lines[2] = lines[2].replace("2019-01-01 08:55:55", "01/01/2019", 1)
    lines[3] = lines[3] + ",extra"
    lines[4] = lines[4].replace(",10,10,", ",ten,10,", 1)
    p = tmp_path / "e.csv"
    p.write_text("\n".join(lines) + "\n")
    s = ingest(store, taxonomy, "eagle", p)
    rej = {r["line"]: r["reason"] for r in store.recent_rejects()}
    assert "submit_time" in rej[3] and "expected 18" in rej[4] and "nodes_req" in rej[5]
    assert s.inserted == 57


def test_eagle_real_sample(shared_data, store, taxonomy):
    s = ingest(store, taxonomy, "eagle", shared_data / "eagle_sample" / "sample_eagle_data.csv")
    assert (s.read, s.inserted, s.rejected) == (1000, 1000, 0)
    states = dict(store.conn.execute("SELECT raw_state, COUNT(*) FROM jobs GROUP BY 1"))
    assert states == {"COMPLETED": 985, "TIMEOUT": 15}


@pytest.mark.parametrize("category,sub,expect", [
    ("Hardware", "CPU", ("node_failure", "cluster")),
    ("Hardware", "Graphics Accel Hdwr", ("gpu_error", "cluster")),
    ("Software", "Parallel File System", ("filesystem_error", "cluster")),
    ("Software", "NFS", ("filesystem_error", "cluster")),
    ("Software", "MPI, PVM, Array services", ("network_error", "unclear")),
    ("Software", "User code", ("app_error", "job")),
    ("Software", "OS", ("node_failure", "cluster")),
    ("Network", "Network", ("network_error", "unclear")),
    ("Facilities", "Power Outage", ("node_failure", "cluster")),
    ("Human Error", "Human Error", ("unknown", "cluster")),
    ("Undetermined", "Unresolvable", ("unknown", "unclear")),
])
def test_lanl_root_causes(category, sub, expect):
    assert failure_type_of(category, sub) == expect


def test_lanl_excerpt(store, taxonomy):
    s = ingest(store, taxonomy, "lanl", FIXTURES / "lanl_excerpt.csv")
    assert (s.read, s.events, s.rejected) == (72, 72, 0)
    cur = store.conn.execute("SELECT * FROM failure_events ORDER BY id")
    cols = [d[0] for d in cur.description]
    ev = [dict(zip(cols, r)) for r in cur]
    g = ev[0]  # 2,...,graphics.fe,6/21/2005 10:54,6/21/2005 11:00,6,,Graphics Accel Hdwr,...
    assert (g["cluster"], g["node_name"], g["failure_type"], g["blame"], g["phase"]) == (
        "lanl-2", "2-0", "gpu_error", "cluster", "Hardware")
    assert g["timestamp"] == 1119351240  # 2005-06-21 10:54 UTC
    assert g["error_message"] == "Hardware: Graphics Accel Hdwr; down 6 min (fixed 6/21/2005 11:00)"
    assert g["job_id"] is None
    mpi = [e for e in ev if e["evidence"] == "Software / MPI, PVM, Array services"]
    assert mpi and mpi[0]["failure_type"] == "network_error"  # the quoted field with commas
    wide = [e for e in ev if e["cluster"] == "lanl-17"]
    assert wide and all(e["node_name"] is None for e in wide)  # system-wide rows
    assert ingest(store, taxonomy, "lanl", FIXTURES / "lanl_excerpt.csv").events == 0


def test_lanl_real_file(shared_data, store, taxonomy):
    path = shared_data / "lanl_failures" / "LA-UR-05-7318-failure-data-1996-2005.csv.xz"
    s = ingest(store, taxonomy, "lanl", path)
    assert (s.read, s.rejected) == (23_739, 0)
    assert s.events == 23_739 - 25  # 25 rows repeat an earlier row exactly: one event each
    by = dict(store.conn.execute("SELECT phase, COUNT(*) FROM failure_events GROUP BY 1"))
    assert by["Hardware"] > 14_000 and by["Software"] > 5_000
    assert store.conn.execute("SELECT COUNT(DISTINCT cluster) FROM failure_events").fetchone()[0] == 23


@pytest.mark.parametrize("source,text", [
    ("eagle", "job_id,user\n1,a\n"), ("eagle", "JobID|State\n"),
    ("lanl", "System,machine type\n2,cluster\n"), ("lanl", "job_id,user,account\n")])
def test_wrong_format_refused(store, taxonomy, tmp_path, source, text):
    p = tmp_path / "x.csv"
    p.write_text(text)
    with pytest.raises(InputError):
        ingest(store, taxonomy, source, p)
    assert store.table_counts()["jobs"] == 0 and store.table_counts()["failure_events"] == 0
