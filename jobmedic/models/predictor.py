"""One prediction for one job spec: failure risk with level and factors, runtime and memory
quantiles, and the concrete request they imply. Features come from indexed history lookups
(no bulk read), models from the verified in-process cache."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from jobmedic.knowledge.errors import ModelError
from jobmedic.models import memory, registry, runtime
from jobmedic.models.batch import level_of
from jobmedic.models.explain import NOUN, top_factors
from jobmedic.models.features import spec_features

if TYPE_CHECKING:
    from jobmedic.knowledge.store import Store


def fmt_time(s: float) -> str:
    s = int(max(s, 60))
    d, r = divmod(s, 86400)
    h, r = divmod(r, 3600)
    return (f"{d}-" if d else "") + f"{h:02d}:{r // 60:02d}:00"


def fmt_mem(mb: float) -> str:
    return f"{int(np.ceil(mb / 1024))}G" if mb >= 1024 else f"{int(np.ceil(mb))}M"


def predict_one(store: Store, spec: Mapping[str, Any], now: int, models_dir: str,
                levels: Mapping[str, float], scope: Sequence[str] | None = None) -> dict[str, Any]:
    """The prediction for `spec` submitted at `now` (epoch s). ModelError without a failure model."""
    fm, fmeta = registry.load(models_dir, "failure")
    x, hists = spec_features(store, spec, now, scope)
    X = x[None, :]
    p = float(fm.predict_proba(X)[0, 1])
    out: dict[str, Any] = {
        "failure_risk": round(p, 4), "risk_level": str(level_of(np.array([p]), dict(levels))[0]),
        "factors": top_factors(fm.contributions(X)[0], x, hists),
        "history": {k: {"value": h.get("value"), "finished_jobs": h["n"], "failed": h["fails"],
                        "recent_failed": sum(int(r[0]) for r in h["recent"]),
                        "recent_runs": len(h["recent"])} for k, h in hists.items()},
        "cold_start": [NOUN[k] for k, h in hists.items() if h.get("value") not in (None, "") and h["n"] == 0],
        "models": {"failure": fmeta["version"]}, "missing_models": [],
    }
    request: list[str] = []
    too_low: dict[str, float] = {}
    for kind, mod in (("runtime", runtime), ("memory", memory)):
        try:
            m, meta = registry.load(models_dir, kind)
        except ModelError as exc:
            out["missing_models"].append({"kind": kind, "message": exc.message, "hint": exc.hint})
            continue
        out["models"][kind] = meta["version"]
        q = m.predict(X)
        qd = {f"q{a:g}": round(float(v), 1) for a, v in zip(mod.ALPHAS, q[0])}
        if kind == "runtime":
            tl = spec.get("timelimit_s")
            rec = float(runtime.recommend(q, np.array([float(tl) if tl else np.nan]))[0])
            out["runtime_s"] = {"median": qd["q0.5"], "interval_80": [qd["q0.1"], qd["q0.9"]],
                                "quantiles": qd, "recommended": rec}
            request.append(f"--time={fmt_time(rec)}")
            too_low["time"] = round(1 - runtime.RECOMMEND_ALPHA, 3)
        else:
            rec = float(memory.recommend(q)[0])
            out["memory_mb"] = {"median": qd["q0.5"], "quantiles": qd, "recommended": rec,
                                "safe_q0.95": qd["q0.95"]}
            request.append(f"--mem={fmt_mem(rec)}")
            too_low["memory"] = round(1 - memory.RECOMMEND_ALPHA, 3)
    out["request"] = " ".join(request) or None
    out["chance_too_low"] = too_low
    return out
