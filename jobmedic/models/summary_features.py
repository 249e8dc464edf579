"""Submit-time features of many specs at once from the per-entity summary
(knowledge/entity_summary.py), vectorised over the batch: one indexed read of the summary rows
of the entities the batch names, then numpy columns. Used when the summary is exact for every
spec (each submitted at or after its watermark, no job ended between the watermark and the
latest submit); otherwise the caller computes the as-of features from the jobs
(`features.build_features`). The values equal `build_features` at the same moments
(tests/models/test_entity_summary.py)."""
from __future__ import annotations

import sqlite3
import weakref
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from jobmedic.knowledge import entity_summary
from jobmedic.knowledge.feature_queries import ENTITY_KINDS
from jobmedic.models.features import FEATURES, _request_block, with_shape

if TYPE_CHECKING:
    from jobmedic.knowledge.store import Store


def exact_for(store: Store, submit: np.ndarray) -> bool:
    """Whether the summary gives the history of specs submitted at `submit` (epoch s)."""
    if not len(submit) or not np.isfinite(submit).all():
        return False
    w = entity_summary.watermark(store)
    return w is not None and float(submit.min()) >= w and entity_summary.fresh_at(store, float(submit.max()))


def kind_columns(rows: pd.DataFrame, qt: np.ndarray) -> dict[str, np.ndarray]:
    """The STATS of one entity kind, given each query's summary row (NaN row: no history)."""
    def col(c: str) -> np.ndarray:
        return rows[c].to_numpy(dtype="float64")

    n = np.nan_to_num(col("n"))
    k = np.nan_to_num(col("recent_n"))
    bits = np.nan_to_num(col("recent_bits")).astype(np.int64)
    has = n > 0
    nan = np.full(len(rows), np.nan)
    last_rt, prev_rt = col("last_rt"), np.where(k > 1, col("prev_rt"), np.nan)
    both = np.vstack([last_rt, prev_rt])
    cnt = (~np.isnan(both)).sum(axis=0)
    n_rt = np.nan_to_num(col("n_rt"))
    with np.errstate(invalid="ignore", divide="ignore"):
        return {
            "n": n, "fail_rate": np.where(has, np.nan_to_num(col("fails")) / np.maximum(n, 1), nan),
            "recent_n": k, "recent_fails": np.bitwise_count(bits).astype("float64"),
            "last_fail": np.where(has, col("last_fail"), nan),
            "since_last_s": np.where(has, qt - col("last_end"), nan),
            "mean_logrt": np.where(n_rt > 0, col("sum_logrt") / np.maximum(n_rt, 1), nan),
            "last_rt": np.where(has, last_rt, nan),
            "last2_rt": np.where(cnt > 0, np.nansum(both, axis=0) / np.maximum(cnt, 1), nan),
            "max_rss": np.where(has, col("max_rss"), nan),
            "last_rss": np.where(has, col("last_rss"), nan),
        }


def summary_features(store: Store, q: pd.DataFrame) -> pd.DataFrame | None:
    """The feature matrix (columns FEATURES) of specs `q` (job-frame columns and submit_time)
    from the summary, or None when it is not exact for them."""
    qt = q["submit_time"].to_numpy(dtype="float64")
    if not exact_for(store, qt):
        return None
    given = q
    q = with_shape(q)
    cols = _request_block(q)
    read: dict[str, pd.DataFrame] = {}
    for kind in ENTITY_KINDS:
        codes, keys = entity_codes(q[kind])
        table = _read(store, kind, keys)
        read[kind] = table
        pos = table.index.get_indexer(keys)
        at = np.where(codes >= 0, pos[np.clip(codes, 0, None)] if len(keys) else -1, -1)  # -1:
        # no entity, or none in the summary: the appended all-NaN row
        rows = pd.DataFrame({c: np.append(table[c].to_numpy(dtype="float64"), np.nan)[at]
                             for c in table.columns if c in STAT_COLUMNS})
        for s, v in kind_columns(rows, qt).items():
            cols[f"{kind}_{s}"] = v
    _LAST[:] = [weakref.ref(given), entity_summary.watermark(store), read]
    return pd.DataFrame(cols, index=q.index)[FEATURES]


#: The summary columns kind_columns reads.
STAT_COLUMNS = ("n", "fails", "recent_n", "recent_bits", "last_fail", "last_end", "n_rt",
                "sum_logrt", "last_rt", "prev_rt", "max_rss", "last_rss")
#: The rows the last summary_features call read (weakly keyed by its specs frame, with the
#: summary's watermark): the batch's runtime block (models/summary_recent.py) reuses them.
_LAST: list[Any] = [None, None, {}]


def _read(store: Store, kind: str, keys: list[str]) -> pd.DataFrame:
    """The summary rows of `kind` for `keys`, with the recent runs where the summary keeps them."""
    if kind in entity_summary.RECENT_RUN_KINDS:
        try:
            return entity_summary.frame(store, kind, keys, entity_summary.ALL_COLUMNS)
        except sqlite3.OperationalError:  # a summary from before the recent runs
            pass
    return entity_summary.frame(store, kind, keys)


def last_read(store: Store, q: pd.DataFrame, kind: str) -> pd.DataFrame | None:
    """The rows of `kind` that summary_features read for this very specs frame `q`, if the
    summary has not moved since."""
    ref, w, read = _LAST
    if ref is None or ref() is not q or w != entity_summary.watermark(store):
        return None
    return read.get(kind)


def entity_codes(values: pd.Series) -> tuple[np.ndarray, list[str]]:
    """(code per row, -1 for none; the distinct values as summary keys) of one entity column
    (the keys are str() of the values, as the summary stores them)."""
    v = values.astype(object)
    codes, uniques = pd.factorize(v.where(v.notna(), None), use_na_sentinel=True)
    keys = [str(u) for u in uniques]
    if len(set(keys)) < len(keys):  # distinct values with one str() (1 and "1"): merged
        codes, uniq = pd.factorize(np.array(keys, dtype=object)[codes[codes >= 0]])
        full = np.full(len(v), -1, dtype=np.int64)
        full[np.flatnonzero(v.notna().to_numpy())] = codes
        return full, [str(u) for u in uniq]
    return codes, keys
