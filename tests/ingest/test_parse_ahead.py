"""Parse ahead (ingest/ahead.py): the reader in a forked child while the parent writes gives
the same store, the same summary, the same rejects and the same endings (truncated, refused,
a reader that breaks off) as reading in one process."""
from __future__ import annotations

import gzip
import os

import pytest

from jobmedic.ingest import READERS, IngestContext, ahead, run_ingest
from jobmedic.knowledge.store import Store
from jobmedic.knowledge.templates import Templates

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")

HEAD = "JobID|JobName|User|Account|State|ExitCode|Submit|Start|End|ElapsedRaw|ReqCPUS|NodeList|Comment"


def sacct(n: int) -> str:
    """n jobs with steps, failures with error text (templates), a bad value, a bad line."""
    out = [HEAD]
    for i in range(1, n + 1):
        state, code, comment = ("COMPLETED", "0:0", "")
        if i % 7 == 0:
            state, code = "FAILED", "1:0"
            comment = f"slurmstepd: error: Detected {i % 3 + 1} oom-kill event(s) in StepId={i}.batch"
        if i % 11 == 0:
            state, code, comment = "FAILED", "1:0", f"python: CUDA error: out of memory at step {i}"
        t = 1_714_521_600 + i * 60
        times = "|".join(f"2024-05-01T{(t // 3600) % 24:02d}:{(t // 60) % 60:02d}:00"
                         for _ in range(3))
        cpus = "inf" if i % 97 == 0 else "4"
        out.append(f"{i}|job{i % 5}|u{i % 9}|p{i % 3}|{state}|{code}|{times}|60|{cpus}|"
                   f"cn{i % 13}|{comment}")
        out.append(f"{i}.batch|batch|||{state}|{code}|{times}|60|4|cn{i % 13}|")
        if i % 250 == 0:
            out.append("this line has too few fields")
    return "\n".join(out) + "\n"


def ingest(tmp_path, taxonomy, name: str, path: str, source: str = "slurm", on: bool = True,
           **kw):
    with Store(tmp_path / f"{name}.db") as s:
        ctx = IngestContext(taxonomy, Templates(s.load_templates()), parse_ahead=on,
                            batch_size=kw.pop("batch_size", 300), **kw)
        try:
            summary = run_ingest(s, READERS[source], path, ctx)
        except Exception as exc:  # noqa: BLE001 - compared below
            return ("raised", type(exc).__name__, str(exc)), None
        c = s.conn
        got = {t: c.execute(f"SELECT * FROM {t} ORDER BY 1, 2, 3").fetchall()
               for t in ("jobs", "job_nodes", "templates")}
        got["events"] = c.execute("SELECT * FROM failure_events ORDER BY dedup_key").fetchall()
        got["rejects"] = c.execute("SELECT source, file, line, reason, raw FROM rejects "
                                   "ORDER BY id").fetchall()
        got["runs"] = c.execute("SELECT status, read, inserted, updated, rejected "
                                "FROM ingest_runs").fetchall()
        got["indexes"] = sorted(r[0] for r in c.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index'"))
        d = summary.to_dict()
        for k in ("seconds", "rate_per_s"):
            d.pop(k)
        return d, got


@pytest.fixture(autouse=True)
def _small_files_too(monkeypatch):
    monkeypatch.setattr(ahead, "MIN_BYTES", 0)


def _same(tmp_path, taxonomy, path: str, source: str = "slurm", **kw):
    one = ingest(tmp_path, taxonomy, "one", path, source, on=False, **kw)
    two = ingest(tmp_path, taxonomy, "two", path, source, on=True, **kw)
    assert one == two
    return two


def test_same_store_as_one_process(tmp_path, taxonomy):
    path = tmp_path / "in.sacct"
    text = sacct(3000)
    # a NUL byte and bytes that are not UTF-8: lines the guard blanks, rejects with their line
    text = text.replace("\n40|", "\n40\x00|", 1)
    data = text.encode().replace(b"\n80|", b"\n8\xff0|", 1)
    path.write_bytes(data)
    summary, got = _same(tmp_path, taxonomy, str(path))
    assert summary["status"] == "partial"
    assert summary["inserted"] == len(got["jobs"]) > 2900
    assert len(got["templates"]) >= 2 and got["events"]
    reasons = " ".join(r[3] for r in got["rejects"])
    assert "NUL byte" in reasons and "UTF-8" in reasons and "ReqCPUS" in reasons
    assert got["runs"][0][0] == "partial"


def test_truncated_gzip_keeps_the_records_before_the_cut(tmp_path, taxonomy):
    data = gzip.compress(sacct(3000).encode())
    path = tmp_path / "cut.sacct.gz"
    path.write_bytes(data[: len(data) * 2 // 3])
    summary, got = _same(tmp_path, taxonomy, str(path))
    assert summary["status"] == "truncated" and "ends early" in summary["error"]
    assert 0 < len(got["jobs"]) < 3000


def test_input_that_is_not_the_format_is_refused_alike(tmp_path, taxonomy):
    path = tmp_path / "other.txt"
    path.write_text("hello,world\n1,2\n" * 50)
    refused, _ = _same(tmp_path, taxonomy, str(path))
    assert refused[:2] == ("raised", "InputError") and "sacct" in refused[2]


def test_a_reader_that_breaks_off_fails_the_run_alike(tmp_path, taxonomy, monkeypatch):
    from jobmedic.ingest import slurm

    real = slurm.SlurmReader.batches

    def batches(self, stream, ctx):
        for k, b in enumerate(real(self, stream, ctx)):
            if k == 2:
                raise RuntimeError("the reader broke off")  # not one record's fault
            yield b

    monkeypatch.setattr(slurm.SlurmReader, "batches", batches)
    path = tmp_path / "in.sacct"
    path.write_text(sacct(1000))
    summary, got = _same(tmp_path, taxonomy, str(path))
    assert summary["status"] == "failed" and "the reader broke off" in summary["error"]
    assert got["jobs"]  # the batches before it were written


def test_google_table_alike(tmp_path, taxonomy):
    from tests.conftest import FIXTURES

    summary, got = _same(tmp_path, taxonomy, str(FIXTURES / "google2011_jobs_excerpt.csv"),
                         "google2011", batch_size=100)
    assert summary["inserted"] == len(got["jobs"]) > 0


def test_the_child_is_reaped(tmp_path, taxonomy):
    path = tmp_path / "in.sacct"
    path.write_text(sacct(500))
    ingest(tmp_path, taxonomy, "one", str(path))
    with pytest.raises(ChildProcessError):
        os.waitpid(-1, os.WNOHANG)  # no child left, running or unreaped
