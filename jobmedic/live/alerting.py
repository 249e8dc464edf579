"""From rule candidates to stored alerts and notifications: dedup, cooldown, resolve.

One open alert per dedup key (rule, cluster, subject). A candidate whose key has no open
alert opens one and notifies (unless the key was notified within the cooldown); one whose key
is open refreshes it (last seen, job ids, count) and notifies again only when new jobs joined
and the cooldown has passed. An open alert whose rule ran and no longer yields its key is
resolved, and the resolution is notified. Every notification is written to alert_deliveries
before it is handed to a sink, so none is lost when a sink fails.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from jobmedic.live.candidate import Candidate


@dataclass
class Notice:
    """One thing to tell the sinks: an alert that fired, fired again, or resolved."""

    event: str  # fire | repeat | resolve
    alert: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        a = self.alert
        return {"event": self.event, "id": a.get("id"), "rule": a.get("rule"),
                "subject": a.get("subject"), "severity": a.get("severity"),
                "text": a.get("text"), "job_ids": a.get("job_ids") or [],
                "failure_type": a.get("failure_type"), "evidence": a.get("evidence"),
                "fix": a.get("fix"), "project": a.get("project"), "cluster": a.get("cluster"),
                "first_seen": a.get("first_seen"), "last_seen": a.get("last_seen"),
                "state": a.get("state")}


@dataclass
class EvalSummary:
    opened: int = 0
    refreshed: int = 0
    resolved: int = 0
    notices: list[Notice] = field(default_factory=list)


class AlertEngine:
    def __init__(self, store: Any, cooldown_s: int = 1800) -> None:
        self.store, self.cooldown_s = store, cooldown_s

    def apply(self, candidates: list[Candidate], ran: set[str],
              now: int | None = None) -> EvalSummary:
        now = int(time.time()) if now is None else now
        live = self.store.live
        out = EvalSummary()
        open_by_key = {a["dedup_key"]: a for a in live.open_alerts()}
        seen: set[str] = set()
        touched: list[int] = []
        for c in candidates:
            key = c.dedup_key
            if key in seen:
                continue
            seen.add(key)
            cur = open_by_key.get(key)
            if cur is None:
                last = live.last_sent_for(key)
                quiet = last is not None and now - last < self.cooldown_s
                a = {"rule": c.rule, "subject": c.subject, "dedup_key": key,
                     "severity": c.severity, "text": c.text, "job_ids": c.job_ids,
                     "failure_type": c.failure_type, "evidence": c.evidence, "fix": c.fix,
                     "project": c.project, "cluster": c.cluster, "first_seen": now,
                     "last_seen": now, "last_sent": None if quiet else now, "state": "open",
                     "count": 1}
                a["id"] = live.add_alert(a)
                out.opened += 1
                if not quiet:
                    out.notices.append(Notice("fire", a))
                continue
            grew = bool(set(c.job_ids) - set(cur["job_ids"]))
            if not grew and (c.text, c.severity, c.job_ids) == (cur["text"], cur["severity"],
                                                                  cur["job_ids"]):
                touched.append(cur["id"])
                out.refreshed += 1
                continue
            upd: dict[str, Any] = {"last_seen": now, "text": c.text, "job_ids": c.job_ids,
                                   "severity": c.severity, "count": cur["count"] + int(grew)}
            for k in ("evidence", "fix", "failure_type"):
                if getattr(c, k):
                    upd[k] = getattr(c, k)
            resend = grew and (cur["last_sent"] is None or now - cur["last_sent"] >= self.cooldown_s)
            if resend:
                upd["last_sent"] = now
            live.update_alert(cur["id"], **upd)
            out.refreshed += 1
            if resend:
                out.notices.append(Notice("repeat", {**cur, **upd}))
        live.touch_alerts(touched, now)
        for key, a in open_by_key.items():
            if key in seen or a["rule"] not in ran:
                continue
            upd = {"state": "resolved", "resolved_at": now, "last_seen": now}
            if a["last_sent"] is not None:
                upd["last_sent"] = now
            live.update_alert(a["id"], **upd)
            out.resolved += 1
            if a["last_sent"] is not None:  # never told: no need to say it is over
                out.notices.append(Notice("resolve", {**a, **upd}))
        return out


def ack(store: Any, alert_id: int, scope: Any = None, by: str | None = None,
        now: int | None = None) -> dict[str, Any] | None:
    """Acknowledge an open alert in the caller's scope (None when there is no such alert)."""
    a = store.live.get_alert(alert_id, scope)
    if a is None:
        return None
    if a["state"] == "open":
        store.live.update_alert(alert_id, state="acked",
                                acked_at=int(time.time()) if now is None else now, acked_by=by)
    return store.live.get_alert(alert_id, scope)
