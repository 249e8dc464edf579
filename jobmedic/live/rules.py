"""Alert rules: conditions over the store's recent failures, each giving candidate alerts.

A candidate names its rule, subject and dedup key; the engine (alerting.py) turns candidates
into alerts, keeps one open alert per key, and resolves it when the candidate stops appearing.
Rules read only the jobs of their window (indexed), so they stay cheap on a large store.

Configuration (the `alerts:` section of jobmedic.yaml), with the defaults:

    alerts:
      cooldown_s: 1800           # a key is notified at most once per cooldown
      repeat_failures: {enabled: true, count: 3, window_s: 3600, severity: high}
      node_users: {enabled: true, users: 2, window_s: 3600, severity: high}
      hotspot: {enabled: true, lookback_days: 1, every_s: 300, max_cpu_share: 0.005,
                severities: [high, critical]}   # runs every every_s, or less often when its
                                                # CPU would pass max_cpu_share of a core
      known_fix: {enabled: true, window_s: 3600, min_attempts: 3, min_success_rate: 0.7,
                  severity: info}
      memkill: {enabled: true, horizon_s: 900, window_s: 180, stale_s: 120, severity: high}
      changepoint: {enabled: true, by: cluster, bucket_s: 3600, window_s: 172800,
                    alpha: 0.001, threshold: null, min_jobs: 30, min_failures: 5,
                    min_ratio: 1.5, every_s: 0, severity: high, settle_s: 900,
                    refresh_s: 3600}   # live/changepoint.py
"""
from __future__ import annotations

import time
from typing import Any

from jobmedic.live import changepoint as _changepoint
from jobmedic.live.candidate import Candidate

# End times come from the scheduler's clock: one a little ahead of this host's still counts.
SKEW_S = 300
DEFAULTS: dict[str, Any] = {
    "cooldown_s": 1800,
    "repeat_failures": {"enabled": True, "count": 3, "window_s": 3600, "severity": "high"},
    "node_users": {"enabled": True, "users": 2, "window_s": 3600, "severity": "high"},
    "hotspot": {"enabled": True, "lookback_days": 1.0, "every_s": 300, "max_cpu_share": 0.005,
                "severities": ["high", "critical"]},
    "known_fix": {"enabled": True, "window_s": 3600, "min_attempts": 3,
                  "min_success_rate": 0.7, "severity": "info"},
    # running jobs about to pass their memory request (live/memkill.py)
    "memkill": {"enabled": True, "horizon_s": 900, "window_s": 180, "stale_s": 120,
                "severity": "high"},
    # a step up in a cluster's (or project's) failure rate (live/changepoint.py)
    "changepoint": dict(_changepoint.DEFAULTS),
}


def merged(config: dict[str, Any] | None) -> dict[str, Any]:
    """The defaults overlaid with a (possibly partial) `alerts:` configuration."""
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in DEFAULTS.items()}
    for k, v in (config or {}).items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k].update(v)
        else:
            out[k] = v
    return out


def repeat_failures(store: Any, now: int, cfg: dict[str, Any]) -> list[Candidate]:
    """A job name failing `count` times within `window_s`."""
    since = now - int(cfg["window_s"])
    out = []
    until = now + SKEW_S
    for g in store.live.name_failures(since, until, int(cfg["count"])):
        jobs = store.live.failed_jobs_named(g["cluster"], g["project"], g["name"], since, until)
        ids = [j["job_id"] for j in jobs]
        types = [j["failure_type"] for j in jobs if j["failure_type"]]
        ftype = max(set(types), key=types.count) if types else None
        ev = store.live.latest_evidence(g["cluster"], ids)
        mins = int(cfg["window_s"]) // 60
        out.append(Candidate(
            "repeat_failures", f"name:{g['name']}", cfg["severity"],
            f"job {g['name']!r} ({g['project'] or 'no project'}) failed {g['count']} times in "
            f"the last {mins} min ({ftype or 'unknown'}): jobs {', '.join(ids[:10])}"
            + (f" (+{len(ids) - 10} more)" if len(ids) > 10 else ""),
            ids, ftype, ev, None, g["project"], g["cluster"]))
    return out


def node_users(store: Any, now: int, cfg: dict[str, Any]) -> list[Candidate]:
    """A node where failures not blamed on the job came from several users."""
    since = now - int(cfg["window_s"])
    out = []
    for g in store.live.node_failure_users(since, now + SKEW_S, int(cfg["users"])):
        jobs = store.live.failed_jobs_on_node(g["cluster"], g["node"], since, now + SKEW_S)
        ids = [j["job_id"] for j in jobs]
        types = [j["failure_type"] for j in jobs if j["failure_type"]]
        ftype = max(set(types), key=types.count) if types else None
        out.append(Candidate(
            "node_users", f"node:{g['node']}", cfg["severity"],
            f"node {g['node']}: {g['count']} failures from {g['users']} users in the last "
            f"{int(cfg['window_s']) // 60} min ({ftype or 'unknown'}); suspect the node",
            ids, ftype, store.live.latest_evidence(g["cluster"], ids),
            f"drain {g['node']} and run the node diagnostics",
            g["projects"][0] if len(g["projects"]) == 1 else None, g["cluster"]))
    return out


