"""Issue 11, bad input: each defect reproduced, each now a reject with its line (the rest of the
file lands), and runs that end `ok`, `partial`, `truncated` or `failed` truthfully."""
from __future__ import annotations

import gzip
import json
import lzma
import zlib

import pytest
from typer.testing import CliRunner

from jobmedic.cli import app
from jobmedic.ingest import READERS, IngestContext, run_ingest
from jobmedic.ingest.base import Batch
from jobmedic.ingest.slurm_fields import FieldError, expand_nodelist
from jobmedic.knowledge.templates import Templates
from tests.conftest import FIXTURES

SACCT_HEAD = "JobID|JobName|User|Account|State|ExitCode|Submit|Start|End|ElapsedRaw|ReqCPUS|NodeList|ReqTRES"
GOOD_TIMES = "2024-05-01T10:00:00|2024-05-01T10:00:00|2024-05-01T10:00:05"


def sacct_line(jobid: str, exit_code="0:0", times=GOOD_TIMES, elapsed="5", cpus="4",
               nodes="cn1", tres="", state="COMPLETED") -> str:
    return f"{jobid}|a|u|p|{state}|{exit_code}|{times}|{elapsed}|{cpus}|{nodes}|{tres}"


def run(store, taxonomy, tmp_path, source: str, data: str | bytes, name: str = "in.txt", **kw):
    path = tmp_path / name
    if isinstance(data, str):
        path.write_text(data, encoding="utf-8")
    else:
        path.write_bytes(data)
    ctx = IngestContext(taxonomy, Templates(store.load_templates()), **kw)
    return run_ingest(store, READERS[source], str(path), ctx)


def rejects(store) -> dict[int, str]:
    return {r[0]: r[1] for r in store.conn.execute("SELECT line, reason FROM rejects")}


def job_ids(store) -> set[str]:
    return {r[0] for r in store.conn.execute("SELECT job_id FROM jobs")}


def last_run(store) -> str:
    return store.conn.execute("SELECT status FROM ingest_runs ORDER BY id DESC LIMIT 1").fetchone()[0]


# -- slurm ------------------------------------------------------------------------------------
@pytest.mark.parametrize("bad, why", [
    (sacct_line("2", cpus="inf"), "ReqCPUS"),
    (sacct_line("2", cpus="-4"), "negative"),
    (sacct_line("2", elapsed="99999999999999999999"), "Elapsed"),
    (sacct_line("2", times="0001-05-01T10:00:00|2024-05-01T10:00:00|2024-05-01T10:00:05"),
     "Submit"),
    (sacct_line("2", times="2024-05-01T10:00:00|2024-05-01T10:00:00|9999-05-01T10:00:05"), "End"),
    (sacct_line("2", exit_code="99999999999999999999:0", state="FAILED"), "ExitCode"),
    (sacct_line("2", nodes="n[0-1]" * 22), "10,000"),
    (sacct_line("2", tres="gres/gpu=99999999999999"), "gpus"),
])
def test_sacct_bad_value_is_a_reject_and_the_file_goes_on(store, taxonomy, tmp_path, bad, why):
    text = "\n".join([SACCT_HEAD, sacct_line("1"), bad, sacct_line("3")]) + "\n"
    s = run(store, taxonomy, tmp_path, "slurm", text)
    assert job_ids(store) == {"1", "3"}
    assert why in rejects(store)[3]
    assert (s.status, last_run(store)) == ("partial", "partial")
    assert store.conn.execute("SELECT COUNT(*) FROM job_nodes").fetchone()[0] == 2


def test_node_list_cap_before_expanding():
    assert len(expand_nodelist("n[0-1]" * 13)) == 8192  # under the cap: expanded
    with pytest.raises(FieldError, match="10,000"):
        expand_nodelist("n[0-1]" * 22)  # 4.19 M names before the cap
    with pytest.raises(FieldError):
        expand_nodelist(",".join(f"n{i}" for i in range(10_001)))


