"""A running job's early warning for `predict`: its failure risk from its first minutes (the
early model, when trained) and its memory-kill estimate, each with the inputs it used. A job
with no samples says so, and predict falls back to the submit-time risk."""
from __future__ import annotations

import time
from typing import Any

import numpy as np

from jobmedic.knowledge.errors import ModelError
from jobmedic.models.early_data import (
    HORIZONS,
    METRICS,
    WINDOW_STATS,
    window,
    window_stats_array,
)
from jobmedic.models.memkill import job_estimate

#: The window statistics shown as the early warning's inputs.
_SHOWN = [i for i, c in enumerate(WINDOW_STATS) if c.endswith(("_mean", "_last", "_missing"))]


def assess(store: Any, job: dict[str, Any], now: int, models_dir: Any, scope: Any = None,
           spec_features: np.ndarray | None = None) -> dict[str, Any]:
    """{"memory_kill": ..., "early_warning": ...} for a running job at `now`."""
    t0 = time.perf_counter()
    rows = store.job_samples(job["job_id"], job["cluster"], scope=scope, until=now + 1)
    out: dict[str, Any] = {"samples": len(rows),
                           "metrics": sorted({r["metric"] for r in rows})}
    out["memory_kill"] = job_estimate(rows, job.get("req_mem_mb"), now)
    start = job.get("start_time")
    early: dict[str, Any] = {"status": ""}
    win = [r for r in rows if r["metric"] in METRICS]
    if not win or start is None:
        early |= {"status": "no_samples", "note": "no telemetry window for this job: the "
                  "submit-time risk above is all there is"}
    elif models_dir is None:
        early |= {"status": "no_model", "note": "no model folder"}
    else:
        horizon = float(min(max(now - start, 0), HORIZONS["start+3min"]))
        seq = window([(job["cluster"], job["job_id"], r["metric"], r["device"], r["t"],
                       r["value"]) for r in win], {(job["cluster"], job["job_id"]): 0},
                     np.array([float(start)]), horizon)
        try:
            from jobmedic.models import registry

            model, meta = registry.load(models_dir, "early")
        except ModelError as exc:
            early |= {"status": "no_model", "note": exc.message,
                      "hint": "train it: `jobmedic train early`"}
        else:
            if spec_features is None:  # the submit-time features, as predict computes them
                from jobmedic.models.features import spec_features as features_of

                spec = {k: job.get(k) for k in ("user", "project", "queue", "qos", "image",
                                                "name", "req_cpus", "req_gpus", "req_mem_mb",
                                                "timelimit_s", "n_nodes")}
                spec_features, _ = features_of(store, spec, int(job.get("submit_time") or start),
                                               scope)
            stats = window_stats_array(seq)[0]
            row = np.concatenate([np.asarray(spec_features, dtype=np.float64), stats,
                                  seq.reshape(-1)])
            p = float(model.predict_array(row)[0])  # no frame: the array path (same figures)
            early |= {"status": "scored", "probability": round(p, 4),
                      "model": meta.get("chosen"), "version": meta.get("version"),
                      "horizon_s": horizon, "minutes_with_samples":
                          int(np.isfinite(seq).any(axis=2).sum()),
                      "inputs": {WINDOW_STATS[i]: (None if not np.isfinite(stats[i])
                                                   else round(float(stats[i]), 2))
                                 for i in _SHOWN}}
    out["early_warning"] = early
    out["seconds"] = round(time.perf_counter() - t0, 4)
    return out
