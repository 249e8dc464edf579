"""`/metrics` beside `jobmedic watch`: alert gauges and counters, deliveries, and the recent
failure rate per cluster, from the store; a scoped token sees only the service's own metrics
(alerts and failure rates span projects)."""
from __future__ import annotations

import re

from jobmedic.knowledge.store import Store
from jobmedic.knowledge.taxonomy import ENDED_STATES, FAILED_STATES

AS_OF = 1714694400  # 2024-05-03T00:00:00Z, the fixtures' settings.as_of


def _alerts(db_path):
    with Store(db_path) as s:
        ids = []
        for rule, sev, state, proj in (("repeat_failures", "high", "open", "ml-team"),
                                       ("repeat_failures", "high", "resolved", "ml-team"),
                                       ("node_users", "high", "open", None),
                                       ("known_fix", "info", "acked", "bio")):
            ids.append(s.live.add_alert({
                "rule": rule, "subject": f"{rule}-{state}", "dedup_key": f"{rule}:{state}",
                "severity": sev, "text": "t", "project": proj, "cluster": "hpc",
                "first_seen": AS_OF - 60, "last_seen": AS_OF - 60, "state": state}))
        d = s.live.add_delivery(ids[0], "webhook", "open")
        s.live.finish_delivery(d, True, 1)
        s.live.add_delivery(ids[2], "webhook", "open")
        jobs = s.conn.execute("SELECT state, end_time FROM jobs WHERE cluster = 'hpc'").fetchall()
    return jobs


def _rate(jobs, window):
    ended = [st for st, end in jobs if st in ENDED_STATES and end and AS_OF - window < end <= AS_OF]
    return sum(st in FAILED_STATES for st in ended), len(ended)


def test_unscoped_metrics_show_alerts_deliveries_and_failure_rates(db_path, token_client):
    jobs = _alerts(db_path)
    text = token_client.get("/metrics", headers={"authorization": "Bearer secret-admin"}).text
    assert 'jobmedic_alerts{rule="repeat_failures",severity="high",state="open"} 1' in text
    assert 'jobmedic_alerts{rule="repeat_failures",severity="high",state="resolved"} 1' in text
    assert 'jobmedic_alerts{rule="known_fix",severity="info",state="acked"} 1' in text
    assert 'jobmedic_alerts_opened_total{rule="repeat_failures"} 2' in text
    assert 'jobmedic_alerts_opened_total{rule="node_users"} 1' in text
    assert 'jobmedic_alert_deliveries_total{sink="webhook",status="sent"} 1' in text
    assert 'jobmedic_alert_deliveries_total{sink="webhook",status="pending"} 1' in text
    for window in (3600, 86400):
        failed, ended = _rate(jobs, window)
        m = re.search(rf'jobmedic_jobs_ended\{{cluster="hpc",window="{window}"\}} (\d+)', text)
        if ended == 0:
            assert m is None
            continue
        assert m and int(m.group(1)) == ended
        r = re.search(rf'jobmedic_failure_rate\{{cluster="hpc",window="{window}"\}} ([0-9.]+)',
                      text)
        assert r and abs(float(r.group(1)) - failed / ended) < 1e-6
    assert any(_rate(jobs, w)[1] for w in (3600, 86400))  # the fixture has recent jobs
    for line in text.splitlines():
        if not line.startswith("#"):
            assert re.fullmatch(r'[a-z_]+(\{[^}]*\})? [0-9.e+-]+', line), line


def test_scoped_token_sees_no_alert_or_failure_rate_metrics(db_path, token_client):
    _alerts(db_path)
    text = token_client.get("/metrics", headers={"authorization": "Bearer secret-ml"}).text
    assert "jobmedic_http_requests_total" in text  # the service's own metrics
    for name in ("jobmedic_alerts", "jobmedic_alert_deliveries_total", "jobmedic_failure_rate",
                 "jobmedic_jobs_ended", "jobmedic_store_rows"):
        assert name not in text
