"""`jobmedic ingest SOURCE PATH|-` and `jobmedic sync slurm`: stream real cluster data into the store."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import typer

from jobmedic.cli.context import fail, state
from jobmedic.ingest import READERS
from jobmedic.knowledge.errors import JobmedicError


def _progress_fn(enabled: bool):
    if not enabled:
        return None, None
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

    prog = Progress(TextColumn("[bold]{task.description}"), BarColumn(), DownloadColumn(),
                    TextColumn("{task.fields[rows]:,} rows  {task.fields[rate]:,.0f} rows/s"),
                    TimeRemainingColumn(), transient=True)
    task = prog.add_task("ingest", total=None, rows=0, rate=0.0)
    import time
    t0 = time.perf_counter()

    def update(rows: int, done: int, total: int | None) -> None:
        rate = rows / max(time.perf_counter() - t0, 1e-6)
        prog.update(task, completed=done, total=total, rows=rows, rate=rate)

    return prog, update


def ingest(
    ctx: typer.Context,
    source: str = typer.Argument(..., help=f"One of: {', '.join(READERS)}"),
    path: str = typer.Argument(..., help="File to read (plain, .gz, .xz, .bz2), or - for stdin."),
    fields: str | None = typer.Option(None, "--fields", help="Column names of header-less "
                                         "input, comma-separated (sacct --noheader)."),
    cluster: str | None = typer.Option(None, "--cluster", help="Cluster name for these jobs."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
    progress: bool | None = typer.Option(None, "--progress/--no-progress",
                                            help="Progress bar (default: on a terminal)."),
    learn: bool = typer.Option(True, "--learn/--no-learn", help="Infer fix attempts from "
                               "resubmissions afterwards (skip for bulk trace loads; run "
                               "`jobmedic learn` later)."),
) -> None:
    """Ingest job accounting or failure events from a file into the knowledge store."""
    from jobmedic.ingest import IngestContext, run_ingest  # the loader: not on every start
    from jobmedic.knowledge.templates import Templates

    st = state(ctx)
    reader = READERS.get(source)
    if reader is None:
        fail(f"unknown source {source!r}", 2, f"known sources: {', '.join(READERS)}")
    store = st.store
    ictx = IngestContext(st.taxonomy, Templates(store.load_templates()),
                         cluster=cluster or st.settings.cluster,
                         batch_size=st.settings.ingest.batch_size,
                         fields=fields.split(",") if fields else None,
                         parse_ahead=st.settings.ingest.parse_ahead)
    show = sys.stderr.isatty() if progress is None else progress
    prog, update = _progress_fn(show and not as_json)
    ahead = _inference_ahead(st) if learn else None
    loaded = ahead.start if ahead is not None else None
    try:
        try:
            if prog:
                with prog:
                    summary = run_ingest(store, reader, path, ictx, update, loaded)
            else:
                summary = run_ingest(store, reader, path, ictx, on_loaded=loaded)
        except JobmedicError as exc:
            fail(exc, 2)
        except KeyboardInterrupt:
            fail("interrupted: batches already written are complete; re-run to finish "
                 "(re-ingesting adds nothing twice)", 130)
        if learn:
            _after_ingest(st, summary, ahead)
    finally:
        if ahead is not None:
            ahead.cancel()  # a failed load's, or one after_ingest left unused
    if as_json:
        typer.echo(json.dumps(summary.to_dict(), indent=2))
    else:
        typer.echo(f"{summary.source} {summary.file}: read {summary.read:,}, inserted "
                   f"{summary.inserted:,}, updated {summary.updated:,}, failure events "
                   f"{summary.events:,}, rejected {summary.rejected:,} in {summary.seconds:.1f}s "
                   f"({summary.rate:,.0f}/s)")
        if summary.rejected:
            typer.echo("  rejected lines are in the rejects table: `jobmedic db rejects`", err=True)
        if summary.error:
            typer.echo(f"  {summary.error}", err=True)
    if summary.status not in ("ok", "partial"):  # failed, truncated: nothing or not all read
        raise typer.Exit(1)


def _inference_ahead(st):
    """The after-load inference's read half, started by run_ingest beside the load's end
    (jobmedic.app.after_ingest_ahead)."""
    from jobmedic.app import after_ingest_ahead

    return after_ingest_ahead(st)


def _after_ingest(st, summary, ahead=None) -> None:
    """The after-load steps (jobmedic.app.after_ingest: outcome inference), when rows changed."""
    from jobmedic.app import after_ingest

    if summary.inserted + summary.updated:
        msg = after_ingest(st, ahead=ahead).message()
        if msg:
            typer.echo(msg, err=True)


def sync_slurm(
    ctx: typer.Context,
    since: str = typer.Option("now-1days", "--since", help="sacct --starttime (e.g. 2024-05-01 or now-7days)."),
    until: str | None = typer.Option(None, "--until", help="sacct --endtime."),
    all_users: bool = typer.Option(True, "--all-users/--me", help="sacct --allusers."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Run `sacct` (found on PATH) and ingest its output."""
    exe = shutil.which("sacct")
    if exe is None:
        fail("sacct is not on PATH", 2, "run this on a Slurm login node, or ingest a saved file "
             "with `jobmedic ingest slurm FILE`")
    from jobmedic.live.poller import SACCT_FIELDS  # the one list of columns (watch asks the same)

    cmd = [exe, "--parsable2", "--duplicates", f"--format={SACCT_FIELDS}", f"--starttime={since}"]
    if until:
        cmd.append(f"--endtime={until}")
    if all_users:
        cmd.append("--allusers")
    with tempfile.NamedTemporaryFile("w+b", suffix=".sacct", delete=False) as out:
        proc = subprocess.run(cmd, stdout=out, stderr=subprocess.PIPE, check=False)
    try:
        if proc.returncode != 0:
            fail(f"sacct exited with {proc.returncode}: {proc.stderr.decode(errors='replace').strip()[:300]}", 1)
        ingest(ctx, "slurm", out.name, None, None, as_json, False)
        from jobmedic.live.evidence import after_sync  # the failed jobs' own output

        after_sync(state(ctx).store, state(ctx).taxonomy, since, int(time.time()),
                   None if as_json else lambda m: typer.echo(m, err=True))
    finally:
        os.unlink(out.name)
