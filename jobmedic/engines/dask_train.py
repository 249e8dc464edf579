"""`train failure|memory|runtime --engine dask` fed from the Parquet export: the driver holds only
small things.

The store is first brought up to date in the export (incrementally: only changed partitions;
`engines/parquet.py`), then everything per job happens on the workers: reading the files,
the features (`dask_parquet.features`), the labels, the selection (--cluster/--source) and the
time split, and the boosting (`xgboost.dask` on a DaskDMatrix built from the fit rows where
they lie). The driver gathers: the submit times of the selected jobs when it must find the
default `--until` quantile (8 bytes a job), those of the labelled jobs before `until` to place
the calibration cut exactly where the single-machine path places it (8 bytes a labelled job;
when the slice is capped at `training.CAL_MAX`, only the latest CAL_MAX of them, by a tree
reduction; plus the row ids of the jobs tied at the cut), a few group counts for the card, and the
calibration slice itself (the later `cal_fraction` of the labelled jobs, at most
`training.CAL_MAX` of them, with its features),
on which the single-machine calibration, validation, card and signed artifact code run
unchanged (`models/training.finish`). So the artifact and card are those of the local path,
and `evaluate` / `predict` use them as they are.

The runtime kind trains here too: its recent-runtime inputs (runtime_features.RT_FEATURES)
are computed on the workers with the history features (`dask_parquet.features(recent=True)`)
and gathered with the slice, so `QuantileModel.inputs` reads them from the gathered frame
instead of recomputing them from the slice alone. So is the point's exact repeat
(runtime_point.REPEAT, from the same shape pass; `PointStack.inputs` reads the gathered
column), so `calibrate` fits the point stack that local training fits for the same booster.
Its validation replays a daily conformal recalibration (`runtime.online`) over a pool of the
labelled jobs submitted from the calibration start that ended before the last calibration
submit (`runtime_rolling.pool`); those are gathered with the calibration slice (flag `_pool`: the same jobs, bounded like the slice by
the calibration period), in the store's row order so that ties in end time fall as they do on
one machine. The card's `global_median_s` (the median of the fit labels) comes from the fit
labels' value counts, reduced on the workers (one row per distinct runtime, not per job).
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from jobmedic.engines import dask_parquet as dp
from jobmedic.engines import parquet
from jobmedic.knowledge.errors import InputError, ModelError
from jobmedic.models import boosting, registry, runtime_point, runtime_rolling, training
from jobmedic.models.features import FEATURES

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from jobmedic.knowledge.store import Store

KINDS = ("failure", "memory", "runtime")
_SLICE = "_slice"  # 1: fit, 2: calibration, 0: neither
_POOL = "_pool"  # runtime: in the online recalibration's pool (runtime_rolling.pool)
_NONE = "(none)"


def _pair_key(part: pd.DataFrame) -> pd.Series:
    c = part["cluster"].astype(object).fillna(_NONE).astype(str)
    s = part["source"].astype(object).fillna(_NONE).astype(str)
    return c + "\x1f" + s


def _chosen(part: pd.DataFrame, pairs: list[str] | None) -> np.ndarray:
    return (np.ones(len(part), dtype=bool) if pairs is None
            else _pair_key(part).isin(pairs).to_numpy())


def _labelled(part: pd.DataFrame, labels: Callable, pairs: list[str] | None,
              until: float) -> np.ndarray:
    mask, _ = labels(part)
    sub = part["submit_time"].to_numpy()
    return _chosen(part, pairs) & mask & (sub < until) & (part["end_time"].to_numpy() < until)


def _marked(part: pd.DataFrame, labels: Callable, pairs: list[str] | None, until: float,
            cut_t: float, cut_row: int, pool: tuple[float | None, float] | None = None
            ) -> pd.DataFrame:
    """The partition with its slice (fit / calibration / neither), target `_y` and, given
    `pool` = (since, before), whether runtime_rolling.pool holds the job (`_pool`)."""
    lab = _labelled(part, labels, pairs, until)
    sub = part["submit_time"].to_numpy()
    fit = (sub < cut_t) | ((sub == cut_t) & (part[dp.ROW].to_numpy() < cut_row))
    mask, y = labels(part)
    in_pool = np.zeros(len(part), dtype=bool)
    if pool is not None:
        since, before = pool
        in_pool[runtime_rolling.pool(part, mask, since, before)] = True
    return part.copy().assign(**{_SLICE: np.where(lab, np.where(fit, 1, 2), 0).astype("int8"),
                                 "_y": np.asarray(y, dtype="float64"), _POOL: in_pool})


def _counts(part: pd.DataFrame) -> pd.DataFrame:
    p = part[part[_SLICE] > 0]
    return (pd.DataFrame({"cluster": p["cluster"].astype(object).fillna(_NONE).astype(str),
                          "source": p["source"].astype(object).fillna(_NONE).astype(str),
                          _SLICE: p[_SLICE].to_numpy(), "pos": p["_y"].to_numpy(),
                          "n": 1})
            .groupby(["cluster", "source", _SLICE], as_index=False)[["n", "pos"]].sum())


def composition(counts: pd.DataFrame, binary: bool) -> dict[str, Any]:
    """training.composition from the per (cluster, source, slice) counts."""
    out: dict[str, Any] = {}
    for col in ("cluster", "source"):
        g = counts.groupby(col)[["n", "pos"]].sum()
        per: dict[str, Any] = {}
        for v in sorted(g.index):
            per[v] = {"jobs": int(g.loc[v, "n"])}
            if binary:
                per[v]["positives"] = int(g.loc[v, "pos"])
        out[col + "s"] = per
    if binary:
        s = counts.groupby(_SLICE)[["n", "pos"]].sum()
        out["labels"] = {name: {"positives": int(s["pos"].get(i, 0)),
                                "negatives": int(s["n"].get(i, 0) - s["pos"].get(i, 0))}
                         for name, i in (("fit", 1), ("calibration", 2))}
    return out


def _values(ddf: Any, fn: Callable, *args: Any) -> np.ndarray:
    """One float column computed per partition, gathered (the driver's small things)."""
    s = ddf.map_partitions(fn, *args, meta=pd.Series(dtype="float64")).compute()
    return np.asarray(s, dtype="float64")


def _sub_chosen(part, pairs):
    return part.loc[_chosen(part, pairs), "submit_time"].astype("float64")


def _sub_labelled(part, labels, pairs, until):
    return part.loc[_labelled(part, labels, pairs, until), "submit_time"].astype("float64")


def _n_labelled(part, labels, pairs, until, before=np.inf):
    """How many labelled jobs the partition holds (submitted before `before`)."""
    lab = _labelled(part, labels, pairs, until) & (part["submit_time"].to_numpy() < before)
    return pd.Series([float(lab.sum())])


def _rows_at(part, labels, pairs, until, t):
    lab = _labelled(part, labels, pairs, until) & (part["submit_time"].to_numpy() == t)
    return part.loc[lab, dp.ROW].astype("float64")


def _fit_middle(marked: Any) -> np.ndarray:
    """The middle one or two of the fit labels in sorted order, from their value counts
    reduced on the workers: `np.median` of it is `np.median` of all the fit labels (the mean
    of the two middle values, or the middle one), which the runtime card's global median is."""
    fit_y = marked.map_partitions(lambda p: p.loc[p[_SLICE] == 1, "_y"],
                                  meta=pd.Series(dtype="float64", name="_y"))
    vc = fit_y.value_counts().compute()
    vals = np.asarray(vc.index, dtype="float64")
    order = np.argsort(vals, kind="stable")
    vals, cum = vals[order], np.cumsum(np.asarray(vc, dtype="int64")[order])
    n = int(cum[-1]) if len(cum) else 0
    if not n:
        return np.zeros(0)
    at = [(n - 1) // 2, n // 2] if n % 2 == 0 else [n // 2]
    return vals[np.searchsorted(cum, np.asarray(at), side="right")]


def _pairs(fr: Any, clusters: Sequence[str] | None, sources: Sequence[str] | None
           ) -> list[str] | None:
    """The (cluster, source) keys --cluster/--source select, checked like training.selection."""
    if not clusters and not sources:
        return None
    u = fr[["cluster", "source"]].map_partitions(lambda p: p.drop_duplicates()).compute()
    u = u.drop_duplicates().reset_index(drop=True)
    keep = training.selection(u, clusters, sources)
    return sorted(set(_pair_key(u[keep])))


def train(store: Store, kind: str, models_dir: str, client: Any, root: str | Path, *,
          until: int | None = None, scope: Sequence[str] | None = None,
          holdout_fraction: float = 0.2, cal_fraction: float = 0.2,
          params: dict[str, Any] | None = None, clusters: Sequence[str] | None = None,
          sources: Sequence[str] | None = None, npartitions: int | None = None,
          retries: int = 1, export: bool = True) -> dict[str, Any]:
    """Train `kind` (failure, memory, runtime) from the export in `root` (brought up to date
    from `store` first when `export`); returns the card, with `engine` saying what ran where."""
    import dask

    from jobmedic.engines.dask_engine import dask_trainer

    if kind not in KINDS:
        raise InputError(f"training from the Parquet export covers {', '.join(KINDS)}, not {kind}",
                         f"train {kind} without --engine dask")
    t0 = time.perf_counter()
    stages = _Stages()
    cls = registry.kind(kind)
    extra = list(getattr(cls, "EXTRA", []))
    recent = extra == list(dp.rf.RT_FEATURES)
    if extra and not recent:  # pragma: no cover - a new kind with its own inputs
        raise InputError(f"the {kind} model's extra inputs are not computed on Dask",
                         f"train {kind} without --engine dask")
    exported = parquet.export(store, root, tables=("jobs",)) if export else None
    stages.done("export")
    with dask.config.set({"dataframe.convert-string": False}):
        method = "tasks" if dp.n_rows(root) < 2_000_000 else "p2p"
        fr = client.persist(dp.features(dp.jobs(root, scope), npartitions, method, recent))
        pairs = _pairs(fr, clusters, sources)
        stages.done("features")
        if until is None:
            sub = _values(fr, _sub_chosen, pairs)
            if not len(sub):
                raise ModelError("the store holds no jobs to learn from",
                                 "ingest accounting data first")
            until = training.default_until(pd.DataFrame({"submit_time": sub}), holdout_fraction)
        until = int(until)
        n_lab = int(_values(fr, _n_labelled, cls.labels, pairs, until).sum())
        cut = training.calibration_cut(n_lab, cal_fraction)
        capped = cut > int(n_lab * (1 - cal_fraction))
        if cut < 50 or n_lab - cut < 10:
            raise ModelError(f"too few labelled jobs before {training._iso(until)} to train the "
                             f"{kind} model ({n_lab}; need about 100)",
                             "ingest more history or pass a later --until")
        # the first calibration job's submit time (ties go by row order) and how many labelled
        # jobs come before it; capped, from the CAL_MAX latest submit times (a tree reduction:
        # the driver holds CAL_MAX of them, not one per job)
        labelled = fr.map_partitions(_sub_labelled, cls.labels, pairs, until,
                                     meta=pd.Series(dtype="float64"))
        if capped:
            cut_t = float(labelled.nlargest(n_lab - cut).min().compute())
            below = int(_values(fr, _n_labelled, cls.labels, pairs, until, cut_t).sum())
        else:
            lab = np.sort(np.asarray(labelled.compute(), dtype="float64"))
            cut_t = float(lab[cut])
            below = int(np.searchsorted(lab, cut_t, side="left"))
            del lab
        ties = np.sort(_values(fr, _rows_at, cls.labels, pairs, until, cut_t))
        cut_row = int(ties[cut - below])
        pool = None
        if recent:  # runtime.online's pool: from the card's calibration start to the last
            # calibration submit (the card's ISO time, as runtime_rolling.epoch reads it back)
            pool = (runtime_rolling.epoch(training._iso(cut_t)),
                    float(labelled.max().compute()))
        marked = client.persist(fr.map_partitions(_marked, cls.labels, pairs, until, cut_t,
                                                  cut_row, pool))
        counts = marked.map_partitions(_counts).compute()
        trained_on = composition(counts, cls.min_positives > 0)
        by = counts.groupby(_SLICE)[["n", "pos"]].sum()
        n_fit, n_cal = int(by["n"].get(1, 0)), int(by["n"].get(2, 0))
        fp, cp = int(by["pos"].get(1, 0)), int(by["pos"].get(2, 0))
        training.refuse_counts(kind, cls.min_positives, (fp, n_fit - fp), (cp, n_cal - cp),
                               trained_on, until)
        cols = [*FEATURES, *extra]
        fit = marked.map_partitions(lambda p: p[p[_SLICE] == 1])[[*cols, "_y"]]
        arr = fit.to_dask_array(lengths=True)
        Xf, yf = arr[:, :len(cols)], arr[:, len(cols)]
        y_card = _fit_middle(marked) if recent else yf  # runtime: the median; failure: sum / mean
        stages.done("split")
        cal = marked.map_partitions(lambda p: p[(p[_SLICE] == 2) | p[_POOL]]).compute()
        # without a pool: the calibration jobs in submit order (rows 0..n-1); with one: the
        # store's row order (runtime_rolling.pool breaks ties in end time by position)
        cal = cal.sort_values([dp.ROW] if recent else ["submit_time", dp.ROW], kind="stable")
        # runtime: the point's repeat too (computed on the workers; the booster never reads it)
        frame = dp.to_local(cal, [*extra, *(runtime_point.REPEAT if recent else [])])
        is_cal = (cal[_SLICE] == 2).to_numpy()
        rows = np.flatnonzero(is_cal)
        sub_c = frame[0]["submit_time"].to_numpy(dtype="float64")
        rows = rows[np.lexsort((rows, sub_c[rows]))]  # submit order, ties by row
        _, y_all = cls.labels(frame[0])
        yc = y_all[rows]
        first_submit = float(fr["submit_time"].min().compute())
        last_end = float(fr["end_time"].max().compute())
        stages.done("gather_calibration")
        model = cls(params)
        trainer = dask_trainer(client, retries=retries)
        token = boosting.TRAINER.set(trainer)
        try:
            model.fit(Xf, yf)
        finally:
            boosting.TRAINER.reset(token)
        del fr, marked
        stages.done("boosting")
    model.calibrate(model.inputs(frame, rows), yc)
    card = training.card_head(first_submit, until, cut_t, n_fit, n_cal,
                              None, trained_on, clusters, sources, capped=capped)
    facts = model.card_extra(frame, np.arange(0), y_card)
    stages.done("calibrate")
    card = training.finish(store, models_dir, model, frame, rows, yc, card, facts, t0, last_end)
    stages.done("validate_save_refresh")
    card["engine"] = {"name": "dask", "data": "parquet", "export": str(root),
                      "workers": len(client.scheduler_info().get("workers", {})),
                      "attempts": max(trainer.attempts, default=1),
                      "exported": exported, "driver": stages.out}
    return card


class _Stages:
    """Wall seconds of each step and the driver's peak RSS after it (the card's
    engine.driver: where the driver's time and memory go)."""

    def __init__(self) -> None:
        self.t, self.out = time.perf_counter(), {}

    def done(self, name: str) -> None:
        import resource
        import sys

        now = time.perf_counter()
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        peak_mb = peak / (1 << 20) if sys.platform == "darwin" else peak / 1024
        self.out[name] = {"s": round(now - self.t, 2), "peak_rss_mb": round(peak_mb)}
        self.t = now

