"""Storage of the GNN's serving state (models/gnn_serving.py): one row holding, for the gnn
artifact version it was computed with, the per-entity neighbour terms as a NumPy .npz payload
(plain arrays, read with allow_pickle=False), and the watermark it is exact below; and the
reads its incremental refresh needs (models/gnn_refresh.py): the jobs that ended or were
submitted at or after the watermark, by rowid."""
from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from jobmedic.knowledge.store import Store

#: The payload comes last: reading the header never walks the blob's overflow pages.
DDL = """CREATE TABLE IF NOT EXISTS gnn_state (
    id INTEGER PRIMARY KEY CHECK (id = 1), version TEXT NOT NULL, watermark REAL NOT NULL,
    built_at INTEGER NOT NULL, payload BLOB NOT NULL)"""


def save(store: Store, version: str, watermark: float, arrays: dict[str, np.ndarray],
         built_at: int) -> int:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    data = buf.getvalue()
    with store.transaction() as conn:
        conn.execute(DDL)
        conn.execute("INSERT OR REPLACE INTO gnn_state (id, version, watermark, built_at, payload) "
                     "VALUES (1, ?, ?, ?, ?)", (version, float(watermark), int(built_at), data))
    return len(data)


def header(store: Store) -> tuple[str, float] | None:
    """(version, watermark) of the stored state, or None."""
    try:
        row = store.conn.execute("SELECT version, watermark FROM gnn_state WHERE id = 1").fetchone()
    except Exception:  # noqa: BLE001 - sqlite3.OperationalError: no such table
        return None
    return None if row is None else (str(row[0]), float(row[1]))


def load(store: Store) -> dict[str, Any] | None:
    try:
        row = store.conn.execute("SELECT version, watermark, payload FROM gnn_state WHERE id = 1").fetchone()
    except Exception:  # noqa: BLE001 - sqlite3.OperationalError: no such table
        return None
    if row is None:
        return None
    with np.load(io.BytesIO(row[2]), allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    return {"version": str(row[0]), "watermark": float(row[1]), "arrays": arrays}


def drop(store: Store) -> None:
    """Remove the state (a change below its watermark made it inexact)."""
    with store.transaction() as conn:
        conn.execute(DDL)
        conn.execute("DELETE FROM gnn_state")


def rowids(store: Store) -> np.ndarray:
    """Every job's rowid, in rowid order (the order of `Store.jobs_frame()`)."""
    return np.fromiter((r[0] for r in store.conn.execute("SELECT rowid FROM jobs ORDER BY rowid")),
                       dtype=np.int64)


def jobs_since(store: Store, watermark: float) -> Any:
    """The jobs (rowid + the model frame's columns, typed as `Store.jobs_frame`) that ended or
    were submitted at or after `watermark`, in rowid order: what a load added since the state
    was built (two indexed range reads)."""
    from jobmedic.knowledge.feature_queries import FRAME_COLUMNS, frame_of

    cur = store.conn.execute(f"SELECT rowid, {', '.join(FRAME_COLUMNS)} FROM jobs WHERE "
                             "end_time >= ? OR submit_time >= ? ORDER BY rowid",
                             (float(watermark), float(watermark)))
    df = frame_of(cur.fetchall(), lead=("rowid",))
    df["rowid"] = df["rowid"].astype(np.int64)
    return df


def ended_between(store: Store, a: float, b: float) -> bool:
    """Whether any job has an end time in [a, b) (ended or not: the cautious answer)."""
    return store.conn.execute("SELECT 1 FROM jobs WHERE end_time >= ? AND end_time < ? LIMIT 1",
                              (a, b)).fetchone() is not None
