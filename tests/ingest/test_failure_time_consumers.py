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
