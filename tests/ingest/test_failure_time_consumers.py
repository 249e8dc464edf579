"""The other windowed consumers count failures by the stats rule too (issue 12, item 1): the
chat side panel's sparkline and `jobmedic report` show pods that failed without terminating
(ImagePullBackOff, CrashLoopBackOff, unschedulable) on the day of their failure."""
from __future__ import annotations

from jobmedic.tools import run_action
from jobmedic.tools.base import ToolContext
from jobmedic.tui.picture import picture_from
from tests.ingest.test_failure_time import DAY, PODS, T, _ingest

NOW = T + 7 * DAY


def test_sparkline_draws_each_failure_on_its_failure_day(store, taxonomy, tmp_path):
    """The panel's three requests (tui/backend.py `picture`): the 14-day trend has the five
    failures on days 1-5 (the ImagePullBackOff pods of days 3 and 4 included), zeros around."""
    _ingest(store, taxonomy, tmp_path, [p for p, _, _ in PODS])
    ctx = ToolContext(store=store, taxonomy=taxonomy, now=NOW)
    day = run_action({"action": "stats", "lookback_days": 1, "group_by": ["failure_type"],
                      "top": 5, "trend": False}, ctx)
    trend = run_action({"action": "stats", "lookback_days": 14, "group_by": ["day"],
                        "trend": False}, ctx)
    week = run_action({"action": "analyze", "lookback_days": 7}, ctx)
    pic = picture_from(day, trend, week)
    assert pic.trend == [0.0] * 8 + [1.0] * 5 + [0.0]
    assert pic.trend_label == "2024-04-24 .. 2024-05-07"


def test_report_counts_pods_that_never_terminated(tmp_path, taxonomy):
    from jobmedic.app import App
    from jobmedic.cli.report_cmd import gather
    from jobmedic.reports.html import render_markdown

    app = App.open(None, db=str(tmp_path / "r.db"), as_of=str(NOW))
    try:
        _ingest(app.store, taxonomy, tmp_path, [p for p, _, _ in PODS])
        env = gather(app, 7, None)
        totals = env["stats"]["data"]["totals"]
        assert (totals["jobs"], totals["failures"]) == (7, 5)
        types = {r["key"]: r["failures"] for g in env["stats"]["data"]["groups"]
                 if g["by"] == "failure_type" for r in g["rows"]}
        assert types["image_pull"] == 2
        assert sum(d["failures"] for d in env["stats"]["data"]["trend"]) == 5
        assert "image_pull" in render_markdown(env)
    finally:
        app.close()


def test_live_rule_counts_use_the_failure_time(store, taxonomy, tmp_path):
    """The watch rules' windowed counts (knowledge/alerts.py) from kubectl JSON: the pods that
    never terminated count at their failure time, the unschedulable one included, like stats;
    /metrics' rate counts the same failures."""
    from jobmedic.live.rules import RuleSet

    _ingest(store, taxonomy, tmp_path, [p for p, _, _ in PODS])
    live = store.live
    by_type = {g["failure_type"]: g["count"] for g in live.type_failures(T, NOW)}
    assert by_type == {"image_pull": 2, "crash_loop": 1, "preempted": 1, "scheduling": 1}
    # a window around day 3 only: the ImagePullBackOff pod failing then, nothing else
    assert [(g["failure_type"], g["job_ids"]) for g in live.type_failures(T + 3 * DAY, T + 3 * DAY + 3600)] \
        == [("image_pull", ["ml-team/pull-a"])]
    assert [j["job_id"] for j in live.failed_jobs_between("gpu-a", None, T, T + 2 * DAY)] \
        == ["ml-team/sched-e"]  # unschedulable on day 1, no end time
    rates = {(c, w): (f, n) for c, w, f, n in live.live_metrics(NOW, (7 * DAY,))["rates"]}
    assert rates == {("gpu-a", 7 * DAY): (5, 7)}
    # the known-fix rule is asked about the image pulls of the last hour of day 4
    asked = []

    def fixes(ftype, project):
        asked.append((ftype, project))
        return []
    RuleSet({"hotspot": {"enabled": False}, "changepoint": {"enabled": False}}, fixes).evaluate(
        store, T + 4 * DAY + 1800)
    assert ("image_pull", "ml-team") in asked
