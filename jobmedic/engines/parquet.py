"""`jobmedic export parquet DIR`: jobs, job_nodes, failure_events and telemetry as Parquet,
hive-partitioned by cluster and month, readable from Dask, Spark, DuckDB and pandas alike.

Layout: DIR/<table>/cluster=<name>/month=<YYYY-MM>/part-0.parquet (the `cluster` column is the
partition key, not stored in the file; an empty cluster is `__HIVE_DEFAULT_PARTITION__`).
DIR/_schema.json names the schema version and each table's columns and Arrow types; every file
carries the version in its key-value metadata (`jobmedic.schema_version`). DIR/_manifest.json
holds per partition its row count, max rowid and change marker: a re-export rewrites only the
partitions whose marker moved (new months, new or changed rows) and removes vanished ones.
Files are written to a temporary name and renamed, and the manifest is written last.
"""
from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote

from jobmedic.knowledge.errors import InputError
from jobmedic.knowledge.export_queries import TABLES

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

    from jobmedic.knowledge.store import Store

SCHEMA_VERSION = 2  # 2: jobs carry `_rowid` (the store's row order)
META_KEY = b"jobmedic.schema_version"
NULL_CLUSTER = "__HIVE_DEFAULT_PARTITION__"
#: Rows read from the store and written per row group: a partition (a cluster's month, which
#: can hold millions of jobs) is never held in memory at once.
CHUNK = 100_000
_ARROW = {"INTEGER": "int64", "REAL": "float64", "TEXT": "string"}


def _pa():
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:  # pragma: no cover - the optional extra
        raise InputError("the Parquet export needs pyarrow",
                         "install the optional extra: pip install 'jobmedic[dask]'") from None
    return pa, pq


def table_schema(store: Store, table: str) -> list[tuple[str, str]]:
    """(column, Arrow type name) of a table as exported (without the `cluster` key)."""
    rows = store.conn.execute(f"PRAGMA table_info({table})").fetchall() if table in TABLES else []
    cols = [(r[1], _ARROW.get((r[2] or "").upper(), "string")) for r in rows if r[1] != "cluster"]
    return [*cols, ("_rowid", "int64")] if table == "jobs" and cols else cols


def _arrow_schema(cols: list[tuple[str, str]]) -> pa.Schema:
    pa, _ = _pa()
    types = {"int64": pa.int64(), "float64": pa.float64(), "string": pa.string()}
    return pa.schema([(c, types[t]) for c, t in cols],
                     metadata={META_KEY: str(SCHEMA_VERSION).encode()})


def part_dir(root: Path, table: str, cluster: str, month: str) -> Path:
    c = quote(cluster, safe="") if cluster else NULL_CLUSTER
    return root / table / f"cluster={c}" / f"month={month}"


def _frame_to_table(df: pd.DataFrame, cols: list[tuple[str, str]]) -> pa.Table:
    import pandas as pd

    pa, _ = _pa()
    data = {}
    for c, t in cols:
        s = df[c]
        if t == "string":
            data[c] = s.astype(object).where(s.notna(), None).map(
                lambda v: v if v is None or isinstance(v, str) else str(v))
        elif t == "int64":
            data[c] = pd.to_numeric(s, errors="coerce").astype("Int64")
        else:
            data[c] = pd.to_numeric(s, errors="coerce").astype("float64")
    return pa.Table.from_pandas(pd.DataFrame(data), schema=_arrow_schema(cols), preserve_index=False)


def read_manifest(root: Path) -> dict[str, Any]:
    """The export's manifest ({} for a new folder); InputError for another schema version."""
    check_version(root)
    p = root / "_manifest.json"
    return json.loads(p.read_text()) if p.exists() else {}


def check_version(root: Path) -> dict[str, Any] | None:
    """The `_schema.json` of an export folder (None when it has none yet); InputError when it
    was written with a schema version this jobmedic does not read."""
    p = Path(root) / "_schema.json"
    if not p.exists():
        return None
    try:
        doc = json.loads(p.read_text())
        v = doc["schema_version"]
    except (ValueError, KeyError, TypeError):
        raise InputError(f"{p} is not a jobmedic export schema",
                         "export again into an empty folder") from None
    if v != SCHEMA_VERSION:
        raise InputError(f"the Parquet export in {root} has schema version {v}; this jobmedic "
                         f"reads version {SCHEMA_VERSION}",
                         "re-export it with this jobmedic into an empty folder "
                         "(`jobmedic export parquet DIR`)")
    return doc


