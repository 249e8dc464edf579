"""Train and evaluate the models on a store, split by time.

`train` uses the jobs submitted AND ended before `until` (default: all but the most recent
`holdout_fraction` of submissions); its last `cal_fraction` (by submit time), at most the
`CAL_MAX` most recent labelled jobs, is the later slice the calibration or conformal shift is
fitted on (the jobs a cap leaves out of it go to the fit slice; the card's
window.calibration_capped_at says when it applied). `--tune` searches parameters with Optuna on a
validation slice cut from the fit part, never touching the calibration slice or the test window.
`evaluate` scores the current artifact on jobs submitted in [start, end). Every kind goes
through the same steps of its `ModelKind` contract (models/base.py); none is special-cased.
"""
from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from jobmedic.knowledge.errors import ModelError
from jobmedic.models import artifacts, registry
from jobmedic.models.base import Frame, ModelKind
from jobmedic.models.features import build_features

if TYPE_CHECKING:
    from jobmedic.knowledge.store import Store


#: The most jobs in the calibration slice: isotonic / conformal fits and the card's validation
#: are as good on 100k recent jobs, and the Dask path gathers this slice on its driver, so its
#: memory stays bounded however long the history (docs/scale.md).
CAL_MAX = 100_000


def calibration_cut(n: int, cal_fraction: float) -> int:
    """Where the calibration slice starts among `n` labelled jobs in submit order: the later
    `cal_fraction`, at most `CAL_MAX` of them."""
    return max(int(n * (1 - cal_fraction)), n - CAL_MAX)


def _iso(t: float | None) -> str | None:
    return None if t is None or not np.isfinite(t) else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def load(store: Store, scope: Sequence[str] | None = None) -> Frame:
    df = store.jobs_frame(scope)
    if df.empty:
        raise ModelError("the store holds no jobs to learn from",
                         "ingest accounting data first, e.g. `jobmedic ingest slurm sacct.txt`")
    return df, build_features(df)


def default_until(df: pd.DataFrame, holdout_fraction: float) -> int:
    return int(np.quantile(df["submit_time"].dropna().to_numpy(), 1 - holdout_fraction))


def _positional(frame: Frame) -> Frame:
    """The frame indexed 0..n-1 (rows are then positions), copied only when it is not."""
    df, X = frame
    plain = pd.RangeIndex(len(df))
    if df.index.equals(plain) and X.index.equals(plain):
        return frame
    return df.reset_index(drop=True), X.reset_index(drop=True)


def _tune(model: ModelKind, Xf: Any, yf: np.ndarray, trials: int, budget: float,
          max_rounds: int = 600) -> dict[str, Any]:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    cut = int(len(yf) * 0.8)
    obj = model.tune_objective(Xf[:cut], yf[:cut], Xf[cut:], yf[cut:], max_rounds)
    study = optuna.create_study(direction=model.tune_direction,
                                sampler=optuna.samplers.TPESampler(seed=0))
    study.optimize(obj, n_trials=trials, timeout=budget)
    return {"trials": len(study.trials), "best_value": float(study.best_value),
            "params": study.best_params, "validation": "last 20% (by submit time) of the fit slice"}


def _reference(model: ModelKind, models_dir: str, frame: Frame, rows: np.ndarray) -> Any:
    """The `compare_with` kind's predictions on `rows`, or why there are none (None: no
    comparison for this kind)."""
    if model.compare_with is None:
        return None
    try:
        ref, _ = registry.load(models_dir, model.compare_with)
    except ModelError as exc:
        return exc.message
    return ref.predict(ref.inputs(frame, rows))


