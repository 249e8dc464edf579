"""The jobmedic command line: a thin layer over the library (ingest, db, actions, ...).

`main()` builds the click group from the Typer app and adds one command per action,
generated from the TOOLS registry.
"""
from __future__ import annotations

from typing import Optional

import typer

from jobmedic.cli import actions_cmd, db_cmd, ingest_cmd, models_cmd
from jobmedic.cli.context import AppState

app = typer.Typer(name="jobmedic", no_args_is_help=True, add_completion=False,
                  help="jobmedic: understand compute-cluster job failures (Slurm, Kubernetes, Run:AI).")


@app.callback()
def _global(
    ctx: typer.Context,
    db: Optional[str] = typer.Option(None, "--db", help="Store path (default: JOBMEDIC_DB or the user data dir)."),
    config: Optional[str] = typer.Option(None, "--config", help="Extra YAML configuration file."),
    as_of: Optional[str] = typer.Option(None, "--as-of", help="Treat this time as now (ISO or epoch)."),
    scope: Optional[str] = typer.Option(None, "--scope", help="Only these projects (comma-separated)."),
    cluster: Optional[str] = typer.Option(None, "--cluster-name", help="Default cluster name."),
) -> None:
    ctx.obj = AppState(db=db, config=config, as_of=as_of, scope=scope, cluster=cluster)
    ctx.call_on_close(ctx.obj.close)


app.command("ingest")(ingest_cmd.ingest)
sync = typer.Typer(help="Pull accounting data from a live scheduler.", no_args_is_help=True)
sync.command("slurm")(ingest_cmd.sync_slurm)
app.add_typer(sync, name="sync")
app.add_typer(db_cmd.app, name="db")


actions_cmd.register(app)
from jobmedic.cli import ask_cmd  # noqa: E402

ask_cmd.register(app)
from jobmedic.cli import learn_cmd  # noqa: E402

learn_cmd.register(app)
models_cmd.register(app)
from jobmedic.cli import surfaces_cmd  # noqa: E402

surfaces_cmd.register(app)


def build():
    """The click command tree of the whole CLI (for tests and doc generation)."""
    return typer.main.get_command(app)


def main() -> None:
    app(prog_name="jobmedic")
