"""`jobmedic demo`: simulate a cluster, write it out as real sacct text and kubectl JSON, ingest
those files with the real readers, train the models, and run a scripted conversation with the
assistant, printing each question and answer. Ends with how to do the same on a real cluster.

The demo builds its own store (and, beside it, the store's model folder) through the set-up
layer (jobmedic.app), so the commands it prints at the end find the same data and models.
A step that fails is reported with what is missing; the demo never substitutes made-up output.
"""
from __future__ import annotations

import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markdown import Markdown
from rich.panel import Panel
from rich.rule import Rule

from jobmedic.core.timeutil import parse_time_arg
from jobmedic.demo.cluster import simulate
from jobmedic.demo.kubectl_json import simulate_pods, write_pods
from jobmedic.demo.sacct_text import CLUSTER, write_sacct
from jobmedic.demo.script import questions
from jobmedic.ingest import READERS, IngestContext, run_ingest
from jobmedic.knowledge.store import Store
from jobmedic.knowledge.taxonomy import Taxonomy
from jobmedic.knowledge.templates import Templates

DAY = 86400


def default_anchor() -> int:
    """Midnight UTC today: the same demo all day, close enough to now for 'last 7 days'."""
    now = int(datetime.now(UTC).timestamp())
    return now - now % DAY


def iso(t: int) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S")


def build_inputs(out_dir: Path, anchor: int, days: int, seed: int) -> dict[str, Any]:
    """Simulate both clusters and write sacct.txt and pods.json into `out_dir`."""
    cluster = simulate(anchor, days=days, seed=seed)
    lines = write_sacct(cluster.jobs, out_dir / "sacct.txt")
    pods = write_pods(simulate_pods(anchor, days=days, seed=seed), out_dir / "pods.json")
    return {"cluster": cluster, "sacct_lines": lines, "pods": pods}


def ingest_inputs(store: Store, taxonomy: Taxonomy, out_dir: Path, console: Console) -> list[str]:
    """Ingest the written files through READERS; returns what could not be ingested and why."""
    missing: list[str] = []
    for source, file, cluster in (("slurm", "sacct.txt", CLUSTER), ("kubernetes", "pods.json", "k8s")):
        reader = READERS.get(source)
        if reader is None:
            missing.append(f"the {source} reader (jobmedic/ingest) is not in this build: "
                           f"{file} was written but not ingested")
            console.print(f"  [yellow]skipped[/] {file}: no {source} reader in this build")
            continue
        ctx = IngestContext(taxonomy, Templates(store.load_templates()), cluster=cluster)
        s = run_ingest(store, reader, str(out_dir / file), ctx)
        console.print(f"  {source:<10} {file:<10} read {s.read:,}, inserted {s.inserted:,}, "
                      f"failure events {s.events:,}, rejected {s.rejected:,} in {s.seconds:.1f}s")
    return missing


def run_demo(taxonomy: Taxonomy, directory: str | None = None, seed: int = 7, days: int = 21,
             anchor: str | None = None, train: bool = True, settings: Any = None,
             console: Console | None = None) -> dict[str, Any]:
    """Run the whole demo; returns what happened (for tests): paths, counts, answers, gaps."""
    from jobmedic.app import App
    from jobmedic.demo.steps import after_ingest, ask_all, train_models

    console = console or Console()
    t0 = time.perf_counter()
    out_dir = Path(directory or tempfile.mkdtemp(prefix="jobmedic-demo-")).expanduser()
    out_dir.mkdir(parents=True, exist_ok=True)
    end = parse_time_arg(anchor, "anchor") if anchor else default_anchor()
    db = out_dir / "jobmedic.db"
    for suffix in ("", "-wal", "-shm"):  # a fresh store each run
        Path(str(db) + suffix).unlink(missing_ok=True)
    demo_settings = _demo_settings(settings, db, end)

    console.print(Rule("jobmedic demo"))
    console.print(f"Simulating {days} days of a Slurm cluster ({CLUSTER}) and a Kubernetes GPU "
                  f"cluster (k8s), ending {iso(end)} UTC, seed {seed}, in {out_dir}")
    made = build_inputs(out_dir, end, days, seed)
    truth = made["cluster"].truth
    console.print(f"  wrote sacct.txt ({made['sacct_lines']:,} lines, "
                  f"{len(made['cluster'].jobs):,} jobs) and pods.json ({made['pods']:,} pods)")
    console.print("Ingesting with the real readers:")
    missing: list[str] = []
    with Store(db) as store:
        app = App(demo_settings, store=store, taxonomy=taxonomy)
        missing += ingest_inputs(store, taxonomy, out_dir, console)
        missing += after_ingest(app, store, console)
        if train:
            missing += train_models(demo_settings, store, console)
        console.print(Rule("A short conversation with the assistant"))
        answers, gaps = ask_all(app, store, questions(truth), console)
        missing += gaps
    _closing(console, db, end, missing, time.perf_counter() - t0)
    return {"dir": str(out_dir), "db": str(db), "truth": truth, "answers": answers,
            "missing": missing, "seconds": time.perf_counter() - t0}


def _demo_settings(settings: Any, db: Path, end: int) -> Any:
    """The caller's settings for the demo store; models go to the store's own folder
    (`<db>.models`, the default), where `jobmedic --db <db> ...` looks for them."""
    from jobmedic.settings import ModelSettings, load_settings

    base = settings if settings is not None else load_settings()
    return base.model_copy(update={
        "db": str(db), "as_of": iso(end), "allowed_projects": None,
        "models": ModelSettings(dir="", holdout_fraction=base.models.holdout_fraction)})


def _closing(console: Console, db: Path, end: int, missing: list[str], seconds: float) -> None:
    console.print(Rule("Your turn"))
    if missing:
        console.print("[yellow]Not shown because this build lacks it:[/]")
        for m in missing:
            console.print(f"  - {m}")
    text = f"""\
The demo store is **{db}** (simulated history ends {iso(end)} UTC).

Explore it:

    jobmedic --db {db} --as-of {iso(end)[:10]} chat
    jobmedic --db {db} --as-of {iso(end)[:10]} analyze --lookback-days 7
    jobmedic --db {db} models
    jobmedic --db {db} --as-of {iso(end)[:10]} predict --project ml-team --req-gpus 4

Point jobmedic at your own cluster:

    jobmedic sync slurm --since now-30days           # on a Slurm login node (runs sacct)
    kubectl get pods -A -o json > pods.json
    jobmedic ingest kubernetes pods.json
    jobmedic chat                                    # or: jobmedic serve, for the HTTP API
"""
    console.print(Panel(Markdown(text), title=f"done in {seconds:.0f} s", expand=False))