def export(store: Store, root: str | Path, tables: tuple[str, ...] = tuple(TABLES)) -> dict[str, Any]:
    """Write (or bring up to date) the Parquet export in `root`; returns what was done."""
    _, pq = _pa()
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    manifest = read_manifest(root)
    schema = {"schema_version": SCHEMA_VERSION, "partitioning": ["cluster", "month"],
              "month": "UTC YYYY-MM of submit_time (else end_time) for jobs and job_nodes, "
                       "timestamp for failure_events, t for telemetry; 'unknown' without one",
              "tables": {t: dict(table_schema(store, t)) for t in tables}}
    old_schema = check_version(root)
    old_tables = (old_schema or {}).get("tables") or {}
    changed = {t for t in tables if old_schema is not None and old_tables.get(t) != schema["tables"][t]}
    schema["tables"] = old_tables | schema["tables"]  # tables not exported now keep their entry
    t0 = time.perf_counter()
    done = {"written": 0, "kept": 0, "removed": 0, "rows_written": 0}
    for table in tables:
        cols = table_schema(store, table)
        before = {} if table in changed else manifest.get(table, {})
        now: dict[str, Any] = {}
        for p in store.export.export_partitions(table):
            key = f"{p['cluster']}/{p['month']}"
            now[key] = p
            if before.get(key) == p and part_dir(root, table, p["cluster"], p["month"]).exists():
                done["kept"] += 1
                continue
            d = part_dir(root, table, p["cluster"], p["month"])
            d.mkdir(parents=True, exist_ok=True)
            tmp = d / f".part-0.parquet.{os.getpid()}.tmp"
            with pq.ParquetWriter(tmp, _arrow_schema(cols)) as w:  # row groups of CHUNK rows
                for df in store.export.export_chunks(table, p["cluster"], p["month"], CHUNK):
                    w.write_table(_frame_to_table(df, cols))
                    done["rows_written"] += len(df)
            tmp.replace(d / "part-0.parquet")
            done["written"] += 1
        for key in set(before) - set(now):
            c, m = key.rsplit("/", 1)
            shutil.rmtree(part_dir(root, table, c, m), ignore_errors=True)
            done["removed"] += 1
        manifest[table] = now
    (root / "_schema.json").write_text(json.dumps(schema, indent=2))
    tmp = root / "_manifest.json.tmp"
    tmp.write_text(json.dumps(manifest, indent=1))
    tmp.replace(root / "_manifest.json")
    return done | {"seconds": round(time.perf_counter() - t0, 2), "dir": str(root)}


def files_of(root: str | Path, table: str) -> list[Path]:
    """The Parquet files of one exported table, each checked for the schema version."""
    _, pq = _pa()
    root = Path(root)
    if check_version(root) is None:
        raise InputError(f"{root} holds no jobmedic Parquet export (no _schema.json)",
                         "write one with `jobmedic export parquet DIR`")
    out = sorted((root / table).glob("cluster=*/month=*/*.parquet"))
    for f in out:
        md = pq.read_schema(f).metadata or {}
        v = md.get(META_KEY, b"").decode() or "none"
        if v != str(SCHEMA_VERSION):
            raise InputError(f"{f} was written with schema version {v}; this jobmedic reads "
                             f"version {SCHEMA_VERSION}",
                             "re-export the folder with this jobmedic (`jobmedic export parquet DIR`)")
    return out


def read_table(root: str | Path, table: str) -> pd.DataFrame:
    """One exported table as pandas, with its `cluster` column restored (version-checked)."""
    import pandas as pd

    _, pq = _pa()
    parts = []
    for f in files_of(root, table):
        df = pq.read_table(f).to_pandas()
        c = f.parent.parent.name.split("=", 1)[1]
        df.insert(0, "cluster", None if c == NULL_CLUSTER else unquote(c))
        parts.append(df)
    if not parts:
        return pd.DataFrame(columns=["cluster"])
    return pd.concat(parts, ignore_index=True)
