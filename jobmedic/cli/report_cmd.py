"""`jobmedic report`: a weekly (or --lookback-days) report as self-contained HTML or Markdown,
rendered from the envelopes of the stats, analyze and remediate actions and the open alerts."""
from __future__ import annotations

from pathlib import Path

import typer

from jobmedic.cli.context import fail, state


def gather(app, lookback_days: float, project: str | None) -> dict:
    """The envelopes the report is made of (run as the actions, in the caller's scope)."""
    from jobmedic.tools import run_action

    ctx = app.tool_context()
    base = {"lookback_days": lookback_days, **({"project": project} if project else {})}
    stats = run_action({"action": "stats", **base, "trend": True, "top": 10,
                        "group_by": ["failure_type", "user", "project"]}, ctx).model_dump()
    more = run_action({"action": "stats", **base, "trend": False, "top": 10,
                       "group_by": ["image", "node"]}, ctx).model_dump()
    analyze = run_action({"action": "analyze", **base}, ctx).model_dump()
    for env, name in ((stats, "stats"), (more, "stats"), (analyze, "analyze")):
        if env["status"] == "error":
            raise typer.BadParameter(f"{name}: {env['error']['message']}")
    types = [r["key"] for g in stats.get("data", {}).get("groups", [])
             if g["by"] == "failure_type" for r in g["rows"]][:3]
    rem = [run_action({"action": "remediate", "failure_type": t,
                       **({"project": project} if project else {})}, ctx).model_dump()
           for t in types]
    alerts = app.store.live.list_alerts(ctx.scope, "open", 50)
    if project:
        alerts = [a for a in alerts if a.get("project") == project]
    return {"stats": stats, "stats_more": more, "analyze": analyze, "remediate": [r for r in rem
                                                              if r["status"] == "ok"],
            "alerts": alerts, "scope": ctx.scope}


def report(
    ctx: typer.Context,
    lookback_days: float = typer.Option(7, "--lookback-days", min=0.01, max=3650,
                                        help="Days the report covers (ending now or --as-of)."),
    project: str | None = typer.Option(None, "--project", help="Only this project."),
    fmt: str = typer.Option("html", "--format", help="html or md."),
    out: str | None = typer.Option(None, "--out", help="Write here (default: stdout)."),
) -> None:
    """A failure report: rate over time, failures by type, hotspots with their intervals, top
    failing users / projects / images, fixes that worked, open alerts; HTML with inline SVG
    charts (no network needed to view it) or Markdown."""
    from jobmedic.reports.html import render_html, render_markdown

    if fmt not in ("html", "md"):
        fail(f"unknown --format {fmt!r}", 2, "use html or md")
    env = gather(state(ctx), lookback_days, project)
    text = render_html(env) if fmt == "html" else render_markdown(env)
    if out:
        try:
            Path(out).write_text(text, encoding="utf-8")
        except OSError as exc:
            fail(f"cannot write {out}: {exc.strerror or exc}", 1)
        typer.echo(f"report written to {out}", err=True)
    else:
        typer.echo(text)


def register(app: typer.Typer) -> None:
    app.command("report")(report)
