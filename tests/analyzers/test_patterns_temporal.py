"""Patterns (repeated identical failures by template, new failure types, events without jobs)
and the day-of-week test, on planted stores."""
from __future__ import annotations

from jobmedic.analyzers import build, run_all
from jobmedic.analyzers.patterns import Patterns
from jobmedic.knowledge.migrations import FAILURE_EVENT_COLUMNS, JOB_COLUMNS
from tests.analyzers.planted import T0, Planted


def _job(i, **kw):
    row = dict.fromkeys(JOB_COLUMNS)
    row.update(cluster="c1", job_id=f"t{i}", user="u1", project="p1", name=f"n{i}",
               state="completed", end_time=T0 + 3600 + i * 60, submit_time=T0 + i * 60,
               source="test", n_nodes=1)
    row.update(kw)
    return tuple(row[c] for c in JOB_COLUMNS)


def _event(i, **kw):
    ev = dict.fromkeys(FAILURE_EVENT_COLUMNS)
    ev.update(cluster="k8s", job_name=f"pod-{i}", project="p1", user="u9", failure_type="image_pull",
              blame="job", timestamp=T0 + 7200 + i, node_name="k8s-node-1",
              container_image="repo/app:broken", source="test", resolved=0)
    ev.update(kw)
    return tuple(ev[c] for c in FAILURE_EVENT_COLUMNS) + (f"dk{i}",)


def _history(n=200, days=20):
    """n completed jobs spread over the `days` before the window: the earlier history."""
    return [_job(1000 + i, end_time=T0 - 3600 - (i % days) * 86400,
                 submit_time=T0 - 7200 - (i % days) * 86400) for i in range(n)]


def _new_type_store(store, history):
    jobs = [_job(i) for i in range(50)]
    jobs += [_job(100 + i, state="oom", failure_type="oom", blame="job") for i in range(6)]
    store.upsert_jobs(jobs + (_history() if history else []))


def test_new_type_needs_earlier_history(store):
    """A window that starts where the data starts has nothing to be new against: no finding
    (before issue 12 every type was "new" there, at medium severity)."""
    _new_type_store(store, history=False)
    findings = Patterns().run(store, Planted(store).window, None)
    assert not [f for f in findings if f.kind == "new_type"]


def test_new_type_states_the_history_it_rests_on(store):
    _new_type_store(store, history=True)
    findings = Patterns().run(store, Planted(store).window, None)
    new = [f for f in findings if f.kind == "new_type"]
    assert [f.evidence["failure_type"] for f in new] == ["oom"]
    assert new[0].evidence["history_days"] >= 14
    assert "days of history" in new[0].summary and "required" in new[0].summary
    # too few earlier records: not new either
    assert not [f for f in Patterns(new_history_records=500).run(
        store, Planted(store).window, None) if f.kind == "new_type"]


def test_repeats_new_types_and_events(store):
    store.save_templates([(41, "CUDA out of memory. Tried to allocate <*> GiB", 6, "oom", T0)])
    jobs = [_job(i) for i in range(100)]
    jobs += [_job(100 + i, user="ann", state="oom", failure_type="oom", blame="job",
                  template_id=41) for i in range(6)]
    # a type seen before the window is not new
    jobs += [_job(200, state="timeout", failure_type="timeout", blame="job", end_time=T0 - 86400,
                  submit_time=T0 - 90000)]
    jobs += [_job(201 + i, state="timeout", failure_type="timeout", blame="job") for i in range(4)]
    jobs += _history()  # "new" needs earlier history to be new against (issue 12)
    store.upsert_jobs(jobs)
    store.add_failure_events([_event(i) for i in range(5)])
    p = Planted(store)
    findings = Patterns().run(store, p.window, None)
    rep = [f for f in findings if f.kind == "repeat"]
    assert rep and rep[0].evidence["same"] == "template" and rep[0].evidence["failures"] == 6
    assert rep[0].evidence["user"] == "ann" and "CUDA out of memory" in rep[0].summary
    new = {f.evidence["failure_type"] for f in findings if f.kind == "new_type"}
    assert new == {"oom"}  # timeout was seen before the window
    ev = [f for f in findings if f.kind == "event_pattern"]
    assert {f.subject for f in ev} == {"node:k8s-node-1", "image:repo/app:broken"}
    assert all(f.evidence["failures"] == 5 and "not rates" in f.summary for f in ev)
    # scope: the events of another project are not counted
    assert not [f for f in Patterns().run(store, p.window, ["p2"]) if f.kind == "event_pattern"]


def test_day_of_week_excess_is_found(store):
    p = Planted(store, seed=12, days=28)
    p.add(4000, nodes=["n1", "n2", "n3"], user=["a", "b", "c"], fail=0.03)
    # Saturdays (T0 is a Wednesday: days 3, 10, 17, 24) fail more
    for d in (3, 10, 17, 24):
        p.add(120, nodes=["n1", "n2", "n3"], user=["a", "b", "c"], fail=0.3, day_from=d,
              day_to=d + 1)
    findings, errors = run_all(build(), store, p.write(), None)
    assert errors == []
    dows = [f for f in findings if f.kind == "spike" and f.subject.startswith("dow:")]
    assert [f.evidence["label"] for f in dows] == ["Sat"]
