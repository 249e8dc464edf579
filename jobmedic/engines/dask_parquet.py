"""Training data that flows from the Parquet export to the workers, not through the driver.

`jobs(root)` is the export's jobs table as a Dask DataFrame read ON THE WORKERS (one partition
per exported file, the same columns and dtypes as `Store.jobs_frame`, plus `_rowid`, the
store's row order). `features(jobs)` computes `models/features.build_features` on it without
gathering anything: the request block is row-local; each entity kind's rows (with a value) are
shuffled by that value, `_kind_block` (the single-machine function) runs per partition on rows
sorted by `_rowid` (so ties fall as in the store's order), rows without a value get the
"no history" statistics in place, and every block is shuffled back by `_rowid` into the same
number of partitions as the jobs, so the blocks line up partition by partition and are joined
there. The only things computed on the driver are two numbers (the time origin and scale).

With `recent=True` (the runtime model) the same per-kind pass also gives the recent-runtime
block of models/runtime_features.py for its kinds (user, name, shape): `_last_k` and `_reduce`,
the single-machine functions, run on the same partitions (all jobs of an entity, in `_rowid`
order), and the implied runtimes (`_finish`: the job's own limit x the share) are row-local,
computed after the join. Columns RT_FEATURES are then added after FEATURES. The shape pass
also gives the runtime point's repeat (runtime_point.REPEAT: the runtime of the shape's last
COMPLETED job that ended before the submit; `runtime_point.repeat_asof`, the rule of
`repeat_bulk`), a column after them that the booster does not read.

The result is a Dask DataFrame partitioned by `_rowid` hash: the jobs' columns plus FEATURES
(and RT_FEATURES); `dask_train.py` splits, labels and fits on it.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote

import numpy as np
import pandas as pd

from jobmedic.engines import parquet
from jobmedic.knowledge.feature_queries import ENTITY_KINDS, FRAME_COLUMNS
from jobmedic.models import runtime_features as rf
from jobmedic.models import runtime_point
from jobmedic.models.features import (
    FEATURES,
    STATS,
    _kind_block,
    _request_block,
    is_ended,
    time_bounds,
    with_shape,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    import dask.dataframe as dd

ROW = "_rowid"
TEXT = ("cluster", "job_id", "name", "user", "project", "queue", "qos", "image", "state", "source")
COLUMNS = [*FRAME_COLUMNS, ROW]
NEEDED = ["submit_time", "end_time", "state", "elapsed_s", "max_rss_mb"]


def _typed(df: pd.DataFrame) -> pd.DataFrame:
    """`df` with jobs_frame's dtypes (object text, float64 numbers) and an int64 row id."""
    out = pd.DataFrame(index=pd.RangeIndex(len(df)))
    for c in COLUMNS:
        v = df[c] if c in df else pd.Series([None] * len(df))
        v = v.reset_index(drop=True)
        if c == ROW:
            out[c] = v.astype("int64")
        elif c in TEXT:
            out[c] = v.astype(object).where(v.notna(), None)
        else:
            out[c] = pd.to_numeric(v, errors="coerce").astype("float64")
    return out


def read_file(path: str, scope: Sequence[str] | None = None) -> pd.DataFrame:
    """One exported jobs file as jobs_frame rows (its cluster from the hive folder name)."""
    import pyarrow.parquet as pq

    df = pq.read_table(path).to_pandas()
    c = Path(path).parent.parent.name.split("=", 1)[1]
    df["cluster"] = None if c == parquet.NULL_CLUSTER else unquote(c)
    if scope is not None:
        df = df[df["project"].isin(list(scope))]
    return _typed(df)


def jobs(root: str | Path, scope: Sequence[str] | None = None) -> dd.DataFrame:
    """The export's jobs as a Dask DataFrame read on the workers (schema version checked here,
    on the driver, from the files' footers)."""
    import dask.dataframe as dd

    files = [str(f) for f in parquet.files_of(root, "jobs")]
    if not files:
        from jobmedic.knowledge.errors import ModelError

        raise ModelError("the store holds no jobs to learn from",
                         "ingest accounting data first, e.g. `jobmedic ingest slurm sacct.txt`")
    return dd.from_map(read_file, files, scope=None if scope is None else list(scope),
                       meta=_typed(pd.DataFrame(columns=COLUMNS)), enforce_metadata=False)


