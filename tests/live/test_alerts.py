"""Alert rules, dedup / cooldown / resolve, scope, and the sinks (a local HTTP server that times
out or answers 500, and aiosmtpd on 127.0.0.1 for email)."""
from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from jobmedic.live.alerting import AlertEngine, Notice, ack
from jobmedic.live.rules import RuleSet
from jobmedic.live.sinks import Dispatcher, JsonlSink, SinkError, StdoutSink, parse_sink

NOW = 1_800_000_000
COLS = ("cluster", "job_id", "name", "user", "project", "state", "failure_type", "blame",
        "submit_time", "end_time", "source")


def _jobs(store, rows, nodes=()):
    """Jobs, their nodes and failure events, written the way ingest writes them."""
    from jobmedic.knowledge.migrations import FAILURE_EVENT_COLUMNS

    store.upsert_jobs(rows, columns=COLS)
    store.add_job_nodes(list(nodes))
    events = []
    for r in rows:
        if r[5] == "completed":
            continue
        ev = dict.fromkeys(FAILURE_EVENT_COLUMNS)
        ev.update(cluster=r[0], job_id=r[1], job_name=r[2], user=r[3], project=r[4],
                  failure_type=r[6], blame=r[7], timestamp=r[9], source="slurm", resolved=0,
                  evidence=f"evidence of {r[1]}")
        events.append((*(ev[c] for c in FAILURE_EVENT_COLUMNS), f"job:{r[0]}:{r[1]}"))
    store.add_failure_events(events)


def _fail(i, name="train", user="alice", project="ml", t=NOW - 600, ftype="oom", blame="job"):
    return ("c1", str(i), name, user, project, "failed", ftype, blame, t - 100, t, "slurm")


def _rules(**over):
    cfg = {"hotspot": {"enabled": False}, "known_fix": {"enabled": False}, **over}
    return RuleSet(cfg)


def _run(store, rules, now, engine=None):
    engine = engine or AlertEngine(store, cooldown_s=1800)
    cands, ran = rules.evaluate(store, now)
    return engine.apply(cands, ran, now)


def test_repeat_failures_fire_once_list_jobs_and_resolve(store):
    _jobs(store, [_fail(1), _fail(2), _fail(3, t=NOW - 60), _fail(9, name="other")])
    rules = _rules()
    r = _run(store, rules, NOW)
    assert (r.opened, len(r.notices)) == (1, 1)
    a = r.notices[0].to_dict()
    assert a["rule"] == "repeat_failures" and a["subject"] == "name:train"
    assert a["job_ids"] == ["1", "2", "3"] and a["failure_type"] == "oom"
    assert a["evidence"] == "evidence of 3" and a["project"] == "ml"
    assert "failed 3 times" in a["text"]
    # the same condition a minute later: no new alert, no new notice
    r = _run(store, rules, NOW + 60)
    assert (r.opened, r.refreshed, r.notices) == (0, 1, [])
    # an hour later the failures left the window: resolved, and said so
    r = _run(store, rules, NOW + 3600)
    assert r.resolved == 1 and [n.event for n in r.notices] == ["resolve"]
    assert store.live.list_alerts(state="resolved")[0]["subject"] == "name:train"


def test_new_jobs_renotify_only_after_the_cooldown(store):
    _jobs(store, [_fail(1), _fail(2), _fail(3)])
    rules = _rules()
    engine = AlertEngine(store, cooldown_s=600)
    assert len(_run(store, rules, NOW, engine).notices) == 1
    _jobs(store, [_fail(4, t=NOW + 10)])
    assert _run(store, rules, NOW + 60, engine).notices == []  # grew, but within cooldown
    _jobs(store, [_fail(5, t=NOW + 700)])
    r = _run(store, rules, NOW + 700, engine)
    assert [n.event for n in r.notices] == ["repeat"]
    assert r.notices[0].alert["job_ids"][-1] == "5"
    assert store.live.open_alerts()[0]["count"] == 3


def test_a_condition_back_within_the_cooldown_opens_quietly(store):
    _jobs(store, [_fail(1), _fail(2), _fail(3)])
    rules = _rules()
    _run(store, rules, NOW)
    _run(store, rules, NOW + 3600)  # resolved (and notified) at NOW + 3600
    _jobs(store, [_fail(i, t=NOW + 3700) for i in (11, 12, 13)])
    r = _run(store, rules, NOW + 3800)
    assert r.opened == 1 and r.notices == []  # within the cooldown of the last notice


