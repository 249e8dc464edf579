"""Walk-forward evaluation of the runtime model: refit the booster on a schedule, as a
deployment that retrains periodically would, and score each period with the model of its start.

Over an evaluation window [start, end) cut into periods of `every` seconds, the model of each
period is trained by `training.train(..., until=STEP)`, the code behind `jobmedic train runtime
--until STEP` (a user's cron): only jobs submitted AND ended before STEP are labels (a job still
running at STEP contributes no end time), and every feature is as of the job's submit time. With
`window` the fit uses only the jobs submitted in the trailing `window` seconds (`train
--window`). Each period's completed jobs are scored by its own model; the metrics (the point
runtime's MAE, per-quantile coverage, kills and savings of the recommended --time) are computed
over the concatenated periods, beside the same figures of the first step's model alone
(`static`: no refit) on the same rows. Within each period the daily sliding-window
recalibration (models/runtime_rolling.py) is replayed as well (`..._recalibrated`).

The models are written to a temporary folder: the store's current artifact is not touched.
"""
from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from jobmedic.knowledge.errors import ModelError
from jobmedic.models import registry, runtime, runtime_advice, training

if TYPE_CHECKING:
    from jobmedic.knowledge.store import Store
    from jobmedic.models.base import Frame

MIN_EVERY = 3600  # a refit at most hourly: each one is a full training run


def steps(start: int, end: int, every: int) -> list[int]:
    """The refit moments start, start + every, ... before `end`."""
    if every < MIN_EVERY:
        raise ModelError(f"--refit-every {every} s is shorter than an hour",
                         "refit daily or less often, e.g. --refit-every 7d")
    if end <= start:
        raise ModelError("the evaluation window is empty", "give --from before --to")
    return list(range(int(start), int(end), int(every)))


_ONLINE_BUDGETS = sorted(set(runtime.BUDGETS) | set(runtime_advice.ALLOC_BUDGETS))


def period_scores(model: runtime.RuntimeModel, frame: Frame, rows: np.ndarray,
                  card: dict[str, Any]) -> dict[str, np.ndarray]:
    """What the metrics need of `rows` scored by `model` (one period): the point runtime, the
    quantiles and recommended --time (static tables and recalibrated daily), the baselines."""
    df, X = frame
    inputs = model.inputs(frame, rows)
    d = df.iloc[rows]
    tl = d["timelimit_s"].to_numpy(dtype="float64")
    raw = model._raw(inputs)  # one pass: the quantiles, the point and the --time start from it
    q = model.quantiles(raw)
    cpus = d["req_cpus"].to_numpy(dtype="float64")
    rec, taken, rule = model.recommendation(raw, tl, cpus)  # what predict and batch serve
    out = {"pt": model.point_from(raw, inputs), "q": q, "rec": rec, "rec_budget": taken,
           "rec_rule": np.full(len(rows), rule, dtype=object), "tl": tl, "cpus": cpus,
           "last2": X["user_last2_rt"].to_numpy(dtype="float64")[rows],
           "gmed": np.full(len(rows), float(card.get("global_median_s", np.nan)))}
    for b in runtime.BUDGETS:
        t = model._budget(raw, b)
        out[f"b{b:g}"] = np.full(len(rows), np.nan) if t is None else t
    oq, obt, used = runtime.online(model, frame, rows, card)
    out["q_online"] = oq
    for b in _ONLINE_BUDGETS:  # the card's budgets and the allocation's (runtime_advice)
        out[f"ob{b:g}"] = obt.get(b, np.full(len(rows), np.nan))
    out["scale"] = np.full(len(rows), getattr(model, "alloc_scale_", None) or np.nan)
    out["lam"] = np.broadcast_to(np.asarray(used["lambda"], float), (len(rows),)).copy()
    return out


def summarise(y: np.ndarray, p: dict[str, np.ndarray]) -> dict[str, Any]:
    """The runtime card's figures over concatenated periods `p` (see `period_scores`)."""
    tl, cpus, pt = p["tl"], p["cpus"], p["pt"]
    g = p["gmed"]
    bt = {b: p[f"b{b:g}"] for b in runtime.BUDGETS if np.isfinite(p[f"b{b:g}"]).all()}
    static = runtime._scored(y, p["q"], tl, cpus, bt, pt)
    rule = "+".join(sorted(set(p["rec_rule"])))  # one rule unless the periods' models differ
    static["walltime_recommendation"] = runtime.recommendation_effect(
        y, (p["rec"], p["rec_budget"], rule), tl, cpus)
    obt = {b: p[f"ob{b:g}"] for b in _ONLINE_BUDGETS}
    obt = {b: np.where(np.isfinite(v), v, bt[b]) if b in bt else v for b, v in obt.items()}
    obt = {b: v for b, v in obt.items() if np.isfinite(v).all()}
    scale = p["scale"] if np.isfinite(p["scale"]).all() else None  # each period's model's
    online = runtime._scored(y, p["q_online"], tl, cpus, obt, pt, scale, p["lam"])
    return {"n": len(y), "model": static, "recalibrated_daily": online,
            "baselines": runtime.baselines(y, tl, p["last2"], g)}