# -- per-partition functions (run on the workers) ----------------------------------------------
def n_rows(root: str | Path) -> int:
    """The export's job count, from the files' footers."""
    import pyarrow.parquet as pq

    return sum(pq.read_metadata(f).num_rows for f in parquet.files_of(root, "jobs"))


def _base(part: pd.DataFrame) -> pd.DataFrame:
    part = with_shape(part)
    req = _request_block(part)  # its first five are the job's own (float64) request columns
    return part.assign(hour=req["hour"], dow=req["dow"])


def lo_hi(t: np.ndarray) -> pd.DataFrame:
    """One row: the least and greatest finite value of `t` (inf / -inf when there is none)."""
    t = t[np.isfinite(t)]
    return pd.DataFrame({"lo": [t.min() if len(t) else np.inf],
                         "hi": [t.max() if len(t) else -np.inf]})


def _bounds(part: pd.DataFrame) -> pd.DataFrame:
    ended = part["end_time"].to_numpy(dtype="float64")[is_ended(part)]
    return lo_hi(np.concatenate([ended, part["submit_time"].to_numpy(dtype="float64")]))


def _recent_cols(kind: str, recent: bool) -> list[str]:
    """The recent-runtime columns the kind's pass adds (runtime_features: user, name, shape)."""
    return [f"{kind}_{s}" for s in rf.STATS] if recent and kind in rf.KINDS else []


def _point_cols(kind: str, recent: bool) -> list[str]:
    """The runtime point's repeat (runtime_point.REPEAT), which the shape pass adds."""
    return list(runtime_point.REPEAT) if recent and kind == "shape" else []


def _stat_meta(kind: str, recent: bool = False) -> pd.DataFrame:
    return pd.DataFrame({ROW: pd.Series(dtype="int64")}
                        | {f"{kind}_{s}": pd.Series(dtype="float64") for s in STATS}
                        | {c: pd.Series(dtype="float64")
                           for c in [*_recent_cols(kind, recent), *_point_cols(kind, recent)]})


def _kind_rows(part: pd.DataFrame, kind: str, tmin: float, scale: float,
               recent: bool = False) -> pd.DataFrame:
    """All jobs of this partition's entities (of one kind): their as-of statistics (and, with
    `recent`, the kind's recent-runtime stats: runtime_features' `_last_k` and `_reduce`)."""
    part = part.sort_values(ROW, kind="stable").reset_index(drop=True)
    hist = part[is_ended(part)]
    cols = _kind_block(kind, hist, part, tmin, scale)
    out = pd.DataFrame({ROW: part[ROW].to_numpy()})
    for s in STATS:
        out[f"{kind}_{s}"] = np.asarray(cols[s], dtype="float64")
    if _recent_cols(kind, recent):
        for c, v in rf._reduce(kind, *rf._last_k(kind, hist, part, tmin, scale)).items():
            out[c] = np.asarray(v, dtype="float64")
    for c in _point_cols(kind, recent):  # the shape's last completed job: repeat_bulk's rule
        out[c] = runtime_point.repeat_asof(runtime_point.completed(part), part, tmin, scale)
    return out


def _no_entity(part: pd.DataFrame, kind: str, recent: bool = False) -> pd.DataFrame:
    """Jobs without a value of this kind: no history (what _kind_block gives them; the
    recent-runtime stats are NaN, what _reduce gives a row with no runs)."""
    n = len(part)
    out = pd.DataFrame({ROW: part[ROW].to_numpy()})
    for s in STATS:
        out[f"{kind}_{s}"] = np.zeros(n) if s in ("n", "recent_n", "recent_fails") else np.nan
    for c in [*_recent_cols(kind, recent), *_point_cols(kind, recent)]:
        out[c] = np.nan
    return out


