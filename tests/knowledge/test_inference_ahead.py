"""The after-ingest inference's read half on a thread of its own (outcomes.InferenceAhead,
issue 16): it reads and pairs the loaded jobs beside the end of the load, and the store ends
up row for row as when the inference runs after the load; a write it did not see makes the
inference run again; an error in the thread is raised in the caller, with nothing written."""
from __future__ import annotations

import sqlite3

import pytest

from bench.bench_ingest import write_sacct
from jobmedic.ingest import READERS, IngestContext, run_ingest
from jobmedic.knowledge import outcomes as outcomes_mod
from jobmedic.knowledge.outcomes import InferenceAhead, infer_new_outcomes, infer_outcomes
from jobmedic.knowledge.remedies import RemedyQueries
from jobmedic.knowledge.store import Store
from jobmedic.knowledge.templates import Templates
from tests.knowledge.test_incremental_inference import history, learned, rules

_INFERENCE_TABLES = (("solution_outcomes", "id"), ("failure_solutions", "id"),
                     ("marks", "name"))


def _rows(s: Store) -> dict[str, list]:
    got = {t: s.conn.execute(f"SELECT * FROM {t} ORDER BY {o}").fetchall()
           for t, o in _INFERENCE_TABLES}
    got["marks"] = [r[:2] for r in got["marks"]]  # (name, value); updated_at is the clock
    got["jobs"] = s.conn.execute("SELECT * FROM jobs ORDER BY rowid").fetchall()
    return got


def test_loads_in_parts_learn_row_for_row_what_the_inference_here_learns(tmp_path, taxonomy,
                                                                         frame_threads):
    rb = rules(taxonomy)
    rows = history(600, seed=5)
    here, beside = Store(tmp_path / "here.db"), Store(tmp_path / "beside.db")
    calls = frame_threads
    for lo in range(0, len(rows), 200):
        here.upsert_jobs(rows[lo:lo + 200])
        infer_new_outcomes(here, rb, 72)
        beside.upsert_jobs(rows[lo:lo + 200])
        ahead = InferenceAhead(beside.path, rb, 72)
        n = len(calls)
        ahead.start()
        out = infer_new_outcomes(beside, rb, 72, ahead=ahead)
        assert len(calls) == n + 1  # the thread's frame and plan were used, not read again
        assert calls[-1] == "jobmedic-inference-ahead"  # read on the thread, not here
        assert out.jobs_scanned == ahead.result().scanned > 0 and ahead.used
    assert _rows(beside) == _rows(here)
    assert learned(here)[0]


def test_a_write_the_thread_did_not_see_makes_the_inference_run_again(tmp_path, taxonomy):
    rb = rules(taxonomy)
    rows = history(600, seed=9)
    s = Store(tmp_path / "s.db")
    s.upsert_jobs(rows[:400])
    ahead = InferenceAhead(s.path, rb, 72)
    ahead.start()
    assert ahead.result().state[1] == 400  # it read the first 400 rows ...
    s.upsert_jobs(rows[400:])  # ... and these landed after
    infer_new_outcomes(s, rb, 72, ahead=ahead)
    assert not ahead.used
    whole = Store()
    whole.upsert_jobs(rows)
    infer_outcomes(whole, rb, 72)
    assert learned(s) == learned(whole)
    assert s.conn.execute("SELECT value FROM marks WHERE name = 'outcomes_rowid'").fetchone()[0] \
        == 600


@pytest.mark.parametrize("where", ["plan", "read"])
def test_an_error_in_the_thread_is_raised_here_and_nothing_is_written(tmp_path, taxonomy,
                                                                      monkeypatch, where):
    rb = rules(taxonomy)
    s = Store(tmp_path / "s.db")
    s.upsert_jobs(history(300, seed=2))
    before = _rows(s)
    if where == "plan":
        def broken(*a, **kw):
            raise ValueError("cannot pair: bad frame")
        monkeypatch.setattr(outcomes_mod, "plan_outcomes", broken)
        kind, text = ValueError, "cannot pair: bad frame"
    else:
        def broken(self, *a, **kw):
            raise sqlite3.OperationalError("disk I/O error")
        monkeypatch.setattr(RemedyQueries, "touched_frame", broken)
        kind, text = sqlite3.OperationalError, "disk I/O error"
    with pytest.raises(kind, match=text):  # the error the inference here raises ...
        infer_new_outcomes(s, rb, 72)
    ahead = InferenceAhead(s.path, rb, 72)
    ahead.start()
    with pytest.raises(kind, match=text):  # ... is the one the thread's raises here
        infer_new_outcomes(s, rb, 72, ahead=ahead)
    assert _rows(s) == before  # no outcome, no solution, no watermark, no resubmit_of
    monkeypatch.undo()
    infer_new_outcomes(s, rb, 72)  # the next run learns it all
    assert learned(s)[0]


def test_a_store_in_memory_runs_the_inference_here(taxonomy):
    rb = rules(taxonomy)
    s = Store()
    s.upsert_jobs(history(300, seed=4))
    ahead = InferenceAhead(s.path, rb, 72)
    ahead.start()
    assert ahead.result() is None
    assert infer_new_outcomes(s, rb, 72, ahead=ahead).outcomes_written > 0


def _load(tmp_path, taxonomy, name: str, sacct, beside: bool) -> dict[str, list]:
    rb = rules(taxonomy)
    with Store(tmp_path / f"{name}.db") as s:
        ctx = IngestContext(taxonomy, Templates(s.load_templates()), batch_size=2_000)
        ahead = InferenceAhead(s.path, rb, 72) if beside else None
        run_ingest(s, READERS["slurm"], str(sacct), ctx,
                   on_loaded=ahead.start if ahead else None)
        if ahead is not None:
            assert ahead._thread is not None  # started when the last batch was in
        infer_new_outcomes(s, rb, 72, ahead=ahead)
        got = _rows(s)
        got["indexes"] = sorted(s.conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index'").fetchall())
        got["events"] = s.conn.execute("SELECT * FROM failure_events ORDER BY id").fetchall()
    return got


def test_a_bulk_load_with_the_inference_beside_its_end_makes_the_same_store(tmp_path, taxonomy):
    """The thread reads while the load's connection rebuilds the indexes it dropped; then a
    second file into the existing store (incremental inference, indexes kept)."""
    first, second = tmp_path / "a.sacct", tmp_path / "b.sacct"
    write_sacct(first, 6_000, seed=11)
    write_sacct(second, 3_000, seed=12, first_id=2_000_000, t0=1714521600 + 86_400)
    here = _load(tmp_path, taxonomy, "here", first, beside=False)
    beside = _load(tmp_path, taxonomy, "beside", first, beside=True)
    assert beside == here
    assert here["solution_outcomes"]
    here = _load(tmp_path, taxonomy, "here", second, beside=False)
    beside = _load(tmp_path, taxonomy, "beside", second, beside=True)
    assert beside == here


def test_a_failed_load_cancels_the_thread(tmp_path, taxonomy):
    """The reader breaks off after some batches: on_loaded is never called; cancel() on a
    started thread interrupts its reads and returns once it has ended."""
    rb = rules(taxonomy)
    s = Store(tmp_path / "s.db")
    s.upsert_jobs(history(3_000, seed=6))
    ahead = InferenceAhead(s.path, rb, 72)
    ahead.start()
    ahead.cancel()
    assert not ahead._thread.is_alive()
    never = InferenceAhead(s.path, rb, 72)
    never.cancel()  # never started: nothing to stop
    assert never.result() is None