def _concat(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def walk_forward(store: Store, start: int, end: int | None, every: int, *,
                 window: int | None = None, scope: Sequence[str] | None = None,
                 frame: Frame | None = None, params: dict[str, Any] | None = None,
                 fit: Callable[[int, int | None], tuple[Any, dict[str, Any], dict[str, Any]]]
                 | None = None, progress: Callable[[dict[str, Any]], None] | None = None
                 ) -> dict[str, Any]:
    """Refit the runtime model every `every` seconds over [start, end) and score each period
    with its own model (module docstring). `fit(step, train_from)` -> (model, card, cost)
    replaces the training run (benchmarks memoise it); by default `training.train` into a
    temporary folder. `progress` is called with each refit's line as it is scored."""
    frame = training._positional(frame if frame is not None else training.load(store, scope))
    df = frame[0]
    mask, y = runtime.labels(df)
    sub = df["submit_time"].to_numpy(dtype="float64")
    last = float(np.nanmax(sub)) + 1 if len(sub) else float(start)
    stop = int(end) if end is not None else int(np.ceil(last))
    moments = steps(start, stop, every)
    tmp = tempfile.TemporaryDirectory(prefix="jobmedic-walk-") if fit is None else None

    def _train(step: int, train_from: int | None):
        t, c = time.perf_counter(), time.process_time()
        card = training.train(store, "runtime", tmp.name, until=step, scope=scope, frame=frame,
                              params=params, train_from=train_from)
        model, _ = registry.load(tmp.name, "runtime")
        return model, card, {"wall_s": round(time.perf_counter() - t, 1),
                             "cpu_s": round(time.process_time() - c, 1)}

    fit = fit or _train
    parts, first_parts, ys, refits = [], [], [], []
    try:
        first = None
        for i, step in enumerate(moments):
            nxt = moments[i + 1] if i + 1 < len(moments) else stop
            rows = np.flatnonzero(mask & (sub >= step) & (sub < nxt))
            if not len(rows):
                continue
            model, card, cost = fit(step, None if window is None else step - int(window))
            if first is None:
                first = (model, card)
            parts.append(period_scores(model, frame, rows, card))
            first_parts.append(parts[-1] if model is first[0]
                               else period_scores(first[0], frame, rows, first[1]))
            ys.append(y[rows])
            refits.append({"until": training._iso(step), "scored": len(rows),
                           "fit": (card.get("counts") or {}).get("fit"),
                           "calibration": (card.get("counts") or {}).get("calibration")} | cost)
            if progress is not None:
                progress(refits[-1])
    finally:
        if tmp is not None:
            tmp.cleanup()
    if not ys:
        raise ModelError(f"no completed jobs submitted between {training._iso(start)} and "
                         f"{training._iso(stop)}", "check --from/--to against `jobmedic db info`")
    yy = np.concatenate(ys)
    return {"kind": "runtime", "walk_forward": {
        "from": training._iso(start), "to": training._iso(stop), "every_s": int(every),
        "window_s": None if window is None else int(window), "refits": refits},
        "refit": summarise(yy, _concat(parts)), "static": summarise(yy, _concat(first_parts)),
        "unit": "hours"}


def card_lines(res: dict[str, Any]) -> list[str]:
    """Markdown of a walk-forward result: static against refitted, both recalibration modes."""
    w = res["walk_forward"]
    head = (f"# runtime, walk-forward: refit every {w['every_s'] / 86400:g} d"
            + (f" on the trailing {w['window_s'] / 86400:g} d" if w["window_s"] else " on all history")
            + f", {w['from']} .. {w['to']}")
    lines = [head, "", "| model | MAE (h) | median AE (h) | q0.1 | q0.5 | q0.9 | q0.95 | killed | saved |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, key in (("static (first step only)", "static"), ("walk-forward", "refit")):
        for mode, sub in (("static tables", "model"), ("recalibrated daily", "recalibrated_daily")):
            m = res[key][sub]
            c = m["coverage"]
            r = m["walltime_recommendation"]
            lines.append(f"| {name}, {mode} | {m['mae']:.2f} | {m['median_ae']:.2f} | "
                         + " | ".join(f"{c[k]:.3f}" for k in ("q0.1", "q0.5", "q0.9", "q0.95"))
                         + f" | {100 * r['killed_share']:.1f} % | "
                         f"{100 * (r['core_hours_saved_share'] or 0):.1f} % |")
    lines += ["", f"(n = {res['refit']['n']}; baselines: "
              + ", ".join(f"{k} {v['mae']:.2f} h" for k, v in res["refit"]["baselines"].items())
              + ")", "", "| refit until | fit jobs | scored | CPU s | wall s |", "|---|---|---|---|---|"]
    lines += [f"| {r['until']} | {r['fit']} | {r['scored']} | {r.get('cpu_s')} | {r.get('wall_s')} |"
              for r in w["refits"]]
    return lines


_UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1, "w": 7 * 86400}


def span(text: str, name: str) -> int:
    """Seconds of a span such as `7d`, `36h`, `2w` or a bare number of days (`--refit-every`,
    `--window`)."""
    t = str(text).strip().lower()
    unit = _UNITS.get(t[-1:], None)
    num = t[:-1] if unit else t
    try:
        v = float(num) * (unit or 86400)
    except ValueError:
        raise ModelError(f"{name} {text!r} is not a span", f"give e.g. {name} 7d, 36h or 2w") from None
    if not np.isfinite(v) or v <= 0:
        raise ModelError(f"{name} {text!r} is not a positive span", f"give e.g. {name} 7d")
    return int(v)