def test_node_with_failures_from_several_users(store):
    rows = [_fail(1, name="a", user="alice", project="ml", ftype="gpu_error", blame="cluster"),
            _fail(2, name="b", user="bob", project="bio", ftype="gpu_error", blame="cluster"),
            _fail(3, name="c", user="carol", project="ml", ftype="oom", blame="job"),
            _fail(4, name="d", user="dan", project="ml", ftype="gpu_error", blame="cluster")]
    _jobs(store, rows, [("c1", "1", "gpu-03"), ("c1", "2", "gpu-03"), ("c1", "3", "gpu-07"),
                        ("c1", "4", "gpu-07")])
    r = _run(store, _rules(repeat_failures={"enabled": False}), NOW)
    assert [n.alert["subject"] for n in r.notices] == ["node:gpu-03"]
    a = r.notices[0].to_dict()
    assert a["job_ids"] == ["1", "2"] and a["failure_type"] == "gpu_error"
    assert a["project"] is None and "drain gpu-03" in a["fix"]


def test_known_fix_rule_names_the_fix(store):
    _jobs(store, [_fail(1, ftype="oom")])

    def fixes(ftype, project):
        assert (ftype, project) == ("oom", "ml")
        return [{"title": "Raise the memory request", "attempts": 8, "successes": 7,
                 "success_rate": 0.875}]
    r = _run(store, RuleSet({"hotspot": {"enabled": False}}, fixes), NOW)
    kf = [n.to_dict() for n in r.notices if n.alert["rule"] == "known_fix"]
    assert kf and kf[0]["fix"] == "Raise the memory request (7/8 worked)"
    assert kf[0]["failure_type"] == "oom" and kf[0]["job_ids"] == ["1"]


def test_alerts_are_scoped_and_acked(store):
    _jobs(store, [_fail(i) for i in (1, 2, 3)] +
          [_fail(i, name="bio-run", project="bio") for i in (4, 5, 6)])
    _run(store, _rules(), NOW)
    assert {a["project"] for a in store.live.list_alerts()} == {"ml", "bio"}
    assert {a["project"] for a in store.live.list_alerts(["bio"])} == {"bio"}
    ml = store.live.list_alerts(["ml"])[0]
    assert ack(store, ml["id"], ["bio"]) is None  # not in the caller's scope
    assert ack(store, ml["id"], ["ml"], by="ops")["state"] == "acked"
    r = _run(store, _rules(), NOW + 60)  # acked stays (no reopen, no notice)
    assert r.opened == 0 and r.notices == []


# -- sinks -----------------------------------------------------------------------------------
class _Hook(BaseHTTPRequestHandler):
    answers: ClassVar[list[int]] = []
    bodies: ClassVar[list[dict]] = []
    delay = 0.0

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        time.sleep(type(self).delay)
        code = type(self).answers.pop(0) if type(self).answers else 200
        if code == 200:
            type(self).bodies.append(body)
        try:
            self.send_response(code)
            self.end_headers()
            self.wfile.write(b"ok")
        except (BrokenPipeError, ConnectionResetError):
            pass  # a delayed answer: the sink gave up waiting, as the test wants

    def log_message(self, *a):
        pass


@pytest.fixture
def hook():
    _Hook.answers, _Hook.bodies, _Hook.delay = [], [], 0.0
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_port}/hook"
    srv.shutdown()
    srv.server_close()  # waits for handlers still sleeping, so none outlives the test


def _notice(store, subject="name:train"):
    a = {"rule": "repeat_failures", "subject": subject, "dedup_key": "k:" + subject,
         "severity": "high", "text": "job 'train' failed 3 times", "job_ids": ["1", "2", "3"],
         "failure_type": "oom", "evidence": "MemoryError", "fix": "raise --mem",
         "first_seen": NOW, "last_seen": NOW, "state": "open"}
    a["id"] = store.live.add_alert(a)
    return Notice("fire", a)


def test_webhook_retries_a_500_then_delivers(store, hook):
    _Hook.answers = [500, 500]
    d = Dispatcher(store, [parse_sink(f"webhook:{hook}")], backoff_s=0.01)
    d.dispatch([_notice(store)])
    d.close()
    (row,) = store.live.deliveries()
    assert (row["status"], row["attempts"]) == ("sent", 3)
    body = _Hook.bodies[0]
    assert "failed 3 times" in body["text"] and body["alert"]["job_ids"] == ["1", "2", "3"]
    assert body["alert"]["fix"] == "raise --mem" and body["alert"]["evidence"] == "MemoryError"


