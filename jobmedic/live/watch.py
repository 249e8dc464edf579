"""The watch loop: poll, read the new failures' output, learn from new resubmissions, evaluate
the alert rules, notify. Every step touches only what the poll brought (the after-ingest work
is incremental: outcome inference reads only the new jobs' resubmission groups, the same
user's jobs of the same name, within the resubmission window).

`run` stops cleanly between polls when its stop event is set (the CLI sets it on SIGINT and
SIGTERM); a scheduler command that is missing or failing is reported and retried with
backoff (interval, doubling, capped), never fatal. Polls start on a fixed schedule (every
`interval` from the previous poll's start, not from its end), so a slow poll does not push
every later one back and a job's alert comes at most one interval plus one poll after sacct
shows it.

The telemetry retention (downsample raw samples, prune old ones: knowledge/telemetry.py) runs
from the watcher on its own schedule, `live.retention.every_s` (default hourly), the time of
its last run kept in the store (`live_state` key `retention`), so a watcher run from cron with
`--once` every minute still runs it once an hour.

The models' after-load upkeep (models/gnn_refresh.after_load: the GNN serving state, then the
per-entity summary, as after `jobmedic ingest`) runs after a poll that brought new jobs, so
`predict` keeps the ensemble and the summary's fast features on a watched cluster; its cost
follows what the polls loaded. With `live.refresh_every_s` > 0 it runs at most that often (the
jobs of the polls between wait for the next run; predict reads the jobs meanwhile).
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from jobmedic.live.alerting import AlertEngine, EvalSummary
from jobmedic.live.evidence import collect
from jobmedic.live.poller import PollResult, SourceUnavailable
from jobmedic.live.rules import RuleSet
from jobmedic.live.sinks import Dispatcher

RETENTION_DEFAULTS: dict[str, Any] = {"enabled": True, "every_s": 3600,
                                      "raw_keep_s": 7 * 86400, "step_s": 300,
                                      "keep_s": 180 * 86400}


def retention_settings(cfg: dict[str, Any] | None) -> dict[str, Any]:
    """`live.retention` over the defaults; InputError naming a bad setting."""
    from jobmedic.knowledge.errors import InputError

    c = {**RETENTION_DEFAULTS, **(cfg or {})}
    unknown = sorted(set(c) - set(RETENTION_DEFAULTS))
    if unknown:
        raise InputError(f"live.retention: unknown setting(s) {', '.join(unknown)}",
                         hint=f"known: {', '.join(RETENTION_DEFAULTS)}")
    try:
        nums = {k: float(c[k]) for k in ("every_s", "raw_keep_s", "step_s", "keep_s")}
    except (TypeError, ValueError) as exc:
        raise InputError(f"live.retention: a setting is not a number ({exc})",
                         hint="every_s, raw_keep_s, step_s and keep_s are seconds") from None
    if min(nums.values()) < 0 or nums["step_s"] < 1 or nums["keep_s"] < nums["raw_keep_s"]:
        raise InputError("live.retention: seconds must be positive, step_s at least 1 and "
                         "keep_s at least raw_keep_s",
                         hint="defaults: every_s 3600, raw_keep_s 604800, step_s 300, "
                              "keep_s 15552000")
    return c


@dataclass
class StepResult:
    poll: PollResult
    evidence: dict[str, Any] = field(default_factory=dict)
    outcomes: int = 0
    alerts: EvalSummary = field(default_factory=EvalSummary)
    retention: dict[str, Any] | None = None  # what the telemetry retention did, when it ran
    upkeep: dict[str, Any] | None = None  # the models' after-load upkeep, when it ran
    seconds: float = 0.0

    def line(self) -> str:
        p, a = self.poll, self.alerts
        rej = (f", {p.rejected} records rejected (`jobmedic db rejects`)" if p.rejected
               else "")
        return (f"poll: {p.read} jobs read, {len(p.new_jobs)} new ({len(p.new_failures)} "
                f"failed), {p.running} running{rej}; alerts {a.opened} opened, {a.resolved} "
                f"resolved; {self.seconds:.2f}s")


class Watcher:
    def __init__(self, store: Any, taxonomy: Any, poller: Any, rules: RuleSet,
                 dispatcher: Dispatcher, *, rulebase: Any = None, resubmit_window_h: float = 24,
                 kube_command: str | None = None, read_output: bool = True,
                 use_scontrol: bool = True, sampler: Any = None,
                 retention: dict[str, Any] | None = None, refresh_every_s: float = 0.0,
                 upkeep: Callable[[Any], dict[str, Any] | None] | None = None,
                 log: Callable[[str], None] = lambda s: None) -> None:
        self.store, self.taxonomy, self.poller, self.rules = store, taxonomy, poller, rules
        self.dispatcher, self.rulebase = dispatcher, rulebase
        self.window_s = int(resubmit_window_h * 3600)
        self.kube_command, self.read_output, self.log = kube_command, read_output, log
        self.use_scontrol = use_scontrol
        self.sampler = sampler  # e.g. live/memkill.SstatSampler: memory of running jobs
        self.engine = AlertEngine(store, int(rules.cfg.get("cooldown_s", 1800)))
        self.retention = retention_settings(retention)
        if not refresh_every_s >= 0:
            from jobmedic.knowledge.errors import InputError

            raise InputError(f"live.refresh_every_s must be 0 or more seconds, not {refresh_every_s}",
                             hint="0 (the default): after every poll that brought jobs")
        self.refresh_every_s = float(refresh_every_s)
        self._upkeep_fn = upkeep
        self._upkeep_due = False  # jobs loaded since the last upkeep
        self._upkeep_at: float | None = None  # time.monotonic() of the last upkeep

    def step(self, now: int | None = None, since: int | None = None) -> StepResult:
        t0 = time.perf_counter()
        res = StepResult(self.poller.poll(now=now, since=since))
        new = res.poll.new_jobs
        if new and self.read_output:
            res.evidence = collect(self.store, self.taxonomy, res.poll.new_failures,
                                   use_scontrol=self.use_scontrol,
                                   kube_command=self.kube_command).to_dict()
        if new and self.rulebase is not None:
            res.outcomes = self._learn(new)
        res.upkeep = self._upkeep(bool(new))
        if self.sampler is not None:
            self.sampler.sample(now)
        cands, ran = self.rules.evaluate(self.store, now)
        res.alerts = self.engine.apply(cands, ran, now)
        self.dispatcher.dispatch(res.alerts.notices)
        res.retention = self._retention(int(time.time()) if now is None else now)
        res.seconds = time.perf_counter() - t0
        return res

    def _upkeep(self, loaded: bool) -> dict[str, Any] | None:
        """The models' after-load upkeep when jobs came since the last one and, with a
        cadence, `refresh_every_s` has passed. Returns what it did (CPU and wall seconds)."""
        self._upkeep_due = self._upkeep_due or loaded
        t = time.monotonic()
        if not self._upkeep_due or (self._upkeep_at is not None and self.refresh_every_s > 0
                                    and t - self._upkeep_at < self.refresh_every_s):
            return None
        if self._upkeep_fn is None:
            from jobmedic.models.gnn_refresh import after_load

            self._upkeep_fn = after_load
        c0 = time.process_time()
        gnn = self._upkeep_fn(self.store)
        self._upkeep_due, self._upkeep_at = False, t
        out = {"gnn": gnn, "seconds": round(time.monotonic() - t, 3),
               "cpu_seconds": round(time.process_time() - c0, 3)}
        if gnn and gnn.get("mode") in ("stale", "dropped"):
            self.log(f"the gnn serving state was not refreshed ({gnn.get('reason')}): predict "
                     "uses XGBoost alone until `jobmedic train gnn`")
        return out

    def _retention(self, now: int) -> dict[str, Any] | None:
        """Run the telemetry retention when `every_s` has passed since its last run (kept in
        the store, so restarts and `--once` runs keep the schedule)."""
        c = self.retention
        if not c["enabled"]:
            return None
        last = (self.store.live.live_get("retention") or {}).get("at")
        if last is not None and now - int(last) < float(c["every_s"]):
            return None
        t0 = time.perf_counter()
        done = self.store.apply_telemetry_retention(
            now, raw_keep_s=int(c["raw_keep_s"]), step_s=int(c["step_s"]),
            keep_s=int(c["keep_s"]))
        done["seconds"] = round(time.perf_counter() - t0, 3)
        self.store.live.live_put("retention", {"at": now, **done})
        self.log(f"telemetry retention: {done['pruned']} samples older than "
                 f"{int(c['keep_s']) // 86400} days pruned, {done['rows_before']} raw samples "
                 f"downsampled to {done['rows_after']}; {done['seconds']:.2f}s")
        return done

    def _learn(self, new: list[dict[str, Any]]) -> int:
        from jobmedic.knowledge.outcomes import infer_outcomes

        submits = [j["submit_time"] for j in new if j.get("submit_time")]
        if not submits:
            return 0
        # A failure pairs with a follow-up submitted within the window after its end: the
        # groups' jobs that ended (or, unfinished, were submitted) since then are enough.
        df = self.store.live.resubmission_frame_of(new, min(submits) - self.window_s - 1)
        if df.empty:
            return 0
        return infer_outcomes(self.store, self.rulebase, self.window_s / 3600, df=df
                              ).outcomes_written

    def run(self, interval_s: float, *, once: bool = False, since: int | None = None,
            stop: threading.Event | None = None, max_backoff_s: float = 600) -> int:
        """Poll until `stop` is set (or once). Returns the number of polls that failed."""
        stop = stop or threading.Event()
        failures = 0
        delay = interval_s
        first = True
        while not stop.is_set():
            started = time.monotonic()
            try:
                r = self.step(since=since if first else None)
                self.log(r.line())
                for err in getattr(self.poller, "errors", None) or []:
                    self.log(f"a source failed (the others were read): {err}")
                first, delay = False, interval_s
            except SourceUnavailable as exc:
                failures += 1
                delay = min(max(interval_s, 1) * 2 ** min(failures, 10), max_backoff_s)
                self.log(f"poll failed: {exc.message}; retrying in {delay:.0f}s"
                         + (f" ({exc.hint})" if exc.hint else ""))
            self.dispatcher.drain()
            if once:
                break
            # the next poll starts `delay` after this one started (at once when it overran)
            stop.wait(max(0.0, started + delay - time.monotonic()))
        self.dispatcher.close()
        return failures
