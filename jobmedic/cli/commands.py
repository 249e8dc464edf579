"""The Typer app of the command line (`jobmedic.cli.app`): the global options, the ingest,
sync and db commands, `act` and one command per action (generated from the TOOLS registry when
used), ask, learn, models, watch, report and export. jobmedic.cli re-exports `app` and `build`
from here on first use.
"""
from __future__ import annotations

import typer

from jobmedic.cli import actions_cmd, db_cmd, ingest_cmd, models_cmd, report_cmd, watch_cmd
from jobmedic.cli.context import CliState, JobmedicGroup

app = typer.Typer(name="jobmedic", no_args_is_help=True, add_completion=False,
                  cls=JobmedicGroup, pretty_exceptions_enable=False,
                  help="jobmedic: understand compute-cluster job failures (Slurm, Kubernetes, Run:AI).")


@app.callback()
def _global(
    ctx: typer.Context,
    db: str | None = typer.Option(None, "--db", help="Store path (default: JOBMEDIC_DB or the user data dir); its directory must exist."),
    config: str | None = typer.Option(None, "--config", help="YAML configuration file over the defaults and the user file (must exist)."),
    as_of: str | None = typer.Option(None, "--as-of", help="Treat this time as now (ISO or epoch)."),
    scope: str | None = typer.Option(None, "--scope", help="Only these projects (comma-separated)."),
    cluster: str | None = typer.Option(None, "--cluster-name", help="Default cluster name."),
    debug: bool = typer.Option(False, "--debug", help="Show the Python traceback of a fault instead of a one-line error."),
) -> None:
    ctx.obj = CliState(db=db, config=config, as_of=as_of, scope=scope, cluster=cluster,
                       debug=debug)
    ctx.call_on_close(ctx.obj.close)


app.command("ingest")(ingest_cmd.ingest)
sync = typer.Typer(help="Pull accounting data from a live scheduler.", no_args_is_help=True)
sync.command("slurm")(ingest_cmd.sync_slurm)
app.add_typer(sync, name="sync")
app.add_typer(db_cmd.app, name="db")


actions_cmd.register(app)
from jobmedic.cli import ask_cmd

ask_cmd.register(app)
from jobmedic.cli import learn_cmd

learn_cmd.register(app)
models_cmd.register(app)
watch_cmd.register(app)
report_cmd.register(app)
from jobmedic.cli import export_cmd

export_cmd.register(app)


def build():
    """The click command tree of these commands (jobmedic.main.build adds serve, chat and
    demo, which start the other surfaces)."""
    return typer.main.get_command(app)
