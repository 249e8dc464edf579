"""Shared plumbing of the real-data evaluations: a store filled once by the project's own
ingest readers (cached under bench/out/data), and the models dir beside it."""
from __future__ import annotations

import time
from pathlib import Path

from jobmedic.ingest import READERS, IngestContext, run_ingest
from jobmedic.knowledge.store import Store
from jobmedic.knowledge.taxonomy import Taxonomy
from jobmedic.knowledge.templates import Templates
from jobmedic.settings import config_path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data"
OUT = Path(__file__).resolve().parent / "out" / "data"


def store_for(name: str, reader: str, path: Path, cluster: str | None = None) -> Store:
    """Open bench/out/data/<name>.db, ingesting `path` with `reader` the first time."""
    OUT.mkdir(parents=True, exist_ok=True)
    db = OUT / f"{name}.db"
    fresh = not db.exists()
    s = Store(db)
    if fresh or s.table_counts()["jobs"] == 0:
        t = time.perf_counter()
        ctx = IngestContext(Taxonomy.from_yaml(config_path("taxonomy.yaml")),
                            Templates(s.load_templates()), cluster=cluster or "default")
        run_ingest(s, READERS[reader], str(path), ctx)
        print(f"ingested {path.name} in {time.perf_counter() - t:.1f}s")
    return s


def models_dir(name: str) -> str:
    return str(OUT / f"models-{name}")
