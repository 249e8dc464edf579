"""Model commands: `jobmedic train KIND`, `jobmedic evaluate KIND --from T`, `jobmedic models`,
and `jobmedic predict-batch FILE` (score a CSV / JSON Lines file of job specs)."""
from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from jobmedic.cli.context import fail, state
from jobmedic.core.timeutil import parse_time_arg
from jobmedic.knowledge.errors import JobmedicError


class Kind(str, Enum):
    failure = "failure"
    runtime = "runtime"
    memory = "memory"
    gnn = "gnn"
    early = "early"


class Engine(str, Enum):
    local = "local"
    dask = "dask"


class Fmt(str, Enum):
    csv = "csv"
    jsonl = "jsonl"


def _time(v: str | None, name: str) -> int | None:
    if v is None:
        return None
    try:
        return parse_time_arg(v, name)
    except ValueError as exc:
        fail(str(exc), 2)
    return None


def _params(items: list[str] | None) -> dict:
    out: dict = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            fail(f"--param {item!r} is not KEY=VALUE", 2, "e.g. --param num_boost_round=500")
        try:
            out[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            out[key.strip()] = value
    return out


def _models_dir(st) -> str:
    """The store's model folder; an in-memory store has none."""
    d = st.models_dir
    if d is None:
        fail("an in-memory store has no model folder", 2,
             "use a store file (--db FILE; models go to FILE.models/) or set models.dir")
    return str(d)


def _frame(st, kind: Kind):
    """The early kind reads telemetry windows beside the submit-time features."""
    if kind != Kind.early:
        return None
    from jobmedic.models import early_data

    return early_data.frame(st.store, st.settings.allowed_projects)


def _window_start(window: str | None, until: str | None, st, kind: Kind) -> int | None:
    """`train --window SPAN`: the submit time the trailing window starts at (None: all history)."""
    if window is None:
        return None
    from jobmedic.models import runtime_walk

    if kind in (Kind.gnn, Kind.early):
        fail(f"--window is not supported for the {kind.value} model", 2, "train it on all history")
    span = runtime_walk.span(window, "--window")
    end = _time(until, "until")
    if end is None:
        from jobmedic.models import training

        end = training.default_until(st.store.jobs_frame(st.settings.allowed_projects),
                                     st.settings.models.holdout_fraction)
    return int(end) - span


def _summary(card: dict) -> str:
    return json.dumps(card, indent=2, default=str)


def train(
    ctx: typer.Context,
    kind: Annotated[Kind, typer.Argument(help="Which model: failure, runtime, memory or gnn.")],
    until: str | None = typer.Option(None, "--until", help="Train on jobs submitted and ended before this time (default: all but the held-out recent slice)."),
    tune: bool = typer.Option(False, "--tune", help="Search parameters with Optuna on a time-ordered validation slice before the window's end."),
    trials: int = typer.Option(20, "--trials", min=1, max=1000, help="Optuna trials for --tune."),
    time_budget: float = typer.Option(300, "--time-budget", min=1, help="Seconds allowed for --tune."),
    window: str | None = typer.Option(None, "--window", help="Train only on the jobs submitted in this trailing span before --until, e.g. 60d (default: all history)."),
    recalibrate: bool = typer.Option(False, "--recalibrate", help="runtime / memory: keep the current booster, refit its conformal shifts and retry-budget table on the most recent completed jobs before --until (default: now), save as a new version (run it on a schedule; docs/models.md)."),
    param: Annotated[list[str] | None, typer.Option("--param", help="Model parameter KEY=VALUE (repeatable), e.g. num_boost_round=500, max_depth=8, epochs=60 (gnn).")] = None,
    cluster: Annotated[list[str] | None, typer.Option("--cluster", help="Train only on this cluster's jobs (repeatable).")] = None,
    source: Annotated[list[str] | None, typer.Option("--source", help="Train only on jobs ingested from this source, e.g. slurm, swf, lanl (repeatable).")] = None,
    engine: Annotated[Engine, typer.Option("--engine", help="local (this process) or dask (features and boosting on a Dask cluster; docs/scale.md).")] = Engine.local,
    workers: Annotated[int | None, typer.Option("--workers", min=1, help="--engine dask: start a local Dask cluster of N worker processes (default 2).")] = None,
    scheduler: Annotated[str | None, typer.Option("--scheduler", help="--engine dask: use the running Dask scheduler at this address (tcp://HOST:8786).")] = None,
    slurm_workers: Annotated[int | None, typer.Option("--slurm-workers", min=1, help="--engine dask: start N Dask workers as Slurm jobs (dask-jobqueue).")] = None,
    parquet: Annotated[Path | None, typer.Option("--parquet", help="--engine dask, failure / memory / runtime: the Parquet export the workers read (brought up to date first; default <store>.parquet/ beside the store; on a cluster: a shared filesystem).")] = None,
) -> None:
    """Train a model on the store and save a versioned artifact with its card."""
    from jobmedic.models import training

    st = state(ctx)
    s = st.settings
    if engine == Engine.dask:
        from jobmedic.engines import dask_engine
        try:
            from jobmedic.engines import dask_train

            root = parquet or (None if s.in_memory else s.db_path.with_name(s.db_path.name + ".parquet"))
            with dask_engine.cluster(workers, scheduler, slurm_workers) as client:
                if root is not None and (kind.value in dask_train.KINDS or parquet is not None):
                    card = dask_train.train(st.store, kind.value, _models_dir(st), client, root,
                                            until=_time(until, "until"), scope=s.allowed_projects,
                                            holdout_fraction=s.models.holdout_fraction,
                                            params=_params(param), clusters=cluster, sources=source)
                else:
                    card = dask_engine.train(st.store, kind.value, _models_dir(st), client,
                                             until=_time(until, "until"), scope=s.allowed_projects,
                                             holdout_fraction=s.models.holdout_fraction,
                                             params=_params(param), clusters=cluster, sources=source)
        except JobmedicError as exc:
            fail(exc, 2)
        typer.echo(f"trained {kind.value} model {card['version']} on Dask -> {card['path']}")
        typer.echo(_summary({k: v for k, v in card.items() if k not in ("path",)}))
        return
    if recalibrate:
        try:
            card = training.recalibrate(st.store, kind.value, _models_dir(st), _time(until, "until"),
                                        s.allowed_projects)
        except JobmedicError as exc:
            fail(exc, 2)
        typer.echo(f"recalibrated {kind.value} model -> {card['version']} ({card['recalibrated']})")
        return
    try:
        train_from = _window_start(window, until, st, kind)
        card = training.train(st.store, kind.value, _models_dir(st), _time(until, "until"),
                              s.allowed_projects, tune=tune, frame=_frame(st, kind), trials=trials, time_budget=time_budget,
                              holdout_fraction=s.models.holdout_fraction, params=_params(param),
                              clusters=cluster, sources=source, train_from=train_from)
    except JobmedicError as exc:
        fail(exc, 2)
    typer.echo(f"trained {kind.value} model {card['version']} -> {card['path']}")
    typer.echo(_summary({k: v for k, v in card.items() if k not in ("path",)}))


def evaluate(
    ctx: typer.Context,
    kind: Annotated[Kind, typer.Argument(help="Which model: failure, runtime, memory or gnn.")],
    start: str = typer.Option(..., "--from", help="Evaluate on jobs submitted from this time (ISO or epoch)."),
    end: str | None = typer.Option(None, "--to", help="... and before this time (default: the end of the data)."),
    as_json: bool = typer.Option(False, "--json", help="Print the card as JSON."),
    refit_every: str | None = typer.Option(None, "--refit-every", help="runtime: walk forward instead: retrain (as `train runtime --until STEP`) every SPAN from --from, e.g. 7d, score each period with its own model, and report the metrics over all periods beside the first model alone (the current artifact is not used or changed; docs/models.md)."),
    window: str | None = typer.Option(None, "--window", help="--refit-every: train each refit on the trailing SPAN only (as `train --window`), e.g. 60d."),
    param: Annotated[list[str] | None, typer.Option("--param", help="--refit-every: model parameter KEY=VALUE for the refits (repeatable), e.g. nthread=1.")] = None,
) -> None:
    """Evaluate the current artifact on a time window and print its model card."""
    from jobmedic.models import training
    from jobmedic.models.cards import card_markdown

    st = state(ctx)
    if refit_every is not None or window is not None:
        _walk(st, kind, start, end, refit_every, window, param, as_json)
        return
    try:
        res = training.evaluate(st.store, kind.value, _models_dir(st),
                                _time(start, "from"), _time(end, "to"), st.settings.allowed_projects,
                                frame=_frame(st, kind))
    except JobmedicError as exc:
        fail(exc, 2)
    typer.echo(json.dumps(res, indent=2, default=str) if as_json else card_markdown(res))


def _walk(st, kind: Kind, start: str, end: str | None, every: str | None, window: str | None,
          param: list[str] | None, as_json: bool) -> None:
    """`evaluate runtime --refit-every SPAN [--window SPAN]`: the walk-forward evaluation."""
    from jobmedic.models import runtime_walk

    if kind != Kind.runtime:
        fail(f"--refit-every is for the runtime model, not {kind.value}", 2,
             "jobmedic evaluate runtime --from T --refit-every 7d")
    if every is None:
        fail("--window needs --refit-every", 2, "e.g. --refit-every 7d --window 60d")
    try:
        res = runtime_walk.walk_forward(
            st.store, _time(start, "from"), _time(end, "to"), runtime_walk.span(every, "--refit-every"),
            window=None if window is None else runtime_walk.span(window, "--window"),
            scope=st.settings.allowed_projects, params=_params(param) or None,
            progress=lambda r: typer.echo(f"refit until {r['until']}: fit {r['fit']}, scored "
                                          f"{r['scored']}, {r['cpu_s']} s CPU", err=True))
    except JobmedicError as exc:
        fail(exc, 2)
    typer.echo(json.dumps(res, indent=2, default=str) if as_json
               else "\n".join(runtime_walk.card_lines(res)))


def models(ctx: typer.Context,
           as_json: bool = typer.Option(False, "--json", help="Print the list as JSON.")) -> None:
    """Where this store's model folder is (`<store>.models/` unless models.dir says
    otherwise), and the trained model artifacts in it with their cards."""
    from jobmedic.models import artifacts

    st = state(ctx)
    folder = st.models_dir
    items = artifacts.list_all(folder) if folder is not None else []
    if as_json:
        typer.echo(json.dumps(items, indent=2, default=str))
        return
    typer.echo(f"models folder: {folder if folder is not None else '(none: in-memory store)'}")
    if not items:
        typer.echo("no models yet; train one with `jobmedic train failure`")
        return
    for m in items:
        card = m.get("card") or {}
        typer.echo(f"{'*' if m.get('current') else ' '} {m.get('kind'):8} {m.get('version')}  "
                   f"window {card.get('window', {}).get('train_from')} .. "
                   f"{card.get('window', {}).get('until')}  fit {card.get('counts', {}).get('fit')}  "
                   + (f"on {', '.join((card.get('trained_on') or {}).get('clusters') or {})}  "
                      if (card.get("trained_on") or {}).get("clusters") else "")
                   + f"{m.get('error', '')}")


def predict_batch(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="CSV or JSON Lines file of job specs (columns as in `jobmedic predict`).")],
    out: Annotated[Path | None, typer.Option("--out", help="Write predictions here (default: stdout).")] = None,
    fmt: Annotated[Fmt, typer.Option("--format", help="Output format: csv or jsonl.")] = Fmt.csv,
    engine: Annotated[Engine, typer.Option("--engine", help="local (this process) or dask (features and boosting on a Dask cluster; docs/scale.md).")] = Engine.local,
    workers: Annotated[int | None, typer.Option("--workers", min=1, help="--engine dask: start a local Dask cluster of N worker processes (default 2).")] = None,
    scheduler: Annotated[str | None, typer.Option("--scheduler", help="--engine dask: use the running Dask scheduler at this address (tcp://HOST:8786).")] = None,
    slurm_workers: Annotated[int | None, typer.Option("--slurm-workers", min=1, help="--engine dask: start N Dask workers as Slurm jobs (dask-jobqueue).")] = None,
    retry_budget: Annotated[float | None, typer.Option("--retry-budget", min=0.001, max=0.5, help="Acceptable share of killed runs (default the cluster's, 2 %): adds budget_time_s / budget_mem_mb.")] = None,
) -> None:
    """Score a file of job specs in bulk and write one prediction per row."""
    import pandas as pd

    from jobmedic.models.batch import score

    st = state(ctx)
    try:
        specs = (pd.read_json(file, lines=True) if file.suffix in (".jsonl", ".json")
                 else pd.read_csv(file))
    except (OSError, ValueError) as exc:
        fail(f"cannot read {file}: {exc}", 2, "give a CSV with a header row or a JSON Lines file")
    tc = st.tool_context()
    try:
        budget = retry_budget if retry_budget is not None else tc.retry_budget(None)
        if engine == Engine.dask:
            from jobmedic.engines import dask_engine
            s = st.settings  # past specs: the workers read the export beside the store
            root = None if s.in_memory else s.db_path.with_name(s.db_path.name + ".parquet")
            with dask_engine.cluster(workers, scheduler, slurm_workers) as client:
                res = dask_engine.score(st.store, specs, _models_dir(st), tc.current_time(),
                                        tc.risk_levels, client, tc.scope, retry_budget=budget,
                                        root=root)
        else:
            res = score(st.store, specs, _models_dir(st), tc.current_time(), tc.risk_levels, tc.scope,
                        retry_budget=budget)
    except JobmedicError as exc:
        fail(exc, 2)
    for m in res.attrs.get("missing_models", []):  # columns left out: say which and why
        typer.echo(f"note: no {m['kind']} columns: {m['message']}; {m['hint']}", err=True)
    text = res.to_csv(index=False) if fmt == Fmt.csv else res.to_json(orient="records", lines=True)
    if out:
        out.write_text(text)
        typer.echo(f"wrote {len(res)} predictions to {out}", err=True)
    else:
        typer.echo(text, nl=False)


def register(app: typer.Typer) -> None:
    app.command("train")(train)
    app.command("evaluate")(evaluate)
    app.command("models")(models)
    app.command("predict-batch")(predict_batch)