def train(store: Store, kind: str, models_dir: str, until: int | None = None,
          scope: Sequence[str] | None = None, *, tune: bool = False, trials: int = 20,
          time_budget: float = 300, holdout_fraction: float = 0.2, cal_fraction: float = 0.2,
          params: dict[str, Any] | None = None, frame: Frame | None = None,
          clusters: Sequence[str] | None = None, sources: Sequence[str] | None = None,
          train_from: int | None = None) -> dict[str, Any]:
    """Fit one model kind, write its artifact, refresh the history summary; returns the card.

    `clusters` / `sources` select the jobs it learns from (the history features still see every
    job); `train_from` (`train --window`) keeps only jobs submitted from then on. A classifier
    refuses a slice with too few failures or successes (ModelError)."""
    cls = registry.kind(kind)
    t0 = time.perf_counter()
    frame = _positional(frame if frame is not None else load(store, scope))
    df = frame[0]
    chosen = selection(df, clusters, sources)
    until = (default_until(df[chosen], holdout_fraction) if until is None else int(until))
    mask, y = cls.labels(df)
    sub = df["submit_time"].to_numpy()
    lab = np.flatnonzero(chosen & mask & (sub < until) & (df["end_time"].to_numpy() < until)
                         & ((sub >= train_from) if train_from is not None else True))
    order = lab[np.argsort(sub[lab], kind="stable")]
    cut = calibration_cut(len(order), cal_fraction)
    fit_i, cal_i = order[:cut], order[cut:]
    if len(fit_i) < 50 or len(cal_i) < 10:
        raise ModelError(f"too few labelled jobs before {_iso(until)} to train the {kind} model "
                         f"({len(order)}; need about 100)", "ingest more history or pass a later --until")
    yf, yc = y[fit_i], y[cal_i]
    trained_on = composition(df, fit_i, cal_i, y, cls.min_positives > 0)
    refuse_useless(kind, cls.min_positives, yf, yc, trained_on, until)
    model = cls(params)
    Xf = model.inputs(frame, fit_i)
    tuned = (_tune(model, Xf, yf, trials, time_budget, int((params or {}).get("num_boost_round", 600)))
             if tune else None)
    if tuned:
        model = cls(tuned["params"])
        Xf = model.inputs(frame, fit_i)
    model.fit(Xf, yf).calibrate(model.inputs(frame, cal_i), yc)
    first = df["submit_time"].min() if train_from is None else max(df["submit_time"].min(), train_from)
    card = card_head(first, until, sub[cal_i[0]], len(fit_i), len(cal_i),
                     tuned, trained_on, clusters, sources,
                     capped=cut > int(len(order) * (1 - cal_fraction)))
    return finish(store, models_dir, model, frame, cal_i, yc, card,
                  model.card_extra(frame, fit_i, yf), t0, df["end_time"].max())


def card_head(first_submit: float, until: int, cal_from: float, n_fit: int, n_cal: int,
              tuned: dict[str, Any] | None, trained_on: dict[str, Any],
              clusters: Sequence[str] | None, sources: Sequence[str] | None,
              capped: bool = False) -> dict[str, Any]:
    """The card's window, counts, tuning and training-set composition (`capped`: the
    calibration slice was cut to CAL_MAX)."""
    window = {"train_from": _iso(first_submit), "until": _iso(until),
              "calibration_from": _iso(cal_from), "until_epoch": until}
    if capped:
        window["calibration_capped_at"] = CAL_MAX
    return {"window": window,
            "counts": {"fit": n_fit, "calibration": n_cal}, "tuning": tuned,
            "trained_on": trained_on | {"selected": {"clusters": list(clusters or []) or None,
                                                     "sources": list(sources or []) or None}}}


def finish(store: Store, models_dir: str, model: ModelKind, frame: Frame, cal_i: np.ndarray,
           yc: np.ndarray, card: dict[str, Any], extra: dict[str, Any], t0: float,
           last_end: float) -> dict[str, Any]:
    """After fit and calibrate: validate on the calibration rows of `frame`, save the artifact,
    refresh the store's history summary; returns the card. (`frame` may hold only the
    calibration slice: engines/dask_train.py gathers nothing else.)"""
    card["counts"] |= extra.pop("counts", {})
    card |= extra
    card["validation"] = model.evaluate(frame, cal_i, yc, card,
                                        _reference(model, models_dir, frame, cal_i))
    card |= model.summary(card)
    card["train_seconds"] = round(time.perf_counter() - t0, 2)
    path = artifacts.save(models_dir, model.name, model.files(), model.meta() | {"card": card})
    card["version"], card["path"] = path.name, str(path)
    serving = model.after_save(store, frame, path.name)
    if serving:
        card["serving_state"] = serving
    if np.isfinite(last_end):
        store.refresh_entity_stats(int(last_end) + 1)
    from jobmedic.knowledge import entity_summary

    entity_summary.refresh(store, build=True)  # what predict reads the history from at "now"
    return card


