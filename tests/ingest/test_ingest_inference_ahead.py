"""`jobmedic ingest` starts the after-load inference's reads on a thread beside the end of the
load (outcomes.InferenceAhead, issue 16): the same store as the inference after the load, the
same error when it fails, and no thread left behind when the load is interrupted."""
from __future__ import annotations

import threading

import pytest
from typer.testing import CliRunner

from bench.bench_ingest import write_sacct
from jobmedic.cli import app, ingest_cmd
from jobmedic.ingest import ahead
from jobmedic.knowledge import outcomes as outcomes_mod
from jobmedic.knowledge.store import Store, expected_indexes

runner = CliRunner()


@pytest.fixture(scope="module")
def sacct(tmp_path_factory):
    path = tmp_path_factory.mktemp("sacct") / "jobs.sacct"
    write_sacct(path, 8_000, seed=21)
    return path


@pytest.fixture(autouse=True)
def _parse_ahead_for_small_files(monkeypatch):
    monkeypatch.setattr(ahead, "MIN_BYTES", 0)  # parsed ahead in a child process, as at 1M


def _dump(db) -> dict[str, list]:
    with Store(db) as s:
        c = s.conn
        got = {t: c.execute(f"SELECT * FROM {t} ORDER BY {o}").fetchall() for t, o in (
            ("jobs", "rowid"), ("solution_outcomes", "id"), ("failure_solutions", "id"),
            ("failure_events", "id"), ("job_nodes", "1, 2, 3"))}
        got["marks"] = c.execute("SELECT name, value FROM marks ORDER BY name").fetchall()
        got["indexes"] = sorted(r[0] for r in c.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"))
    return got


def _ingest(db, sacct, monkeypatch, beside: bool):
    with monkeypatch.context() as m:
        if not beside:  # the inference after the load, on the store's connection only
            m.setattr(ingest_cmd, "_inference_ahead", lambda st: None)
        return runner.invoke(app, ["--db", str(db), "ingest", "slurm", str(sacct)])


def test_the_command_makes_the_store_the_inference_after_the_load_makes(tmp_path, sacct,
                                                                        monkeypatch,
                                                                        frame_threads):
    names = frame_threads
    after = _ingest(tmp_path / "after.db", sacct, monkeypatch, beside=False)
    assert after.exit_code == 0, after.output
    assert names == ["MainThread"]
    beside = _ingest(tmp_path / "beside.db", sacct, monkeypatch, beside=True)
    assert beside.exit_code == 0, beside.output
    assert names[1:] == ["jobmedic-inference-ahead"]  # read once, on the thread
    assert "learned" in after.stderr and "learned" in beside.stderr
    assert "beside the end of the load" in beside.stderr
    assert "beside" not in after.stderr
    want, got = _dump(tmp_path / "after.db"), _dump(tmp_path / "beside.db")
    assert got == want
    assert want["solution_outcomes"] and want["marks"]
    with Store(tmp_path / "beside.db") as s:
        assert set(expected_indexes(s.schema_version)) <= set(got["indexes"])


def test_an_error_on_the_thread_is_the_error_of_the_command(tmp_path, sacct, monkeypatch):
    def broken(*a, **kw):
        raise ValueError("cannot pair the resubmissions")
    monkeypatch.setattr(outcomes_mod, "plan_outcomes", broken)
    after = _ingest(tmp_path / "after.db", sacct, monkeypatch, beside=False)
    beside = _ingest(tmp_path / "beside.db", sacct, monkeypatch, beside=True)
    assert beside.exit_code == after.exit_code != 0
    assert "cannot pair the resubmissions" in beside.stderr
    assert beside.stderr.splitlines()[-2:] == after.stderr.splitlines()[-2:]
    for db in ("after.db", "beside.db"):  # the load is in; nothing of the inference is
        got = _dump(tmp_path / db)
        assert got["jobs"] and not got["solution_outcomes"] and not got["marks"]


def test_an_interrupted_load_leaves_no_thread_behind(tmp_path, sacct, monkeypatch):
    real, real_start, started = Store.rebuild_indexes, outcomes_mod.InferenceAhead.start, []

    def start(self):
        started.append(self)
        real_start(self)

    def interrupted(self, *a, **kw):  # Ctrl-C as the rebuild ends, the thread started
        real(self, *a, **kw)
        raise KeyboardInterrupt
    monkeypatch.setattr(outcomes_mod.InferenceAhead, "start", start)
    monkeypatch.setattr(Store, "rebuild_indexes", interrupted)
    res = _ingest(tmp_path / "x.db", sacct, monkeypatch, beside=True)
    assert res.exit_code == 130
    assert started and started[0]._thread is not None  # it ran beside the rebuild
    assert "interrupted" in res.stderr
    assert not [t for t in threading.enumerate() if t.name == "jobmedic-inference-ahead"]
    got = _dump(tmp_path / "x.db")
    assert got["jobs"] and not got["solution_outcomes"]
    with Store(tmp_path / "x.db") as s:  # the indexes the load dropped are back
        assert set(expected_indexes(s.schema_version)) <= set(got["indexes"])
