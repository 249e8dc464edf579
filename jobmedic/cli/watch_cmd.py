"""`jobmedic watch` (poll the scheduler, read failed jobs' output, alert) and `jobmedic alerts`
(list, in the caller's scope; `ack ID`)."""
from __future__ import annotations

import json
import shutil
import signal
import sys
import threading
import time
from typing import Annotated

import typer

from jobmedic.cli.context import fail, state
from jobmedic.knowledge.errors import JobmedicError


def _fixes_for(app):
    from jobmedic.knowledge.advice import ranked_fixes

    def fixes(ftype: str, project: str | None) -> list[dict]:
        out = ranked_fixes(app.store, app.rules, ftype, [project] if project else None)
        return sorted(out, key=lambda f: -(f.get("lower_bound") or 0))
    return fixes


def build_poller(app, interval: float):
    """sacct (unless live.sacct is off), plus kubectl and a Run:AI endpoint when configured."""
    from jobmedic.live.feeds import FeedPoller, MultiPoller, http_fetch, kubectl_fetch
    from jobmedic.live.poller import SacctPoller

    cfg, cluster, bs = app.settings.live, app.settings.cluster, app.settings.ingest.batch_size
    pollers: list = []
    if cfg.sacct:
        pollers.append(SacctPoller(app.store, app.taxonomy, cluster, overlap_s=cfg.overlap_s,
                                   first_lookback_s=max(int(interval) * 2, 3600), batch_size=bs))
    if cfg.kubectl_command:
        pollers.append(FeedPoller(app.store, app.taxonomy, cluster, "kubernetes",
                                  kubectl_fetch(cfg.kubectl_command), batch_size=bs))
    if cfg.runai_url:
        pollers.append(FeedPoller(app.store, app.taxonomy, cluster, "runai",
                                  http_fetch(cfg.runai_url, token=cfg.runai_token), batch_size=bs))
    if not pollers:
        raise JobmedicError("nothing to poll: live.sacct is off and neither "
                            "live.kubectl_command nor live.runai_url is set")
    return pollers[0] if len(pollers) == 1 else MultiPoller(pollers)


def build_watcher(app, sinks: list[str], interval: float, log=None):
    """The Watcher of this App's store and configuration, with these sink specs."""
    from jobmedic.live.rules import RuleSet
    from jobmedic.live.sinks import Dispatcher, parse_sink
    from jobmedic.live.watch import Watcher

    cfg = app.settings.live
    specs = list(sinks) or list(cfg.sinks) or ["stdout"]
    parsed = [parse_sink(s, cfg.smtp) for s in specs]
    store = app.store
    poller = build_poller(app, interval)
    rules = RuleSet(cfg.alerts, _fixes_for(app))
    sampler = None  # memory of running jobs for the memkill rule, where sstat exists
    if (cfg.alerts.get("memkill") or {}).get("enabled", True) and shutil.which("sstat"):
        from jobmedic.live.memkill import SstatSampler

        sampler = SstatSampler(store, app.settings.cluster)
    return Watcher(store, app.taxonomy, poller, rules, Dispatcher(store, parsed), sampler=sampler,
                   rulebase=app.rules, resubmit_window_h=app.settings.ingest.resubmit_window_h,
                   kube_command=cfg.kube_logs_command, read_output=cfg.read_output,
                   retention=cfg.retention, refresh_every_s=cfg.refresh_every_s,
                   log=log or (lambda m: None))


def watch(
    ctx: typer.Context,
    interval: float | None = typer.Option(None, "--interval", help="Seconds between polls "
                                          "(default: live.interval_s, 60)."),
    once: bool = typer.Option(False, "--once", help="Poll once and exit (cron, systemd timers)."),
    since: str | None = typer.Option(None, "--since", help="Start the first poll here (ISO, "
                                     "epoch or now-2hours) instead of the stored cursor."),
    sink: Annotated[list[str] | None, typer.Option(
        "--sink", help="stdout, jsonl:PATH, webhook:URL, slack:URL or email:ADDR (repeatable; "
        "default: live.sinks or stdout).")] = None,
    quiet: bool = typer.Option(False, "--quiet", help="No poll summary lines on stderr."),
) -> None:
    """Watch the cluster: poll sacct with a cursor kept in the store (and kubectl / a Run:AI
    endpoint when live.kubectl_command / live.runai_url are set), read each new failure's
    output, learn from resubmissions, evaluate the alert rules and notify the sinks. Stops
    cleanly between polls on Ctrl-C or SIGTERM."""
    from jobmedic.live.evidence import sacct_time_to_epoch

    app = state(ctx)
    every = float(interval or app.settings.live.interval_s)
    if every <= 0:
        fail("--interval must be positive", 2)

    def log(msg: str) -> None:
        if not quiet:
            print(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {msg}", file=sys.stderr, flush=True)
    try:
        w = build_watcher(app, sink or [], every, log)
    except JobmedicError as exc:
        fail(exc, 2)
    stop = threading.Event()
    if not once:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: (log("stopping after this poll"), stop.set()))
    start = sacct_time_to_epoch(since, int(time.time())) if since else None
    failures = w.run(every, once=once, since=start, stop=stop)
    if once and failures:
        raise typer.Exit(1)


alerts_app = typer.Typer(help="Alerts raised by `jobmedic watch` (in your scope).",
                         invoke_without_command=True)


@alerts_app.callback()
def alerts(
    ctx: typer.Context,
    state_: str | None = typer.Option(None, "--state", help="open, acked or resolved."),
    limit: int = typer.Option(50, "--limit", min=1, max=10_000, help="At most this many."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """List alerts, newest first."""
    if ctx.invoked_subcommand:
        return
    app = state(ctx)
    rows = app.store.live.list_alerts(app.scope, state_, limit)
    if as_json:
        typer.echo(json.dumps(rows, indent=2, default=str))
        return
    if not rows:
        typer.echo("no alerts")
        return
    for a in rows:
        seen = time.strftime("%Y-%m-%d %H:%M", time.gmtime(a["last_seen"]))
        typer.echo(f"#{a['id']} [{a['state']}] {a['severity']} {a['rule']} {a['subject']} "
                   f"(last {seen}Z): {a['text']}")
        if a.get("evidence"):
            typer.echo(f"    evidence: {a['evidence']}")
        if a.get("fix"):
            typer.echo(f"    fix: {a['fix']}")


@alerts_app.command("ack")
def ack(ctx: typer.Context, alert_id: int = typer.Argument(..., help="The alert's id."),
        by: str | None = typer.Option(None, "--by", help="Who acknowledges it.")) -> None:
    """Acknowledge an alert (it stays listed, and resolves when its condition clears)."""
    from jobmedic.live.alerting import ack as do_ack

    app = state(ctx)
    a = do_ack(app.store, alert_id, app.scope, by)
    if a is None:
        fail(f"no alert #{alert_id} in your scope", 1, "list them with `jobmedic alerts`")
    typer.echo(f"#{a['id']} {a['state']}: {a['rule']} {a['subject']}")


def register(app: typer.Typer) -> None:
    app.command("watch")(watch)
    app.add_typer(alerts_app, name="alerts")
