"""`predict` with `running: true`: the running jobs the caller may see, each with its
early-warning score (the early model on its first minutes) and its memory-kill estimate
(models/early_running.assess, as `predict JOB` shows for one running job), riskiest first."""
from __future__ import annotations

from typing import Any

from jobmedic.core.timeutil import iso
from jobmedic.reports.predict_running import render
from jobmedic.tools.base import Invocation, ToolContext, ToolResult, ok

MAX_SCORED = 500  # running jobs scored per request (newest first beyond that)
FILTERS = ("project", "user", "queue", "cluster")
SPEC_ONLY = ("job_id", "image", "name", "qos", "req_cpus", "req_gpus", "req_mem_mb",
             "req_walltime_s", "n_nodes", "submit_time", "retry_budget")


def at_risk(row: dict[str, Any], high: float) -> bool:
    """A memory-kill alarm, or an early-warning probability at the 'high' level or above."""
    p = row["early_warning"].get("probability")
    return bool(row["memory_kill"].get("alarm")) or (p is not None and p >= high)


def _order(row: dict[str, Any]) -> tuple:
    mk, ew = row["memory_kill"], row["early_warning"]
    eta = mk.get("eta_s")
    return (not mk.get("alarm"), eta if eta is not None else float("inf"),
            -(ew.get("probability") or 0.0), row["job_id"])


def run(ctx: ToolContext, req: Any, scope: list[str] | None, levels: dict[str, float]
        ) -> ToolResult:
    from jobmedic.models.early_running import assess
    from jobmedic.tools.filters import resolve_filters

    given = [k for k in SPEC_ONLY if getattr(req, k, None) is not None]
    if given:
        raise ValueError(f"running: true lists the running jobs; it takes only the filters "
                         f"{', '.join(FILTERS)}, not {', '.join(given)}")
    filters = resolve_filters(ctx, req, scope)  # unknown / out-of-scope names: NotFound
    now = ctx.current_time()
    jobs = ctx.store.telemetry.running_jobs(cluster=filters.get("cluster"), scope=scope)
    jobs = [j for j in jobs if all(j.get(k) == v for k, v in filters.items()
                                   if k in ("project", "user"))]
    notes = []
    if len(jobs) > MAX_SCORED:
        jobs.sort(key=lambda j: -(j.get("start_time") or 0))
        notes.append(f"{len(jobs):,} running jobs: the {MAX_SCORED} that started last were scored")
        jobs = jobs[:MAX_SCORED]
    out = []
    for j in jobs:
        job = ctx.store.get_job(j["job_id"], j["cluster"], scope)
        if job is None or ("queue" in filters and job.get("queue") != filters["queue"]):
            continue
        a = assess(ctx.store, job, now, ctx.models_dir, scope)
        mk, ew = a["memory_kill"], a["early_warning"]
        out.append({
            "cluster": job["cluster"], "job_id": job["job_id"], "project": job.get("project"),
            "user": job.get("user"), "name": job.get("name"), "queue": job.get("queue"),
            "running_s": None if job.get("start_time") is None else max(0, now - job["start_time"]),
            "samples": a["samples"],
            "early_warning": {k: ew.get(k) for k in ("status", "probability", "model",
                                                     "horizon_s", "note") if k in ew},
            "memory_kill": {k: mk.get(k) for k in ("status", "alarm", "eta_s", "eta_interval_s",
                                                   "fraction", "level", "limit", "metric",
                                                   "note") if k in mk}})
    out.sort(key=_order)
    high = float(levels["high"])
    for r in out:
        r["at_risk"] = at_risk(r, high)
    data = {"as_of": iso(now), "running": len(out), "at_risk": sum(r["at_risk"] for r in out),
            "jobs": out[:req.top], "shown": min(len(out), req.top), "high_level": high,
            "filters": filters, "notes": notes}
    inv = Invocation(window={"now": iso(now)}, filters={"running": True, **filters}, scope=scope)
    if not out:
        where = " matching " + ", ".join(f"{k} {v}" for k, v in filters.items()) if filters else ""
        return ToolResult(status="no_data", action="predict", data=data, invocation=inv,
                          text=f"No running jobs{where} in the store as of {iso(now)}"
                               f"{' in your projects' if scope is not None else ''}.\n\n"
                               "`jobmedic watch` records running jobs and their samples "
                               "(sstat, Prometheus).")
    return ok("predict", data, render(data), inv)
