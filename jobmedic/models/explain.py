"""Factors in words: turn a prediction's largest SHAP contributions into sentences a user can
check against the history ("this job name failed 7 of its last 9 runs")."""
from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from jobmedic.models.features import FEATURES

GIVEN = {"req_cpus": "CPU count", "req_gpus": "GPU count", "req_mem_mb": "memory",
         "timelimit_s": "time limit", "n_nodes": "node count"}
NOUN = {"user": "user", "name": "job name", "project": "project", "image": "image",
        "queue": "queue", "qos": "QOS", "shape": "same request (user, CPUs, time limit)"}


def _dur(s: float) -> str:
    s = float(s)
    return f"{s / 3600:.1f} h" if s >= 3600 else f"{s / 60:.0f} min"


def describe(feature: str, value: float, hists: Mapping[str, Mapping[str, Any]]) -> str:
    """One sentence stating what a feature's value says about this job."""
    if feature in ("req_cpus", "req_gpus", "n_nodes"):
        return f"it requests {value:g} {feature.split('_')[-1].replace('nodes', 'nodes')}"
    if feature == "req_mem_mb":
        return f"it requests {value / 1024:.1f} GB of memory"
    if feature == "timelimit_s":
        return f"it requests a time limit of {_dur(value)}"
    if feature == "hour":
        return f"it is submitted at {int(value):02d}:00 UTC"
    if feature == "dow":
        return f"it is submitted on a {['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'][int(value)]}"
    kind, stat = feature.split("_", 1)
    h = hists.get(kind, {})
    if h.get("value") in (None, ""):
        return f"no {NOUN[kind]} is given, so there is no {NOUN[kind]} history"
    who = f"{NOUN[kind]} {h.get('value')!s}"
    n = int(h.get("n", 0))
    if n == 0:
        return f"{who} has no finished jobs in the history (cold start)"
    rec = h.get("recent") or []
    rf = sum(int(r[0]) for r in rec)
    if stat in ("recent_fails", "recent_n", "last_fail"):
        return f"{who} failed {rf} of its last {len(rec)} runs"
    if stat in ("fail_rate", "n"):
        return f"{who} failed {h.get('fails', 0)} of its {n} finished jobs ({h.get('fails', 0) / n:.0%})"
    if stat == "since_last_s":
        return f"{who}'s last job ended {_dur(value)} before this submission"
    if stat in ("mean_logrt", "last_rt", "last2_rt"):
        shown = math.expm1(value) if stat == "mean_logrt" else value
        return f"{who}'s {'typical' if stat == 'mean_logrt' else 'recent'} runtime is {_dur(shown)}"
    if stat in ("max_rss", "last_rss"):
        return f"{who}'s {'largest' if stat == 'max_rss' else 'last'} peak memory was {value / 1024:.1f} GB"
    return f"{feature} = {value:g}"


def top_factors(contrib: np.ndarray, x: np.ndarray, hists: Mapping[str, Any], k: int = 4) -> list[dict]:
    """The k features pushing the risk most (either way), with their words and log-odds."""
    c = np.asarray(contrib)[: len(FEATURES)]
    out, seen = [], set()
    for i in np.argsort(-np.abs(c)):
        if abs(c[i]) < 1e-3 or len(out) >= k:
            break
        f = FEATURES[i]
        if np.isfinite(x[i]) or f.split("_")[0] in NOUN:
            words = describe(f, float(x[i]) if np.isfinite(x[i]) else 0.0, hists)
        else:
            words = f"the request gives no {GIVEN.get(f, f)}"
        if words in seen:
            continue
        seen.add(words)
        out.append({"feature": FEATURES[i], "value": None if not np.isfinite(x[i]) else float(x[i]),
                    "log_odds": round(float(c[i]), 4),
                    "direction": "raises" if c[i] > 0 else "lowers", "text": words})
    return out