def recalibrate(store: Store, kind: str, models_dir: str, until: int | None = None,
                scope: Sequence[str] | None = None, frame: Frame | None = None) -> dict[str, Any]:
    """Refit the current request model's conformal shifts and retry-budget table on the most
    recent completed jobs (models/runtime_rolling.py) and save them as a new version with the
    same booster; returns the card. No job the booster was fitted on is used."""
    import copy

    from jobmedic.models import runtime_rolling as rolling

    cls = registry.kind(kind)
    current, meta = registry.load(models_dir, kind)
    if cls.role != "request":
        raise ModelError(f"the {kind} model has no conformal shift to recalibrate",
                         "recalibrate a request model: `jobmedic train runtime --recalibrate`")
    model = copy.copy(current)  # the cached model keeps serving its own version
    frame = _positional(frame if frame is not None else load(store, scope))
    df = frame[0]
    mask, y = cls.labels(df)
    card = dict(meta.get("card") or {})
    last = df["end_time"].max()
    before = float(until) if until is not None else (float(last) + 1 if np.isfinite(last) else 0.0)
    since = rolling.epoch((card.get("window") or {}).get("calibration_from"))
    rows = rolling.pool(df, mask, since, before)[-rolling.WINDOW:]
    if len(rows) < rolling.MIN_N:
        raise ModelError(f"only {len(rows)} completed jobs ended between the model's calibration "
                         f"start and {_iso(before)}; recalibration needs {rolling.MIN_N}",
                         "ingest more recent history, or retrain with `jobmedic train "
                         f"{kind}`")
    X = model.inputs(frame, rows)
    used = rolling.refit(model, rolling.residuals(model, X, y[rows]))
    if hasattr(model, "reset_allocation"):  # runtime: the --time price on the same window
        used |= model.reset_allocation(X, y[rows])
    card["recalibrated"] = used | {"from_version": meta.get("version"), "until": _iso(before),
                                   "first_end": _iso(df["end_time"].to_numpy()[rows[0]])}
    path = artifacts.save(models_dir, kind, model.files(), model.meta() | {"card": card})
    card["version"], card["path"] = path.name, str(path)
    return card


def selection(df: pd.DataFrame, clusters: Sequence[str] | None,
              sources: Sequence[str] | None) -> np.ndarray:
    """The mask of the jobs of the given clusters and sources (all jobs when none is given);
    ModelError naming what the store holds when a name matches no job."""
    keep = np.ones(len(df), dtype=bool)
    for col, names, flag in (("cluster", clusters, "--cluster"), ("source", sources, "--source")):
        if not names:
            continue
        held = df[col].astype(object) if col in df else pd.Series([None] * len(df))
        hit = held.isin(list(names)).to_numpy()
        if not hit.any():
            have = sorted({str(v) for v in held.dropna().unique()})
            raise ModelError(f"no jobs of {col} {', '.join(map(str, names))} to train on",
                             f"{flag} takes one of: {', '.join(have) or '(none stored)'}")
        keep &= hit
    if not keep.any():
        raise ModelError("no jobs match both --cluster and --source", "drop one of them")
    return keep


def composition(df: pd.DataFrame, fit_i: np.ndarray, cal_i: np.ndarray, y: np.ndarray,
                binary: bool) -> dict[str, Any]:
    """What a model learned from: jobs (and, for a classifier, positives) per cluster and
    source over the fit and calibration slices, and the label counts of each slice."""
    rows = np.concatenate([fit_i, cal_i])
    out: dict[str, Any] = {}
    for col in ("cluster", "source"):
        vals = (df[col].astype(object).fillna("(none)").to_numpy()[rows] if col in df
                else np.array(["(none)"] * len(rows), dtype=object))
        per: dict[str, Any] = {}
        for v in sorted({str(x) for x in vals}):
            sel = vals == v
            per[v] = {"jobs": int(sel.sum())}
            if binary:
                per[v]["positives"] = int(y[rows][sel].sum())
        out[col + "s"] = per
    if binary:
        out["labels"] = {name: {"positives": int(y[i].sum()), "negatives": int(len(i) - y[i].sum())}
                         for name, i in (("fit", fit_i), ("calibration", cal_i))}
    return out


