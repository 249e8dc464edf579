"""Failures counted at their failure time (issue 12, item 1): a pod that failed without
terminating (ImagePullBackOff, ErrImagePull, CrashLoopBackOff, evicted without a finish time,
unschedulable) has no end time; it counts in a window at the time of its failure event, in the
numerator and the denominator alike. Seven pods, five failing: stats must say five."""
from __future__ import annotations

import json

import pytest

from jobmedic.core.timeutil import Window
from jobmedic.ingest import READERS, IngestContext, run_ingest
from jobmedic.knowledge.templates import Templates
from jobmedic.tools import run_action
from jobmedic.tools.base import ToolContext

T = 1714521600  # 2024-05-01T00:00:00Z
DAY = 86400


def _iso(t: int) -> str:
    import datetime as dt
    return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _pod(name, phase, *, waiting=None, terminated=None, reason=None, conditions=(), start=None,
         created=T):
    status = {"phase": phase, "conditions": [
        {"type": c, "status": s, "lastTransitionTime": _iso(t), **({"reason": r} if r else {})}
        for c, s, t, r in conditions]}
    if reason:
        status["reason"] = reason
    if start is not None:
        status["startTime"] = _iso(start)
    cs = {"name": "main", "image": f"reg/{name}:1", "restartCount": 0, "state": {}}
    if waiting:
        cs["state"] = {"waiting": {"reason": waiting, "message": f"{waiting} for {name}"}}
    if terminated:
        cs["state"] = {"terminated": terminated}
    if waiting or terminated:
        status["containerStatuses"] = [cs]
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "ml-team", "creationTimestamp": _iso(created)},
            "spec": {"containers": [{"name": "main", "image": f"reg/{name}:1"}]},
            "status": status}


#: (pod, failure type, failure time): the five failures, then the two pods that succeeded.
PODS = [
    (_pod("pull-a", "Pending", waiting="ImagePullBackOff",
          conditions=[("PodScheduled", "True", T + 3 * DAY, None),
                      ("Ready", "False", T + 3 * DAY + 60, "ContainersNotReady")]),
     "image_pull", T + 3 * DAY + 60),
    (_pod("pull-b", "Pending", waiting="ErrImagePull",
          conditions=[("Ready", "False", T + 4 * DAY, "ContainersNotReady")]),
     "image_pull", T + 4 * DAY),
    (_pod("loop-c", "Running", waiting="CrashLoopBackOff", start=T + 2 * DAY,
          conditions=[("Ready", "False", T + 2 * DAY + 300, "ContainersNotReady")]),
     "crash_loop", T + 2 * DAY + 300),
    (_pod("evict-d", "Failed", reason="Evicted", start=T + 5 * DAY,
          terminated={"exitCode": 137, "finishedAt": None, "reason": "ContainerStatusUnknown"}),
     "preempted", T + 5 * DAY),
    (_pod("sched-e", "Pending",
          conditions=[("PodScheduled", "False", T + 1 * DAY, "Unschedulable")]),
     "scheduling", T + 1 * DAY),
    (_pod("ok-f", "Succeeded", start=T + DAY, terminated={
        "exitCode": 0, "reason": "Completed", "startedAt": _iso(T + DAY),
        "finishedAt": _iso(T + DAY + 600)}), None, None),
    (_pod("ok-g", "Succeeded", start=T + 2 * DAY, terminated={
        "exitCode": 0, "reason": "Completed", "startedAt": _iso(T + 2 * DAY),
        "finishedAt": _iso(T + 2 * DAY + 600)}), None, None),
]


def _ingest(store, taxonomy, tmp_path, items, name="pods.json"):
    path = tmp_path / name
    path.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))
    ctx = IngestContext(taxonomy, Templates(store.load_templates()), cluster="gpu-a")
    return run_ingest(store, READERS["kubernetes"], str(path), ctx)


@pytest.fixture
def loaded(store, taxonomy, tmp_path):
    _ingest(store, taxonomy, tmp_path, [p for p, _, _ in PODS])
    return store, ToolContext(store=store, taxonomy=taxonomy, now=T + 7 * DAY)


def test_each_failure_has_its_failure_time(loaded):
    store, _ = loaded
    rows = {r[0]: r[1:] for r in store.conn.execute(
        "SELECT job_id, failure_type, end_time, failed_at, event_time FROM jobs")}
    for pod, ftype, when in PODS:
        ft, end, failed_at, event_time = rows[f"ml-team/{pod['metadata']['name']}"]
        if ftype is None:
            assert failed_at is None and event_time == end
            continue
        assert (ft, end, failed_at, event_time) == (ftype, None, when, when), pod["metadata"]["name"]
    ev = dict(store.conn.execute("SELECT job_id, timestamp FROM failure_events"))
    assert ev["ml-team/pull-a"] == T + 3 * DAY + 60 and ev["ml-team/sched-e"] == T + DAY


def test_stats_counts_five_of_seven(loaded):
    _, ctx = loaded
    res = run_action({"action": "stats", "lookback_days": 7}, ctx)
    assert res.status == "ok", res.error
    assert res.data["totals"]["jobs"] == 7 and res.data["totals"]["failures"] == 5
    rows = {r["key"]: r["failures"] for g in res.data["groups"] if g["by"] == "failure_type"
            for r in g["rows"]}
    assert rows == {"image_pull": 2, "crash_loop": 1, "preempted": 1, "scheduling": 1}


def test_image_pull_failures_this_week_are_not_zero(loaded):
    _, ctx = loaded
    res = run_action({"action": "stats", "lookback_days": 7, "failure_type": "image_pull"}, ctx)
    assert res.status == "ok", res.error
    assert res.data["totals"]["failures"] == 2


def test_window_edges_use_the_failure_time(loaded):
    """Numerator and denominator follow one rule: a window holding only day 3-4 sees the two
    image pulls (failures) and nothing else, not the succeeded pods of days 1-2."""
    store, _ = loaded
    t = store.window_totals(Window(T + 3 * DAY, T + 5 * DAY), None)
    assert (t["jobs"], t["failures"]) == (2, 2)
    t = store.window_totals(Window(T + DAY, T + 3 * DAY), None)
    assert (t["jobs"], t["failures"]) == (4, 2)  # sched-e, ok-f, loop-c, ok-g


def test_a_pod_that_recovers_leaves_the_failure_count(loaded, taxonomy, tmp_path):
    """The final record replaces the failing one: a pulled image that then ran to completion
    counts once, at its end, as a success."""
    store, _ = loaded
    pod = _pod("pull-a", "Succeeded", start=T + 3 * DAY, terminated={
        "exitCode": 0, "reason": "Completed", "startedAt": _iso(T + 3 * DAY + 120),
        "finishedAt": _iso(T + 3 * DAY + 900)})
    _ingest(store, taxonomy, tmp_path, [pod], "later.json")
    t = store.window_totals(Window(T, T + 7 * DAY), None)
    assert (t["jobs"], t["failures"]) == (7, 4)