def _recent_finish(part: pd.DataFrame) -> pd.DataFrame:
    """RT_FEATURES of the joined rows: runtime_features' `_finish` (row-local) on the kinds'
    recent stats and each job's own time limit."""
    cols = {c: part[c].to_numpy(dtype="float64")
            for k in rf.KINDS for c in _recent_cols(k, True)}
    m = rf._finish(cols, part["timelimit_s"].to_numpy(dtype="float64"))
    extra = pd.DataFrame(m, columns=rf.RT_FEATURES, index=part.index)
    return pd.concat([part.drop(columns=[c for c in rf.RT_FEATURES if c in part]), extra],
                     axis=1)


def _join(base: pd.DataFrame, *blocks: pd.DataFrame) -> pd.DataFrame:
    """One partition of the jobs and the same partition of every kind's block (all hashed by
    `_rowid` into as many partitions): the same rows, joined on the row id."""
    parts = [base.set_index(ROW)] + [b.set_index(ROW) for b in blocks]
    if any(len(p) != len(parts[0]) for p in parts):
        raise RuntimeError("feature blocks are not co-partitioned with the jobs")
    out = pd.concat(parts, axis=1, join="outer")
    if len(out) != len(parts[0]):
        raise RuntimeError("feature blocks are not co-partitioned with the jobs")
    return out.sort_index().copy().reset_index()  # copy: one block per dtype again


def features(jobs_dd: dd.DataFrame, npartitions: int | None = None,
             shuffle_method: str | None = None, recent: bool = False) -> dd.DataFrame:
    """The jobs (all columns) with FEATURES (and with `recent` the runtime model's
    RT_FEATURES), partitioned by `_rowid` hash, lazily (`shuffle_method`: Dask's; "tasks" for
    small frames, "p2p" for large ones)."""
    base = jobs_dd.map_partitions(_base, meta=_base(jobs_dd._meta))
    n = npartitions or max(base.npartitions, 2)
    how = {"shuffle_method": shuffle_method} if shuffle_method else {}
    b = base.map_partitions(_bounds, meta=_bounds(base._meta)).compute()
    lo, hi = float(b["lo"].min()), float(b["hi"].max())
    tmin, scale = time_bounds(lo, hi)
    blocks = []
    for kind in ENTITY_KINDS:
        rec = bool(_recent_cols(kind, recent))
        sel = base[[kind, ROW, *NEEDED, *(["timelimit_s"] if rec else [])]]
        has = sel.map_partitions(lambda p, k=kind: p[p[k].notna()], meta=sel._meta)
        none = sel.map_partitions(lambda p, k=kind: p[p[k].isna()], meta=sel._meta)
        a = has.shuffle(kind, npartitions=n, **how).map_partitions(
            _kind_rows, kind, tmin, scale, rec, meta=_stat_meta(kind, rec))
        z = none.map_partitions(_no_entity, kind, rec, meta=_stat_meta(kind, rec))
        blocks.append(dd_concat([a, z]).shuffle(ROW, npartitions=n, **how))
    by_row = base.shuffle(ROW, npartitions=n, **how)
    import dask.dataframe as dd

    meta = _join(by_row._meta, *[x._meta for x in blocks])
    out = dd.map_partitions(_join, by_row, *blocks, align_dataframes=False, meta=meta)
    return out.map_partitions(_recent_finish, meta=_recent_finish(meta)) if recent else out


def dd_concat(parts: list[dd.DataFrame]) -> dd.DataFrame:
    import dask.dataframe as dd

    return dd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]


def to_local(df: pd.DataFrame, extra: Sequence[str] = ()) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A gathered slice as the (jobs, features) Frame of the single-machine code (positional);
    `extra`: a kind's EXTRA columns computed on the workers, kept in the features frame (the
    quantile models then read them from there instead of recomputing them from the slice)."""
    df = df.reset_index(drop=True)
    return df[list(FRAME_COLUMNS)], df[[*FEATURES, *extra]]

