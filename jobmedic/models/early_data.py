"""The inputs of the early-warning model: submit-time features plus telemetry windows up to a
prediction time (job start + `horizon_s`).

A job's window is one value a minute per metric (`METRICS`, the mean over its devices and
nodes) for the minutes `FIRST_MIN` .. `LAST_MIN` around its start (rounded down to the minute,
as the Philly windows are); a minute with no sample is NaN. Leakage guard: a sample later than
the prediction time is never read (`window` drops it), so the features at "start + 3 min" see
nothing after that moment, and "start" sees only the minutes before the job began.

`WINDOW_STATS` summarise each metric before and after the start (mean, std, min, max, last,
change, share missing) for the boosted model; `seq_of(X)` gives the (jobs, minutes, metrics)
array for the sequence models.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from jobmedic.models.features import FEATURES, build_features, is_ended

METRICS = ("gpu_util_pct", "cpu_util_pct", "mem_used_pct")
FIRST_MIN, LAST_MIN = -10, 3
MINUTES = list(range(FIRST_MIN, LAST_MIN + 1))
SEQ_COLS = [f"seq_{m}_{k}" for k in MINUTES for m in METRICS]  # minute-major
_STATS = ("mean", "std", "min", "max", "last", "change", "missing")
WINDOW_STATS = [f"{p}_{m}_{s}" for p in ("pre", "post") for m in METRICS for s in _STATS]
HORIZONS = {"start": 0, "start+3min": 180}


def window(samples: Iterable[Sequence[Any]], job_index: dict[tuple[str, str], int],
           starts: np.ndarray, horizon_s: float) -> np.ndarray:
    """(jobs, minutes, metrics) of per-minute means from samples (cluster, job_id, metric,
    device, t, value); samples after start + horizon_s, outside the minutes, not finite or of
    another metric are ignored."""
    n, tm, nm = len(starts), len(MINUTES), len(METRICS)
    tot = np.zeros((n, tm, nm))
    cnt = np.zeros((n, tm, nm))
    mi = {m: i for i, m in enumerate(METRICS)}
    rows = [(job_index.get((c, j), -1), mi.get(m, -1), t, v) for c, j, m, _d, t, v in samples]
    if rows:
        arr = np.array(rows, dtype=np.float64)
        ji, mk, t, v = arr[:, 0].astype(int), arr[:, 1].astype(int), arr[:, 2], arr[:, 3]
        ok = (ji >= 0) & (mk >= 0) & np.isfinite(v) & np.isfinite(t)
        ji, mk, t, v = ji[ok], mk[ok], t[ok], v[ok]
        st = starts[ji]
        base = np.floor(st / 60) * 60
        k = np.floor((t - base) / 60).astype(int) - FIRST_MIN
        keep = np.isfinite(st) & (t <= st + horizon_s) & (k >= 0) & (k < tm)
        np.add.at(tot, (ji[keep], k[keep], mk[keep]), v[keep])
        np.add.at(cnt, (ji[keep], k[keep], mk[keep]), 1)
    with np.errstate(invalid="ignore"):
        return np.where(cnt > 0, tot / np.maximum(cnt, 1), np.nan)


def window_stats(seq: np.ndarray) -> pd.DataFrame:
    """WINDOW_STATS of a (jobs, minutes, metrics) array (NaN where a part has no sample)."""
    return pd.DataFrame(window_stats_array(seq), columns=WINDOW_STATS)


def window_stats_array(seq: np.ndarray) -> np.ndarray:
    """WINDOW_STATS as a (jobs, len(WINDOW_STATS)) array, columns in WINDOW_STATS order: what
    `window_stats` holds, without building a frame (scoring one running job)."""
    split = -FIRST_MIN + 1  # minutes FIRST_MIN..0 are "pre" (minute 0 holds the start)
    parts = []
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for x in (seq[:, :split], seq[:, split:]):  # (jobs, minutes, metrics), all metrics at once
            have = np.isfinite(x)
            idx = np.arange(x.shape[1])[None, :, None]
            last_i = np.where(have, idx, -1).max(axis=1)
            first_i = np.where(have, idx, 10**6).min(axis=1)
            last = np.where(last_i >= 0, np.take_along_axis(
                x, np.maximum(last_i, 0)[:, None, :], axis=1)[:, 0], np.nan)
            first = np.where(first_i < 10**6, np.take_along_axis(
                x, np.minimum(first_i, x.shape[1] - 1)[:, None, :], axis=1)[:, 0], np.nan)
            st = np.stack([np.nanmean(x, axis=1), np.nanstd(x, axis=1), np.nanmin(x, axis=1),
                           np.nanmax(x, axis=1), last, last - first, 1.0 - have.mean(axis=1)],
                          axis=2)  # (jobs, metrics, _STATS)
            parts.append(st.reshape(len(x), -1))
    return np.concatenate(parts, axis=1)


def seq_of(X: pd.DataFrame | np.ndarray) -> np.ndarray:
    """The (jobs, minutes, metrics) array from the SEQ_COLS of a frame or its values."""
    a = X[SEQ_COLS].to_numpy(dtype=np.float64) if isinstance(X, pd.DataFrame) else X
    return a.reshape(len(a), len(MINUTES), len(METRICS))


def frame(store: Any, scope: Sequence[str] | None = None, horizon_s: float = 180,
          df: pd.DataFrame | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(jobs, features) for the early kind: FEATURES + WINDOW_STATS + SEQ_COLS per job, and
    jobs["has_telemetry"] (a window sample before the prediction time)."""
    from jobmedic.knowledge.errors import ModelError

    df = store.jobs_frame(scope) if df is None else df
    if df.empty:
        raise ModelError("the store holds no jobs to learn from",
                         "ingest jobs with telemetry first, e.g. `jobmedic ingest philly DIR`")
    df = df.reset_index(drop=True)
    X = build_features(df).reset_index(drop=True)
    index = {(c, str(j)): i for i, (c, j) in enumerate(zip(df["cluster"], df["job_id"]))}
    starts = df["start_time"].to_numpy(dtype=np.float64)
    samples = store.telemetry.jobs_samples(metrics=METRICS, scope=scope)
    seq = window(samples, index, starts, horizon_s)
    X = pd.concat([X, window_stats(seq),
                   pd.DataFrame(seq.reshape(len(df), -1), columns=SEQ_COLS)], axis=1)
    df["has_telemetry"] = np.isfinite(seq).any(axis=(1, 2)) & is_ended(df)
    df["prediction_time"] = starts + horizon_s
    return df, X


TAB_COLS = FEATURES + WINDOW_STATS
