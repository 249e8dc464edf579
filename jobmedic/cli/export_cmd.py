"""`jobmedic export parquet DIR`: the store's jobs, job_nodes, failure events and telemetry as
Parquet partitioned by cluster and month (incremental; see jobmedic/engines/parquet.py)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from jobmedic.cli.context import fail, state
from jobmedic.knowledge.errors import JobmedicError

app = typer.Typer(help="Export the store for bulk processing (Dask, Spark, DuckDB, pandas).",
                  no_args_is_help=True)


@app.command("parquet")
def parquet(
    ctx: typer.Context,
    folder: Annotated[Path, typer.Argument(help="Export folder (created; re-running updates only changed partitions).")],
) -> None:
    """Write jobs, job_nodes, failure_events and telemetry as Parquet, hive-partitioned by
    cluster and month, with _schema.json (versioned) and _manifest.json."""
    from jobmedic.engines import parquet as pq

    st = state(ctx)
    try:
        res = pq.export(st.store, folder)
    except JobmedicError as exc:
        fail(exc, 2)
    typer.echo(json.dumps(res))


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="export")
