"""The ingest commands end to end: `sync slurm` with a fake sacct on PATH, `--json`, the
progress bar's rows/s, and an ingest killed with SIGKILL mid-file."""
from __future__ import annotations

import io
import json
import os
import signal
import sqlite3
import stat
import subprocess
import sys
import time

import pytest
from typer.testing import CliRunner

from jobmedic.cli import app
from jobmedic.cli.ingest_cmd import _progress_fn
from jobmedic.knowledge.store import Store, expected_indexes
from tests.conftest import FIXTURES, ROOT

runner = CliRunner()


def fake_sacct(tmp_path, body: str) -> str:
    """A `sacct` script that records its arguments and runs `body` (sh)."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    exe = bindir / "sacct"
    exe.write_text(f"#!/bin/sh\necho \"$@\" > {tmp_path}/sacct-args\n{body}\n")
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}"


def test_sync_slurm_runs_sacct_from_path(tmp_path):
    path = fake_sacct(tmp_path, f"cat {FIXTURES / 'sacct_states.txt'}")
    db = tmp_path / "jm.db"
    res = runner.invoke(app, ["--db", str(db), "sync", "slurm", "--since", "2024-05-01",
                              "--until", "2024-05-02", "--json"], env={"PATH": path})
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout[res.stdout.index("{"):])
    assert summary["source"] == "slurm" and summary["inserted"] == 17 and summary["rejected"] == 2
    args = (tmp_path / "sacct-args").read_text()
    for flag in ("--parsable2", "--duplicates", "--starttime=2024-05-01", "--endtime=2024-05-02",
                 "--allusers", "--format=JobID,"):
        assert flag in args
    with Store(db) as s:
        assert s.table_counts()["jobs"] == 17  # the pending range 1010_[5-7,9]: 4 jobs
    again = runner.invoke(app, ["--db", str(db), "sync", "slurm", "--json"], env={"PATH": path})
    assert json.loads(again.stdout[again.stdout.index("{"):])["inserted"] == 0


def test_sync_slurm_reports_sacct_failure(tmp_path):
    path = fake_sacct(tmp_path, "echo 'sacct: error: Problem talking to the database' >&2; exit 1")
    res = runner.invoke(app, ["--db", str(tmp_path / "jm.db"), "sync", "slurm"], env={"PATH": path})
    assert res.exit_code != 0
    assert "Problem talking to the database" in res.output


def test_sync_slurm_without_sacct(tmp_path):
    res = runner.invoke(app, ["--db", str(tmp_path / "jm.db"), "sync", "slurm"],
                        env={"PATH": str(tmp_path)})
    assert res.exit_code != 0 and "sacct is not on PATH" in res.output


def test_ingest_json_summary_and_unknown_source(tmp_path):
    db = str(tmp_path / "jm.db")
    res = runner.invoke(app, ["--db", db, "ingest", "runai", str(FIXTURES / "runai_failures.jsonl"),
                              "--json"])
    assert res.exit_code == 0, res.output
    s = json.loads(res.stdout[res.stdout.index("{"):res.stdout.rindex("}") + 1])
    assert {k: s[k] for k in ("read", "events", "rejected", "status")} == {
        "read": 9, "events": 6, "rejected": 3, "status": "partial"}  # some rejects
    assert s["rate_per_s"] > 0
    bad = runner.invoke(app, ["--db", db, "ingest", "pbs", "x"])
    assert bad.exit_code == 2 and "google2011" in bad.output  # lists the known sources
    binary = tmp_path / "x.bin"
    binary.write_bytes(bytes(range(256)) * 10)
    res = runner.invoke(app, ["--db", db, "ingest", "slurm", str(binary)])
    assert res.exit_code == 2 and "binary" in res.output


def test_progress_bar_shows_rows_per_second():
    from rich.console import Console

    prog, update = _progress_fn(True)
    time.sleep(0.01)
    update(5000, 1000, 4000)
    out = io.StringIO()
    Console(file=out, force_terminal=True, width=150).print(prog.make_tasks_table(prog.tasks))
    text = out.getvalue()
    assert "5,000 rows" in text and "rows/s" in text
    assert prog.tasks[0].fields["rate"] > 0 and prog.tasks[0].completed == 1000


def _count(db: str, sql: str) -> int:
    con = sqlite3.connect(db, timeout=5)
    try:
        return con.execute(sql).fetchone()[0]
    except sqlite3.OperationalError:
        return 0
    finally:
        con.close()


def test_killed_ingest_leaves_a_consistent_store(tmp_path):
    from bench.bench_ingest import write_sacct

    src = tmp_path / "big.sacct"
    write_sacct(src, 30_000)
    allocations = sum(1 for line in src.open() if "." not in line.split("|", 1)[0]) - 1
    db = str(tmp_path / "jm.db")
    env = dict(os.environ, JOBMEDIC_INGEST__BATCH_SIZE="500")
    cmd = [sys.executable, "-m", "jobmedic", "--db", db, "ingest", "slurm", str(src), "--no-progress"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline and proc.poll() is None:
        if _count(db, "SELECT COUNT(*) FROM jobs") >= 1000:
            break
        time.sleep(0.05)
    if proc.poll() is not None:
        pytest.skip("the ingest finished before it could be killed (machine too fast)")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    jobs = con.execute("SELECT COUNT(*) FROM jobs").fetchone()[0]
    assert 0 < jobs < allocations
    # Every job that landed landed whole, with its nodes and its failure event (one batch).
    assert con.execute(
        "SELECT COUNT(*) FROM jobs j WHERE node_list NOT IN ('None assigned') AND NOT EXISTS "
        "(SELECT 1 FROM job_nodes n WHERE n.cluster = j.cluster AND n.job_id = j.job_id)"
    ).fetchone()[0] == 0
    assert con.execute(
        "SELECT COUNT(*) FROM jobs j WHERE state IN ('failed','timeout','oom','node_fail',"
        "'preempted') AND NOT EXISTS (SELECT 1 FROM failure_events e WHERE e.cluster = "
        "j.cluster AND e.job_id = j.job_id)").fetchone()[0] == 0
    assert con.execute("SELECT status, pid FROM ingest_runs").fetchall() == [("running", proc.pid)]
    con.close()
    with Store(db) as s:  # reopening puts back any index the bulk load had dropped
        names = {r[0] for r in s.conn.execute("SELECT name FROM sqlite_master WHERE type='index'")}
        assert set(expected_indexes(s.schema_version)) <= names
        # ... and marks the run the killed process left `running` (issue 11)
        assert s.conn.execute("SELECT status FROM ingest_runs").fetchall() == [("interrupted",)]
    # Re-running finishes the job (in this process: the CLI above already ran once).
    from jobmedic.ingest import READERS, IngestContext, run_ingest
    from jobmedic.knowledge.taxonomy import Taxonomy
    from jobmedic.knowledge.templates import Templates
    from jobmedic.settings import config_path

    with Store(db) as s:
        ctx = IngestContext(Taxonomy.from_yaml(config_path("taxonomy.yaml")),
                            Templates(s.load_templates()))
        summary = run_ingest(s, READERS["slurm"], str(src), ctx)
        assert summary.status == "ok" and summary.inserted == allocations - jobs
        assert s.table_counts()["jobs"] == allocations
        assert s.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
