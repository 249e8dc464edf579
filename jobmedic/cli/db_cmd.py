"""`jobmedic db ...`: where the store is and what it holds."""
from __future__ import annotations

import json

import typer

from jobmedic.cli.context import state
from jobmedic.core.timeutil import iso

app = typer.Typer(help="Inspect the knowledge store.", no_args_is_help=True)


@app.command("info")
def info(ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="Print as JSON.")) -> None:
    """Where the store is, its schema version, row counts and time range per cluster and source."""
    from jobmedic.knowledge.store import SCHEMA_VERSION  # on use: --help does not load the store

    st = state(ctx)
    store = st.store
    ranges = store.time_ranges(st.settings.allowed_projects)
    data = {
        "path": store.path, "schema_version": store.schema_version,
        "code_schema_version": SCHEMA_VERSION, "size_bytes": store.file_size_bytes(),
        "counts": store.table_counts(),
        "ranges": [{**r, "first": iso(r["first"]), "last": iso(r["last"])} for r in ranges],
    }
    if as_json:
        typer.echo(json.dumps(data, indent=2))
        return
    typer.echo(f"store:   {data['path']}")
    typer.echo(f"schema:  version {data['schema_version']}")
    if data["size_bytes"] is not None:
        typer.echo(f"size:    {data['size_bytes'] / 1e6:,.1f} MB")
    typer.echo("rows:")
    for k, v in data["counts"].items():
        typer.echo(f"  {k:<18} {v:>12,}")
    if data["ranges"]:
        typer.echo("time range per cluster and source:")
        for r in data["ranges"]:
            n = r.get("jobs", r.get("events"))
            kind = "jobs" if "jobs" in r else "events"
            typer.echo(f"  {r['cluster']:<12} {r['source']:<12} {n:>10,} {kind:<6} "
                       f"{r['first']} .. {r['last']}")


@app.command("rejects")
def rejects(ctx: typer.Context, limit: int = typer.Option(20, "--limit", min=1, max=10_000,
                                                          help="How many, newest first."),
            as_json: bool = typer.Option(False, "--json", help="Print as JSON.")) -> None:
    """Input lines that could not be ingested, with file, line number and reason."""
    rows = state(ctx).store.recent_rejects(limit)
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        typer.echo("no rejected input")
    for r in rows:
        typer.echo(f"{r['source']} {r['file']}:{r['line']}: {r['reason']}")