def refuse_useless(kind: str, min_pos: int, yf: np.ndarray, yc: np.ndarray,
                   trained_on: dict[str, Any], until: int) -> None:
    """ModelError when a classifier's fit slice holds fewer than `min_pos` positives or
    negatives, or its calibration slice a single class: such a model states risks it never
    learned (e.g. 0 % for a user who failed 2 jobs of 3)."""
    if min_pos <= 0:
        return
    refuse_counts(kind, min_pos, (int(yf.sum()), int(len(yf) - yf.sum())),
                  (int(yc.sum()), int(len(yc) - yc.sum())), trained_on, until)


def refuse_counts(kind: str, min_pos: int, fit: tuple[int, int], cal: tuple[int, int],
                  trained_on: dict[str, Any], until: int) -> None:
    """refuse_useless from the (positives, negatives) of the fit and calibration slices."""
    if min_pos <= 0:
        return
    (fp, fn), (cp, cn) = fit, cal
    where = ", ".join(f"{c}: {v['jobs']} jobs, {v.get('positives', 0)} failed"
                      for c, v in trained_on["clusters"].items())
    hint = ("train on the clusters that have failures (`--cluster NAME` / `--source NAME`), "
            "or pass a later --until so the training slice includes them")
    if min(fp, fn) < min_pos:
        what = "failed" if fp < min_pos else "successful"
        raise ModelError(
            f"refusing to train the {kind} model: its training slice (before {_iso(until)}) has "
            f"{fp} failed and {fn} successful jobs, fewer than {min_pos} {what} ones ({where})",
            hint)
    if cp == 0 or cn == 0:
        raise ModelError(
            f"refusing to train the {kind} model: its calibration slice holds a single class "
            f"({cp} failed, {cn} successful jobs; {where})", hint)


def evaluate(store: Store, kind: str, models_dir: str, start: int, end: int | None = None,
             scope: Sequence[str] | None = None, frame: Frame | None = None) -> dict[str, Any]:
    """Score the current artifact on jobs submitted in [start, end) that have an outcome."""
    cls = registry.kind(kind)
    model, meta = registry.load(models_dir, kind)
    frame = _positional(frame if frame is not None else load(store, scope))
    df = frame[0]
    mask, y = cls.labels(df)
    sub = df["submit_time"].to_numpy()
    sel = mask & (sub >= start) & ((sub < end) if end is not None else True)
    if not sel.any():
        raise ModelError(f"no {kind}-labelled jobs submitted between {_iso(start)} and {_iso(end)}",
                         "check --from/--to against `jobmedic db info`")
    rows = np.flatnonzero(sel)
    card = meta.get("card", {})
    res: dict[str, Any] = {"kind": kind, "version": meta["version"],
                           "test_window": {"from": _iso(start), "to": _iso(end) if end else None},
                           "train_window": card.get("window")}
    if card.get("trained_on"):
        res["trained_on"] = card["trained_on"]
    if card.get("window", {}).get("until_epoch", -np.inf) > start:
        res["warning"] = "the test window overlaps the training window: these figures are optimistic"
    res["metrics"] = model.evaluate(frame, rows, y[rows], card,
                                    _reference(model, models_dir, frame, rows))
    ens = _ensemble(model, models_dir, frame, rows, y[rows])
    if ens is not None:
        res["ensemble"] = ens
    return res | model.summary(card)


def _ensemble(model: ModelKind, models_dir: str, frame: Frame, rows: np.ndarray,
              y: np.ndarray) -> dict[str, Any] | None:
    """The kind's `ensemble_with` partner, averaged with it on `rows` when the partner's card
    says the average won on its validation slice (None when there is no such partner)."""
    other = model.ensemble_with
    if other is None:
        return None
    try:
        om, ometa = registry.load(models_dir, other)
    except ModelError as exc:
        return {"used": False, "with": other, "reason": exc.message}
    if not (ometa.get("card") or {}).get(f"ensemble_with_{_engine(model)}"):
        return {"used": False, "with": other, "version": ometa["version"],
                "reason": f"the {other} model's card says the average did not win on validation"}
    from jobmedic.models import gnn_blend, metrics

    how = gnn_blend.checked_blend(ometa["card"].get("ensemble_blend"))  # chosen on validation
    p = gnn_blend.blend(model.predict(model.inputs(frame, rows)), om.predict(om.inputs(frame, rows)), how)
    return {"used": True, "with": other, "version": ometa["version"], "blend": how,
            "metrics": metrics.classification(np.asarray(y).astype(int), p)}


def _engine(model: ModelKind) -> str:
    return "xgboost" if model.name == "failure" else model.name
