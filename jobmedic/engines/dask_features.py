"""Submit-time features on Dask, from the same code as the single-machine path.

`build_features` (models/features.py) is, column by column, either row-local (the request
block: cpus, memory, hour, ...) or a per-entity as-of statistic of one entity kind (user,
name, project, image, queue, qos, shape) that reads only jobs of the SAME entity value. So for
each kind the frame is shuffled by that kind's value (every job of an entity lands in one
partition), and `_kind_block` (the very function the single-machine path calls) runs on each
partition; its time origin and scale are global constants computed once, so the keys it
searches are those of the single-machine run. The per-kind blocks are joined back on a row id.
Nothing here is global across entities, so no cross-partition statistic needs a second pass.

Equality with `build_features` is exact for counts, last values and maxima; the mean log
runtime is a difference of prefix sums, which can differ in the last bits (≤1e-12 relative)
because the prefix runs over a partition instead of the whole frame.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from jobmedic.knowledge.feature_queries import ENTITY_KINDS
from jobmedic.models.features import (
    FEATURES,
    STATS,
    _kind_block,
    _request_block,
    is_ended,
    time_frame,
    with_shape,
)

_ROW = "_row"



def _kind_part(part: pd.DataFrame, kind: str, tmin: float, scale: float) -> pd.DataFrame:
    """One partition (all jobs of its entities; `_q` marks query rows): the kind's stats."""
    q = part[part["_q"]]
    hist = part[part["_h"]]
    hist = hist[is_ended(hist)]
    cols = {f"{kind}_{s}": np.asarray(v, dtype="float64")
            for s, v in _kind_block(kind, hist, q, tmin, scale).items()}
    return pd.DataFrame(cols, index=q[_ROW].to_numpy())[[f"{kind}_{s}" for s in STATS]]


def _meta(kind: str) -> pd.DataFrame:
    return pd.DataFrame({f"{kind}_{s}": pd.Series(dtype="float64") for s in STATS})


NEEDED = ["submit_time", "end_time", "state", "elapsed_s", "max_rss_mb"]


def build_features_dask(history: pd.DataFrame, queries: pd.DataFrame | None = None, *,
                        client: Any, npartitions: int = 4,
                        shuffle_method: str | None = None) -> pd.DataFrame:
    """`build_features(history, queries)` computed on the Dask cluster of `client`
    (`shuffle_method`: Dask's; default "tasks" below 2M rows, "p2p" above)."""
    import dask.dataframe as dd

    history = with_shape(history)
    q = history if queries is None else with_shape(queries)
    tmin, scale = time_frame(history[is_ended(history)], q)
    out = pd.DataFrame(_request_block(q), index=pd.RangeIndex(len(q)))
    blocks = []
    for kind in ENTITY_KINDS:
        # history rows and query rows of this kind (one frame when the queries are the history)
        h = history[[kind] + NEEDED].assign(_h=True, _q=queries is None,
                                            **{_ROW: np.arange(len(history))})
        parts = [h]
        if queries is not None:
            qq = q[[kind, "submit_time"]].reindex(columns=[kind] + NEEDED)
            parts.append(qq.assign(_h=False, _q=True, **{_ROW: np.arange(len(q))}))
        both = pd.concat(parts, ignore_index=True)
        both["_key"] = both[kind].astype(object).where(both[kind].notna(), "\0none")
        ddf = dd.from_pandas(both, npartitions=npartitions, sort=False)
        method = shuffle_method or ("tasks" if len(both) < 2_000_000 else "p2p")
        ddf = ddf.shuffle("_key", npartitions=npartitions, shuffle_method=method)
        blocks.append(ddf.map_partitions(_kind_part, kind, tmin, scale, meta=_meta(kind)))
    computed = client.compute(blocks, sync=True)
    for b in computed:
        out = out.join(b.sort_index())
    out.index = q.index
    return out[FEATURES]