def hotspot(store: Any, now: int, cfg: dict[str, Any]) -> list[Candidate]:
    """A node / image / project / user whose failure rate is significantly high."""
    from jobmedic.analyzers.hotspots import Hotspots
    from jobmedic.core.timeutil import Window

    findings = Hotspots().run(store, Window.lookback(now, float(cfg["lookback_days"])), None)
    out = []
    for f in findings:
        if f.severity not in cfg["severities"] or not f.subject:
            continue
        kind, _, value = f.subject.partition(":")
        out.append(Candidate("hotspot", f.subject, f.severity, f.summary,
                             project=value if kind == "project" else None,
                             fix=f.recommendation or None))
    return out


def known_fix(store: Any, now: int, cfg: dict[str, Any], fixes_for: Any) -> list[Candidate]:
    """Recent failures of a type whose best fix has a good record: say which fix."""
    if fixes_for is None:
        return []
    out = []
    for g in store.live.type_failures(now - int(cfg["window_s"]), now + SKEW_S):
        if g["failure_type"] in ("unknown", "app_error", "cancelled"):
            continue
        best = None
        for fx in fixes_for(g["failure_type"], g["project"]):
            n, rate = fx.get("attempts") or 0, fx.get("success_rate")
            if n >= int(cfg["min_attempts"]) and rate is not None and \
                    rate >= float(cfg["min_success_rate"]):
                best = fx
                break
        if best is None:
            continue
        fix = f"{best.get('title')} ({best.get('successes')}/{best['attempts']} worked)"
        out.append(Candidate(
            "known_fix", f"type:{g['failure_type']}:{g['project'] or ''}", cfg["severity"],
            f"{g['count']} {g['failure_type']} failure(s) in {g['project'] or 'no project'}; "
            f"a fix with a good record: {fix}", g["job_ids"], g["failure_type"],
            store.live.latest_evidence(g["cluster"], g["job_ids"]), fix, g["project"],
            g["cluster"]))
    return out


class RuleSet:
    """The configured rules; `evaluate` returns the candidates of every rule it ran, and the
    names of the rules that ran (a rule skipped this time resolves nothing)."""

    def __init__(self, config: dict[str, Any] | None = None, fixes_for: Any = None) -> None:
        self.cfg = merged(config)
        if (self.cfg.get("changepoint") or {}).get("enabled", True):
            _changepoint.validate(self.cfg["changepoint"])  # a bad setting stops watch at start
        self.fixes_for = fixes_for
        self._hotspot_next = float("-inf")
        self.hotspot_cpu_s: float | None = None  # the last run's CPU seconds
        self._changepoint_at = float("-inf")
        self._changepoint_cache = _changepoint.SeriesCache()

    def evaluate(self, store: Any, now: int | None = None) -> tuple[list[Candidate], set[str]]:
        now = int(time.time()) if now is None else now
        out: list[Candidate] = []
        ran: set[str] = set()
        for name, fn in (("repeat_failures", repeat_failures), ("node_users", node_users)):
            if self.cfg[name].get("enabled", True):
                out += fn(store, now, self.cfg[name])
                ran.add(name)
        hc = self.cfg["hotspot"]
        if hc.get("enabled", True) and now >= self._hotspot_next:
            c0 = time.process_time()
            out += hotspot(store, now, hc)
            ran.add("hotspot")
            # The analyzer reads the whole lookback: on a big store one run costs seconds of
            # CPU, so the next one waits long enough to keep it under max_cpu_share of a core.
            self.hotspot_cpu_s = time.process_time() - c0
            share = float(hc.get("max_cpu_share") or 0)
            wait = max(float(hc["every_s"]), self.hotspot_cpu_s / share if share > 0 else 0)
            self._hotspot_next = now + wait
        kc = self.cfg["known_fix"]
        if kc.get("enabled", True) and self.fixes_for is not None:
            out += known_fix(store, now, kc, self.fixes_for)
            ran.add("known_fix")
        mc = self.cfg.get("memkill") or {}
        if mc.get("enabled", True):
            from jobmedic.live.memkill import memkill

            out += memkill(store, now, mc)
            ran.add("memkill")
        cc = self.cfg.get("changepoint") or {}
        if cc.get("enabled", True) and \
                now - self._changepoint_at >= float(cc.get("every_s") or 0):
            out += _changepoint.changepoint(store, now, cc, self._changepoint_cache)
            ran.add("changepoint")
            self._changepoint_at = now
        return out, ran