def test_sacct_header_only_and_header_plus_garbage_fail(store, taxonomy, tmp_path):
    s = run(store, taxonomy, tmp_path, "slurm", SACCT_HEAD + "\n")
    assert s.status == "failed" and "no records" in s.error
    s = run(store, taxonomy, tmp_path, "slurm", SACCT_HEAD + "\nthis is|not sacct\n!!!\n")
    assert s.status == "failed" and "nothing usable" in s.error and last_run(store) == "failed"


def test_reingest_of_known_rows_is_ok_not_failed(store, taxonomy, tmp_path):
    text = "\n".join([SACCT_HEAD, sacct_line("1")]) + "\n"
    assert run(store, taxonomy, tmp_path, "slurm", text).status == "ok"
    again = run(store, taxonomy, tmp_path, "slurm", text)
    assert (again.status, again.inserted) == ("ok", 0)


def test_cli_exit_code_non_zero_when_nothing_usable(tmp_path):
    runner = CliRunner()
    db = str(tmp_path / "jm.db")
    (tmp_path / "garbage.txt").write_text(SACCT_HEAD + "\ngarbage\n")
    (tmp_path / "head.txt").write_text(SACCT_HEAD + "\n")
    (tmp_path / "ints.json").write_text("[1,2,3]")
    for source, name in (("slurm", "garbage.txt"), ("slurm", "head.txt"), ("runai", "ints.json")):
        res = runner.invoke(app, ["--db", db, "ingest", source, str(tmp_path / name), "--no-learn"])
        assert res.exit_code != 0, (name, res.output)
        assert "nothing usable" in res.output or "no records" in res.output
    ok = runner.invoke(app, ["--db", db, "ingest", "slurm", str(FIXTURES / "sacct_states.txt"),
                             "--no-learn"])
    assert ok.exit_code == 0, ok.output  # some rejects: partial, still a success


# -- bytes: NUL, UTF-8, truncation ----------------------------------------------------------
def test_nul_after_the_first_8k_and_invalid_utf8_are_rejects(store, taxonomy, tmp_path):
    lines = [SACCT_HEAD] + [sacct_line(str(i)) for i in range(1, 200)]
    data = ("\n".join(lines) + "\n").encode()
    assert len(data) > 8192 + 200
    rows = data.split(b"\n")
    rows[150] = rows[150].replace(b"|a|", b"|a\x00b|")  # line 151, job 150, past 8 KiB
    rows[160] = rows[160].replace(b"|a|", b"|a\xff\xfe|")  # line 161, job 160
    s = run(store, taxonomy, tmp_path, "slurm", b"\n".join(rows))
    r = rejects(store)
    assert "NUL" in r[151] and "UTF-8" in r[161]
    assert job_ids(store) == {str(i) for i in range(1, 200)} - {"150", "160"}
    assert not store.conn.execute("SELECT COUNT(*) FROM jobs WHERE instr(name, char(0)) "
                                  "OR instr(name, char(65533))").fetchone()[0]
    assert s.status == "partial"


