"""One prediction for one job spec: failure risk with level and factors, runtime and memory
quantiles, and the concrete request they imply. Features come from the per-entity summary
(built or refreshed here once when it is missing or behind and the store can be written:
`features.summary_ready`) or else from indexed history lookups (no bulk read), models from the
verified in-process cache."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from jobmedic.knowledge.errors import ModelError
from jobmedic.models import registry
from jobmedic.models.batch import level_of
from jobmedic.models.explain import NOUN, top_factors
from jobmedic.models.features import spec_features, summary_ready

if TYPE_CHECKING:
    from jobmedic.knowledge.store import Store


def predict_one(store: Store, spec: Mapping[str, Any], now: int, models_dir: str,
                levels: Mapping[str, float], scope: Sequence[str] | None = None,
                cluster: str | None = None, retry_budget: float | None = None) -> dict[str, Any]:
    """The prediction for `spec` submitted at `now` (epoch s). `cluster` (default the spec's): a
    cluster the failure model never saw is warned about. `retry_budget`: the acceptable share of
    killed runs; adds the conformal request meeting it. Without a failure model (a cluster with
    no failures to learn from) the runtime and memory advice is still given, `failure_risk` is
    None and the failure model is listed as missing; ModelError when no model exists at all."""
    fm, fmeta, missing = registry.optional(models_dir, "failure")
    if missing is not None and not any(registry.trained(models_dir, k.name)
                                       for k in registry.of_role("request")):
        raise ModelError(missing["message"], missing["hint"])  # no model of any kind
    summary_ready(store, now)  # the entity summary built / brought up to `now` once when it can be
    x, hists = spec_features(store, spec, now, scope)
    X = x[None, :]
    out: dict[str, Any] = {
        "failure_risk": None, "risk_level": None, "factors": [],
        "history": {k: {"value": h.get("value"), "finished_jobs": h["n"], "failed": h["fails"],
                        "recent_failed": sum(int(r[0]) for r in h["recent"]),
                        "recent_runs": len(h["recent"])} for k, h in hists.items()},
        "cold_start": [NOUN[k] for k, h in hists.items() if h.get("value") not in (None, "") and h["n"] == 0],
        "models": {}, "missing_models": [],
    }
    if fm is not None:
        from jobmedic.models.ensemble import ensemble_one  # the GNN + XGBoost ensemble (issue 16)

        p, ensemble = ensemble_one(store, models_dir, x, dict(spec), now, float(fm.predict(X)[0]), scope)
        out |= {"failure_risk": round(p, 4), "risk_level": str(level_of(np.array([p]), dict(levels))[0]),
                "factors": top_factors(fm.contributions(X)[0], x, hists)}
        out["models"]["failure"] = fmeta["version"]
        if ensemble is not None:
            out["ensemble"] = ensemble
    else:
        out["missing_models"].append(missing)
    unseen = unseen_cluster(fmeta, cluster or spec.get("cluster"))
    if unseen:
        out["unseen_cluster"] = unseen
        out["warnings"] = [unseen["message"]]
    request: list[str] = []
    too_low: dict[str, float] = {}
    budget_req: dict[str, float | None] = {}
    for kind in registry.of_role("request"):  # runtime, memory: advice on the request
        try:
            m, meta = registry.load(models_dir, kind.name)
        except ModelError as exc:
            out["missing_models"].append({"kind": kind.name, "message": exc.message, "hint": exc.hint})
            continue
        out["models"][kind.name] = meta["version"]
        qs, b, pt, raw = m.serve(m.spec_inputs(X, store, spec, now, scope), retry_budget)
        key, block, flag, (low_key, low) = m.advice(qs, spec, raw)
        if pt is not None and m.POINT_FIELD:  # the point estimate `evaluate` scores
            block[m.POINT_FIELD] = round(float(pt[0]), 1)
        out[key] = block
        request.append(flag)
        too_low[low_key] = low
        if retry_budget is not None:
            budget_req[kind.name] = None if b is None else float(b[0])
    out["request"] = " ".join(request) or None
    if retry_budget is not None:
        out["retry_budget"] = budget_block(spec, retry_budget, budget_req)
    out["chance_too_low"] = too_low
    return out


def budget_block(spec: Mapping[str, Any], budget: float,
                 req: Mapping[str, float | None]) -> dict[str, Any]:
    """The request meeting `budget` (a share of killed runs) and its cost against the user's own
    request: core-hours for time, GB-hours for memory (over the time asked for)."""
    cpus = float(spec.get("req_cpus") or 1)
    tl, mem = spec.get("timelimit_s"), spec.get("req_mem_mb")
    t = req.get("runtime")
    t = None if t is None else float(np.ceil(t / 60) * 60 + 60)
    if t is not None and tl:
        t = min(t, float(tl))
    m = req.get("memory")
    m = None if m is None else float(np.ceil(m / 256) * 256)
    out: dict[str, Any] = {"budget": budget, "time_s": t, "mem_mb": m,
                           "missing": [k for k, v in req.items() if v is None] or None}
    if t is not None:
        out["core_hours"] = round(t * cpus / 3600, 3)
        out["user_core_hours"] = round(float(tl) * cpus / 3600, 3) if tl else None
    if m is not None:
        hours = (t or (float(tl) if tl else 3600.0)) / 3600
        out["gb_hours"] = round(m / 1024 * hours, 3)
        out["user_gb_hours"] = (round(float(mem) / 1024 * (float(tl) if tl else 3600.0) / 3600, 3)
                                if mem else None)
    flags = ([f"--time={int(t // 60)}"] if t is not None else []) + (
        [f"--mem={int(m)}M"] if m is not None else [])
    out["request"] = " ".join(flags) or None
    return out


def unseen_cluster(meta: Mapping[str, Any], cluster: str | None) -> dict[str, Any] | None:
    """When `cluster` is not among the clusters the model's card says it was trained on: the
    cluster, those it saw, and the warning in words (None when it saw it, or nobody knows)."""
    seen = ((meta.get("card") or {}).get("trained_on") or {}).get("clusters")
    if not cluster or not seen or cluster in seen:
        return None
    names = ", ".join(seen)
    return {"cluster": cluster, "trained_on": list(seen),
            "message": f"the failure model never saw cluster {cluster} (it was trained on "
                       f"{names}): this risk is extrapolated; train one with `jobmedic train "
                       f"failure --cluster {cluster}`"}