def test_webhook_down_never_blocks_and_never_loses_the_alert(store, hook):
    _Hook.answers = [500] * 10
    d = Dispatcher(store, [parse_sink(f"slack:{hook}")], retries=2, backoff_s=0.01)
    t0 = time.perf_counter()
    d.dispatch([_notice(store)])
    assert time.perf_counter() - t0 < 0.5  # polling goes on while the sink retries
    d.close()
    (row,) = store.live.deliveries()
    assert row["status"] == "failed" and row["attempts"] == 3 and "HTTP 500" in row["last_error"]
    assert store.live.list_alerts()[0]["subject"] == "name:train"  # the alert is kept


def test_webhook_timeout_is_recorded(store, hook):
    _Hook.delay = 1.0
    sink = parse_sink(f"webhook:{hook}")
    sink.timeout_s = 0.2
    d = Dispatcher(store, [sink], retries=1, backoff_s=0.01)
    d.dispatch([_notice(store)])
    d.close()
    (row,) = store.live.deliveries()
    assert row["status"] == "failed" and "Timeout" in row["last_error"]


def test_email_through_a_local_smtp_server(store):
    aiosmtpd = pytest.importorskip("aiosmtpd.controller")
    got = []

    class Handler:
        async def handle_DATA(self, server, session, envelope):
            got.append((envelope.rcpt_tos, envelope.content.decode()))
            return "250 OK"
    import socket

    with socket.socket() as s:  # a free port (the controller's readiness check needs one)
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ctl = aiosmtpd.Controller(Handler(), hostname="127.0.0.1", port=port)
    ctl.start()
    try:
        sink = parse_sink("email:ops@example.org", {"host": "127.0.0.1", "port": port,
                                                    "sender": "jobmedic@cluster"})
        d = Dispatcher(store, [sink], backoff_s=0.01)
        d.dispatch([_notice(store)])
        d.close()
    finally:
        ctl.stop()
    assert store.live.deliveries()[0]["status"] == "sent"
    (rcpt, content), = got
    assert rcpt == ["ops@example.org"]
    assert "Subject: [jobmedic] ALERT repeat_failures name:train" in content
    assert "MemoryError" in content and "raise --mem" in content


def test_stdout_and_jsonl_sinks(store, tmp_path):
    import io

    buf = io.StringIO()
    path = tmp_path / "a.jsonl"
    d = Dispatcher(store, [StdoutSink(buf), JsonlSink(str(path))])
    d.dispatch([_notice(store)])
    assert "[ALERT]" in buf.getvalue() and "evidence: MemoryError" in buf.getvalue()
    line = json.loads(path.read_text())
    assert line["event"] == "fire" and line["job_ids"] == ["1", "2", "3"]
    assert [r["status"] for r in store.live.deliveries()] == ["sent", "sent"]


@pytest.mark.parametrize("spec", ["", "jsonl:", "webhook:ftp://x", "email:nobody", "sms:123"])
def test_bad_sink_specs_are_named(spec):
    with pytest.raises(SinkError, match="unknown sink"):
        parse_sink(spec)


def test_hotspot_rule_keeps_to_its_cpu_share(store, monkeypatch):
    """The hotspot rule runs every `every_s`, or less often when one run's CPU divided by the
    wait would pass `max_cpu_share` of a core (on a big store one run costs seconds)."""
    import jobmedic.live.rules as rules_mod

    def busy(store, now, cfg):
        t0 = time.process_time()
        while time.process_time() - t0 < 0.05:
            pass
        return []
    monkeypatch.setattr(rules_mod, "hotspot", busy)
    off = {k: {"enabled": False} for k in ("repeat_failures", "node_users", "known_fix",
                                            "memkill", "changepoint")}
    cheap = RuleSet({**off, "hotspot": {"every_s": 10, "max_cpu_share": 0.5}})
    assert "hotspot" in cheap.evaluate(store, NOW)[1]
    assert "hotspot" not in cheap.evaluate(store, NOW + 5)[1]
    assert "hotspot" in cheap.evaluate(store, NOW + 10)[1]  # 0.05 s / 0.5 < 10 s: every_s
    costly = RuleSet({**off, "hotspot": {"every_s": 10, "max_cpu_share": 0.001}})
    assert "hotspot" in costly.evaluate(store, NOW)[1]
    assert costly.hotspot_cpu_s >= 0.05
    assert "hotspot" not in costly.evaluate(store, NOW + 10)[1]  # >= 0.05 / 0.001 = 50 s
    assert "hotspot" not in costly.evaluate(store, NOW + 45)[1]
    later = NOW + costly.hotspot_cpu_s / 0.001 + 1
    assert "hotspot" in costly.evaluate(store, int(later))[1]