@pytest.mark.parametrize("compress", ["gzip", "xz"])
def test_truncated_archive_keeps_every_complete_record(store, taxonomy, tmp_path, compress):
    lines = [SACCT_HEAD] + [sacct_line(str(9000 + i)) for i in range(5000)]
    raw = ("\n".join(lines) + "\n").encode()
    data = gzip.compress(raw) if compress == "gzip" else lzma.compress(raw)
    cut = data[: len(data) // 2]
    if compress == "gzip":
        avail = zlib.decompressobj(31).decompress(cut)
    else:
        avail = lzma.LZMADecompressor().decompress(cut)
    complete = avail[: avail.rfind(b"\n") + 1].count(b"\n") - 1  # data lines before the cut
    s = run(store, taxonomy, tmp_path, "slurm", cut, name="cut.bin", batch_size=500)
    assert s.status == "truncated" and "ends early" in s.error
    assert len(job_ids(store)) == complete > 0
    assert last_run(store) == "truncated"


# -- JSON readers -------------------------------------------------------------------------------
RUNAI_OK = {"job_name": "ok", "project": "p", "failure_type": "oom", "timestamp": 1714564830,
            "pod_name": "ok-0"}


@pytest.mark.parametrize("field, value, why", [
    ("timestamp", "NaN", "finite"),
    ("gpu_count", "Infinity", "finite"),
    ("gpu_count", -2, "negative"),
    ("exit_code", 2**70, "outside"),
    ("timestamp", "0001-01-01T00:00:00Z", "1970"),
    ("timestamp", "9999-01-01T00:00:00Z", "1970"),
    ("timestamp", 1e30, "1970"),
    ("error_message", "a\u0000b", "NUL"),
    ("error_message", "\ud800", "UTF-8"),
    ("job_name", {"x": 1}, "expected text"),
    ("cpu_request", "1e400", "cpu_request"),
])
def test_runai_bad_value_is_a_reject(store, taxonomy, tmp_path, field, value, why):
    bad = dict(RUNAI_OK, job_name="bad", pod_name="bad-0")
    bad[field] = value
    text = "\n".join([json.dumps(RUNAI_OK), json.dumps(bad).replace('"NaN"', "NaN")
                      .replace('"Infinity"', "Infinity"),
                      json.dumps(dict(RUNAI_OK, job_name="ok2"))]) + "\n"
    s = run(store, taxonomy, tmp_path, "runai", text, name="r.jsonl")
    assert why in rejects(store)[2]
    assert job_ids(store) == {"p/ok", "p/ok2"} and s.status == "partial"
    assert -(2**63) not in {r[0] for r in store.conn.execute("SELECT exit_code FROM jobs")}


def test_runai_non_objects_fail(store, taxonomy, tmp_path):
    s = run(store, taxonomy, tmp_path, "runai", "[1,2,3]", name="r.json")
    assert (s.status, s.rejected) == ("failed", 3)


def pod(name, **status) -> dict:
    return {"kind": "Pod", "metadata": {"name": name, "namespace": "ns"},
            "spec": {"nodeName": "n1", "containers": [{"image": "img"}]},
            "status": {"phase": "Failed", "startTime": "2024-05-01T10:00:00Z", **status}}


def _term(code):
    return [{"name": "c", "restartCount": 1,
             "state": {"terminated": {"exitCode": code, "reason": "Error",
                                      "finishedAt": "2024-05-01T10:05:00Z"}}}]


@pytest.mark.parametrize("bad, why", [
    ({"kind": "Pod", "metadata": {"name": {"x": 1}, "namespace": "ns"}}, "metadata.name"),
    (pod("bad", containerStatuses=[{"name": "c", "restartCount": 1e400}]), "restartCount"),
    (pod("bad", containerStatuses=_term(2**70)), "outside"),
    (pod("bad", startTime="0001-01-01T00:00:00Z"), "1970"),
])
def test_pod_bad_value_is_a_reject(store, taxonomy, tmp_path, bad, why):
    doc = {"kind": "List", "items": [pod("ok1"), bad, pod("ok2")]}
    text = json.dumps(doc, indent=1).replace("Infinity", "1e400")
    s = run(store, taxonomy, tmp_path, "kubernetes", text, name="pods.json")
    assert any(why in r for r in rejects(store).values()), rejects(store)
    assert job_ids(store) == {"ns/ok1", "ns/ok2"} and s.status == "partial"


def test_deeply_nested_json_is_a_reject(store, taxonomy, tmp_path):
    deep = "[" * 100_000 + "]" * 100_000
    text = json.dumps(RUNAI_OK) + "\n" + deep + "\n" + json.dumps(dict(RUNAI_OK, job_name="ok2"))
    s = run(store, taxonomy, tmp_path, "runai", text, name="r.jsonl")
    assert "nested" in rejects(store)[2]
    assert job_ids(store) == {"p/ok", "p/ok2"} and s.status == "partial"
    s = run(store, taxonomy, tmp_path, "kubernetes", '{"kind":"List","items":[' + deep + "]}",
            name="p.json")
    assert s.status == "failed"


# -- columnar readers -------------------------------------------------------------------------------
def test_swf_inf_and_google_inf_user_are_rejects(store, taxonomy, tmp_path):
    swf = (FIXTURES / "swf_statuses.swf").read_text().splitlines()
    first = next(i for i, line in enumerate(swf) if line.strip() and not line.startswith(";"))
    fields = swf[first].split()
    fields[7] = "inf"  # requested processors
    swf[first] = " ".join(fields)
    s = run(store, taxonomy, tmp_path, "swf", "\n".join(swf) + "\n", name="x.swf")
    assert "not a finite number" in rejects(store)[first + 1]
    assert s.inserted > 0 and s.status == "partial"

    rows = (FIXTURES / "google2011_jobs_excerpt.csv").read_text().splitlines()
    f = rows[1].split(",")
    f[1] = "inf"
    rows[1] = ",".join(f)
    g = rows[2].split(",")
    g[0] = "1e30"
    rows[2] = ",".join(g)
    s = run(store, taxonomy, tmp_path, "google2011", "\n".join(rows) + "\n", name="g.csv")
    r = rejects(store)
    assert "user" in r[2] and "job_id" in r[3]
    assert "-9223372036854775808" not in job_ids(store)
    assert not store.conn.execute("SELECT COUNT(*) FROM jobs WHERE user LIKE 'u-%'").fetchone()[0]


def test_eagle_unbalanced_quote_does_not_swallow_rows(store, taxonomy, tmp_path):
    rows = (FIXTURES / "eagle_excerpt.csv").read_text().splitlines()[:8]
    f = rows[2].split(",")
    f[15] = '"name'  # an open quote in line 3
    rows[2] = ",".join(f)
    g = rows[4].split(",")
    g[8] = "-3"  # negative GPUs in line 5
    rows[4] = ",".join(g)
    s = run(store, taxonomy, tmp_path, "eagle", "\n".join(rows) + "\n", name="e.csv")
    r = rejects(store)
    assert "unbalanced quote" in r[3] and "gpus_req" in r[5]
    assert s.inserted == 5 and s.status == "partial"


# -- the store refuses a row no check caught: written row by row ----------------------------------
class _OneBadRow:
    """A real Reader (the protocol) whose second job carries a 70-bit integer."""

    name = "slurm"
    description = "test reader"

    def batches(self, stream, ctx):
        stream.read()
        cols = ("cluster", "job_id", "state", "source", "exit_code")
        yield Batch(jobs=[("c", "1", "completed", "t", 0), ("c", "2", "failed", "t", 2**70),
                          ("c", "3", "completed", "t", 0)], job_columns=cols, read=3)


def test_batch_refused_by_the_store_is_written_row_by_row(store, taxonomy, tmp_path):
    (tmp_path / "x").write_text("x\n")
    ctx = IngestContext(taxonomy, Templates([]))
    s = run_ingest(store, _OneBadRow(), str(tmp_path / "x"), ctx)
    assert job_ids(store) == {"1", "3"} and s.rejected == 1 and s.status == "partial"
    assert any("refused by the store" in r[0] for r in
               store.conn.execute("SELECT reason FROM rejects"))


def test_a_live_run_is_left_running_a_dead_one_is_marked(file_store, tmp_path):
    import os
    import subprocess
    import sys

    from jobmedic.knowledge.store import Store

    live = file_store.start_ingest_run("slurm", "a")  # this process: alive
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    dead = file_store.start_ingest_run("slurm", "b")
    file_store.conn.execute("UPDATE ingest_runs SET pid = ? WHERE id = ?", (child.pid, dead))
    assert os.getpid() != child.pid
    with Store(file_store.path) as again:
        status = dict(again.conn.execute("SELECT id, status FROM ingest_runs"))
    assert status == {live: "running", dead: "interrupted"}
