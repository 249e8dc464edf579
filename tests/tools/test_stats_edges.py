"""Stats at the edges (issue 12, item 8): a store holding only failure events (LANL node
failures) gives counts and a reachable --as-of; a quiet day is a zero in the daily series (a
3-day spike is no plateau), in the chat sparkline too; the CLI hint names a real command."""
from __future__ import annotations

import json

from typer.testing import CliRunner

from jobmedic.cli import app
from jobmedic.ingest import READERS, IngestContext, run_ingest
from jobmedic.knowledge.templates import Templates
from jobmedic.tools import run_action
from jobmedic.tools.base import ToolContext
from jobmedic.tui.picture import picture_from
from tests.conftest import FIXTURES

DAY = 86400
T0 = 1714521600  # 2024-05-01


def _lanl(store, taxonomy):
    ctx = IngestContext(taxonomy, Templates(store.load_templates()), cluster="lanl")
    run_ingest(store, READERS["lanl"], str(FIXTURES / "lanl_excerpt.csv"), ctx)


def test_lanl_only_store_reports_failure_events_and_a_reachable_as_of(store, taxonomy):
    _lanl(store, taxonomy)
    _lo, hi = store.data_range(None)
    ctx = ToolContext(store=store, taxonomy=taxonomy, now=hi + 30 * DAY)
    res = run_action({"action": "stats"}, ctx)
    assert res.status == "no_data"
    as_of = res.text.split("--as-of ")[1].split("`")[0]
    # the suggested as_of reaches the last record (the old hint gave its own day: excluded)
    res = run_action({"action": "stats", "as_of": as_of, "group_by": ["failure_type", "node"]}, ctx)
    assert res.status == "ok", res.text
    last_week = store.conn.execute(
        "SELECT COUNT(*) FROM failure_events WHERE timestamp >= ? AND timestamp < ?",
        [res.data["window"]["start_epoch"], res.data["window"]["end_epoch"]]).fetchone()[0]
    assert last_week >= 1 and res.data["totals"]["failures"] == last_week
    assert res.data["totals"]["failure_rate"] is None  # no jobs: no rate invented
    assert "failure events" in res.text and "no failure rate" in res.text
    types = {r["key"]: r["failures"] for r in res.data["groups"][0]["rows"]}
    assert sum(types.values()) == last_week


def _spike_store(store):
    """Ten days of jobs, failures on days 4-6 only, no job at all on days 7-9."""
    rows = []
    for d in range(10):
        for i in range(4 if d < 7 else 0):
            failed = 4 <= d <= 6 and i < 3
            rows.append(("c", f"{d}-{i}", "p", "failed" if failed else "completed",
                         "app_error" if failed else None, "slurm", T0 + d * DAY + 3600,
                         T0 + d * DAY + 7200))
    store.upsert_jobs(rows, ("cluster", "job_id", "project", "state", "failure_type", "source",
                             "start_time", "end_time"))


def test_quiet_days_are_zero_rows_and_the_sparkline_draws_them(store, taxonomy):
    _spike_store(store)
    ctx = ToolContext(store=store, taxonomy=taxonomy, now=T0 + 10 * DAY)
    trend = run_action({"action": "stats", "lookback_days": 10, "group_by": ["day"]}, ctx)
    days = [(r["key"], r["failures"]) for r in trend.data["groups"][0]["rows"]]
    assert len(days) == 10 and days[0][0] == "2024-05-01" and days[-1][0] == "2024-05-10"
    assert [f for _, f in days] == [0, 0, 0, 0, 3, 3, 3, 0, 0, 0]
    assert [d["failures"] for d in trend.data["trend"]] == [0, 0, 0, 0, 3, 3, 3, 0, 0, 0]
    day = run_action({"action": "stats", "lookback_days": 1}, ctx)
    week = run_action({"action": "analyze", "lookback_days": 7}, ctx)
    pic = picture_from(day, trend, week)
    assert pic.trend == [0, 0, 0, 0, 3, 3, 3, 0, 0, 0]  # a spike, not a plateau


def test_invalid_field_hint_names_the_cli_command(tmp_path):
    res = CliRunner().invoke(app, ["--db", str(tmp_path / "s.db"), "act",
                                   json.dumps({"action": "record_outcome", "success": "maybe"})])
    out = json.loads(res.stdout[res.stdout.index("{"):])
    assert "jobmedic record-outcome --help" in out["error"]["hint"]
    assert "record_outcome --help" not in out["error"]["hint"]
