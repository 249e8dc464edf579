"""The side panel's running jobs at risk: what `predict` running computed, read out of its
envelope (ok, no running jobs, an error), and shown in the app for the fixture's two sampled
running jobs (one climbing to its memory request, one flat)."""
from __future__ import annotations

import pytest

from jobmedic.knowledge.store import Store
from jobmedic.tools.base import ErrorInfo, ToolResult
from jobmedic.tui.widgets.at_risk import risk_from
from tests.tui.test_chat_app import settle


def _ok(jobs, running, at_risk):
    return ToolResult(status="ok", action="predict",
                      data={"jobs": jobs, "running": running, "at_risk": at_risk})


def test_risk_from_envelopes():
    jobs = [{"job_id": "7", "user": "ann", "at_risk": True,
             "memory_kill": {"alarm": True, "eta_s": 95.0}, "early_warning": {"probability": 0.7}},
            {"job_id": "8", "at_risk": True, "memory_kill": {"alarm": False},
             "early_warning": {"probability": 0.81}},
            {"job_id": "9", "at_risk": False, "memory_kill": {}, "early_warning": {}}]
    v = risk_from(_ok(jobs, 3, 2))
    assert (v.running, v.at_risk) == (3, 2)
    assert v.lines == ["! 7 ann: OOM ~2m, fail 70%", "! 8: fail 81%"]
    assert risk_from(ToolResult(status="no_data", action="predict")).running == 0
    err = risk_from(ToolResult(status="error", action="predict",
                               error=ErrorInfo(type="x", message="store locked")))
    assert err.running is None and "store locked" in err.note


@pytest.mark.asyncio
async def test_the_panel_shows_the_job_about_to_be_killed(app_factory, chat_db):
    with Store(chat_db) as s:
        climbing, flat = (r[0] for r in s.conn.execute(
            "SELECT DISTINCT job_id FROM telemetry ORDER BY job_id").fetchall())
        running = s.conn.execute("SELECT COUNT(*) FROM jobs WHERE state = 'running'").fetchone()[0]
    app = app_factory()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        text = str(app.query_one("#at-risk").render())
    assert text.startswith(f"1 of {running} running")
    assert f"! {climbing} " in text and "OOM ~" in text and flat not in text
