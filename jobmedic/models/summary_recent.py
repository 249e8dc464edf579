"""The runtime model's recent-runtime block (models/runtime_features.py) of many specs at once
from the per-entity summary's recent runs (knowledge/entity_summary.py: the last `RECENT_K`
runtimes and time limits of each user, job name and request shape), for batch scoring of specs
submitted now: one indexed read per entity kind instead of one lookup of the jobs per distinct
(entity, submit time). Used only when the summary is exact for every spec (as for the history
features, models/summary_features.py); the values equal `runtime_features.recent_block` at the
same moments (tests/models/test_entity_summary.py), since both reduce the same (jobs x
RECENT_K) matrices with the same `_reduce`."""
from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from jobmedic.knowledge import entity_summary
from jobmedic.models import runtime_features
from jobmedic.models.features import with_shape
from jobmedic.models.summary_features import entity_codes, exact_for, last_read

if TYPE_CHECKING:
    from jobmedic.knowledge.store import Store


def recent_block(store: Store, queries: pd.DataFrame, scope: Sequence[str] | None = None
                 ) -> np.ndarray | None:
    """RT_FEATURES of specs `queries` (job-frame columns and submit_time) from the summary, or
    None when it cannot give them exactly (a scope, a summary not exact at the submit times,
    one without the recent runs, an entity kind it does not keep)."""
    if scope is not None or not set(runtime_features.KINDS) <= set(entity_summary.RECENT_RUN_KINDS):
        return None
    qt = queries["submit_time"].to_numpy(dtype="float64")
    if not exact_for(store, qt):
        return None
    q = with_shape(queries)
    cols: dict[str, np.ndarray] = {}
    for kind in runtime_features.KINDS:
        codes, keys = entity_codes(q[kind])
        codes = np.where((q[kind] == "").to_numpy(), -1, codes)  # no entity, as in recent_specs
        table = last_read(store, queries, kind)  # read by summary_features for these specs
        if table is None or not set(entity_summary.RECENT_RUNS) <= set(table.columns):
            try:
                table = entity_summary.frame(store, kind, keys, ("value", *entity_summary.RECENT_RUNS))
            except sqlite3.OperationalError:  # a summary from before the recent runs
                return None
        L, R = runs(table, codes, keys)
        cols |= runtime_features._reduce(kind, L, R)
    return runtime_features._finish(cols, q["timelimit_s"].to_numpy(dtype="float64"))


def runs(table: pd.DataFrame, codes: np.ndarray, keys: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(L, R) of each query row (runtime_features' log runtimes and shares, newest first) from
    the summary rows `table` (indexed by value) of the entities `keys` the rows' `codes` name."""
    pos = table.index.get_indexer(keys)
    at = np.where(codes >= 0, pos[np.clip(codes, 0, None)] if len(keys) else -1, -1)
    nan = np.full((1, runtime_features.RECENT_K), np.nan)  # at -1: no entity, no summary row
    rt = np.vstack([entity_summary.runs_matrix(table["recent_rt"].to_numpy()), nan])
    tl = np.vstack([entity_summary.runs_matrix(table["recent_tl"].to_numpy()), nan])
    lrt = np.log1p(np.maximum(rt, 0))
    return lrt[at], runtime_features._ratio(rt, tl)[at]
