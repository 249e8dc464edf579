"""Advice: the fixes for a failure type, rule-based and learned, ranked honestly and, for a
specific job, fitted to what that job actually asked for and used.

Ranking: solutions with recorded or inferred attempts are ordered by the lower bound of the
95 % Wilson interval of their success rate (over all projects: numbers only), then the
curated solutions nobody has tried yet, in rule-base order. A fitted change reads like
"raise --mem from 8G to 16G: its MaxRSS reached 7.9G of 8G".
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Sequence

from jobmedic.core.units import Dialect, fmt_duration, fmt_mem
from jobmedic.knowledge.outcomes import CHANGE_TITLES
from jobmedic.knowledge.remedies import wilson
from jobmedic.knowledge.rules import RuleBase, Solution

if TYPE_CHECKING:
    from jobmedic.knowledge.store import Store

#: Sources whose jobs run on Kubernetes (record_failure takes Run:AI-style events).
KUBERNETES_SOURCES = {"kubernetes", "k8s", "kubectl", "runai", "run:ai", "record_failure"}


def platform_of(job: dict[str, Any] | None) -> str | None:
    if not job:
        return None
    src = str(job.get("source") or "").lower()
    if src == "slurm":
        return "slurm"
    return "kubernetes" if src in KUBERNETES_SOURCES else None


def context_of(job: dict[str, Any] | None) -> dict[str, Any] | None:
    """The context a job's fixes are counted in: its cluster, queue and GPU/CPU class."""
    if not job:
        return None
    g = job.get("req_gpus")
    return {"cluster": job.get("cluster"), "queue": job.get("queue"),
            "gpu": None if g is None else ("gpu" if g else "cpu")}


def ranked_fixes(store: Store, rules: RuleBase, failure_type: str, scope: Sequence[str] | None,
                 platform: str | None = None, gpu: bool | None = None,
                 job: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Every applicable fix of a type with its counts, interval and (for a job) fitted change."""
    stats = {s["solution"]: s for s in store.solution_stats(failure_type, scope, context_of(job))}
    out = []
    order = 0
    seen = set()
    for sol in rules.for_type(failure_type):
        seen.add(sol.id)
        if not sol.applies(platform, gpu):
            continue
        out.append(_entry(sol.id, sol.title, "rule", stats.get(sol.id), scope, order, sol, job,
                          platform))
        order += 1
    for sid, st in stats.items():
        if sid in seen or not st["attempts"]:
            continue
        key = st.get("key") or sid.split(".", 1)[-1]
        title = (CHANGE_TITLES[key] + " (learned)" if key in CHANGE_TITLES
                 else sid.split(".", 1)[-1].replace("_", " "))
        if st["source"] == "user":
            title = st.get("key") or title
        out.append(_entry(sid, title, st["source"], st, scope, 1000 + order, None, job, platform))
        order += 1
    out.sort(key=lambda e: (-(e["lower_bound"] or 0.0), -e["attempts"], e["_order"]))
    for i, e in enumerate(out, 1):
        e["rank"] = i
        e.pop("_order")
    return out


def _entry(sid: str, title: str, source: str, st: dict[str, Any] | None, scope: Any, order: int,
           sol: Solution | None, job: dict[str, Any] | None, platform: str | None) -> dict[str, Any]:
    n = int(st["attempts"]) if st else 0
    k = int(st["successes"]) if st else 0
    lo, hi = wilson(k, n)
    e: dict[str, Any] = {
        "id": sid, "title": title, "source": source, "attempts": n, "successes": k,
        "success_rate": round(k / n, 4) if n else None,
        "interval": [round(lo, 4), round(hi, 4)] if n else None,
        "lower_bound": round(lo, 4) if n else None,
        "inferred": int(st["inferred"]) if st else 0, "_order": order,
    }
    if st and st.get("context"):
        e["context"] = st["context"]
    if scope is not None and st:
        e["attempts_in_scope"] = int(st["attempts_in_scope"])
        e["successes_in_scope"] = int(st["successes_in_scope"])
    if sol is not None:
        generic = _generic_values(sol)
        e.update({"change": dict(sol.change), "applies_to": sol.applies_to, "gpu_only": sol.gpu_only,
                  "why": sol.why,
                  **{p: _render(v, generic) for p, v in sol.variants.items()}})
        fitted = fit(sol, job, platform)
        if fitted:
            e["fitted"] = fitted
    return e


# -- fitting a change to a job ---------------------------------------------------------------
def dialect_of(platform: str | None) -> Dialect:
    """The size dialect of a platform: Kubernetes quantities, or Slurm's binary units."""
    return "k8s" if platform == "kubernetes" else "slurm"


def _round_up(x: float, step: float) -> float:
    return math.ceil(x / step) * step


def _generic_values(sol: Solution) -> dict[str, Any]:
    """Placeholder values for a fix shown without a job: the rule's own parameters."""
    ch = sol.change
    m = ch.get("multiplier")
    return {"mem": "<current>", "new_mem": f"<{m or 2.0}x current>", "time": "<current>",
            "new_time": f"<{m or 1.5}x current>", "time_s": "<current>",
            "new_time_s": f"<{m or 1.5}x current>", "cpus": "<current>",
            "new_cpus": f"<{m or 2}x current>", "gpus": "<current>", "new_gpus": "<fewer>",
            "new_nodes": "<fewer>", "nodes": "<failed node>", "node": "<failed node>"}


def fit(sol: Solution, job: dict[str, Any] | None, platform: str | None) -> dict[str, Any] | None:
    """The solution's change for this job: the text, the new values and the reason."""
    if not job:
        return None
    plat = platform or "slurm"
    ch = sol.change
    kind = ch.get("kind")
    mem, rss = job.get("req_mem_mb"), job.get("max_rss_mb")
    tl, el = job.get("timelimit_s"), job.get("elapsed_s")
    nodes = job.get("nodes") or []
    values: dict[str, Any] = {
        "job_id": job.get("job_id"), "pod": job.get("name") or job.get("job_id"),
        "image": job.get("image") or "<image>", "queue": job.get("queue") or "<partition>",
        "nodes": ",".join(nodes) or "<node>", "node": nodes[0] if nodes else "<node>",
        "mem": fmt_mem(mem, dialect_of(plat)), "time": fmt_duration(tl), "time_s": tl,
        "gpus": job.get("req_gpus"), "cpus": job.get("req_cpus"), "new_nodes": "<fewer>",
    }
    text = reason = None
    new: dict[str, Any] = {}
    if mem:
        target = max(mem * float(ch.get("multiplier", 2.0)), (rss or 0) * float(ch.get("headroom", 1.25)))
        new_mb = _round_up(target, 1024)
        values["new_mem"] = fmt_mem(new_mb, dialect_of(plat))
    if kind == "raise_memory" and mem:
        new["req_mem_mb"] = new_mb
        flag = "--mem" if plat == "slurm" else "resources.limits.memory"
        text = f"raise {flag} from {values['mem']} to {values['new_mem']}"
        reason = (f"its MaxRSS reached {fmt_mem(rss, dialect_of(plat))} of {values['mem']}" if rss
                  else f"it was killed at its {values['mem']} limit (no MaxRSS recorded)")
    elif kind == "raise_time" and tl:
        new_s = _round_up(max(tl * float(ch.get("multiplier", 1.5)), (el or 0) * 1.25), 900)
        new["timelimit_s"] = new_s
        values.update(new_time=fmt_duration(new_s), new_time_s=int(new_s))
        flag = "--time" if plat == "slurm" else "activeDeadlineSeconds"
        shown_old = values["time"] if plat == "slurm" else str(tl)
        shown_new = values["new_time"] if plat == "slurm" else str(int(new_s))
        text = f"raise {flag} from {shown_old} to {shown_new}"
        reason = (f"it ran {fmt_duration(el)} of its {values['time']} limit" if el
                  else f"it hit its {values['time']} limit")
    elif kind == "exclude_node" and nodes:
        text = (f"--exclude={values['nodes']}" if plat == "slurm"
                else f"nodeAffinity NotIn [{values['nodes']}]")
        reason = f"it failed on {values['nodes']}"
    elif kind == "reduce_gpus" and job.get("req_gpus"):
        g = int(job["req_gpus"])
        values["new_gpus"] = max(1, g // 2)
        new["req_gpus"] = values["new_gpus"]
        text = f"request {values['new_gpus']} GPUs instead of {g}"
        reason = f"it asked for {g} GPUs"
    elif kind == "raise_cpus" and job.get("req_cpus"):
        c = int(job["req_cpus"])
        values["new_cpus"] = c * int(ch.get("multiplier", 2))
        new["req_cpus"] = values["new_cpus"]
        text = f"request {values['new_cpus']} cores instead of {c}"
        reason = f"it had {c} cores"
    elif kind == "reduce_nodes" and job.get("n_nodes"):
        values["new_nodes"] = max(1, int(job["n_nodes"]) // 2)
        new["n_nodes"] = values["new_nodes"]
        text = f"run on {values['new_nodes']} nodes instead of {job['n_nodes']}"
        reason = f"it ran on {job['n_nodes']} nodes"
    template = sol.variants.get(plat) or next(iter(sol.variants.values()))
    concrete = _render(template, values)
    if text is None:
        return {"change": concrete, "summary": concrete}
    return {"change": concrete, "summary": f"{text}: {reason}", "new": new}


class _Missing(dict):
    def __missing__(self, k: str) -> str:
        return "<" + k + ">"


def _render(template: str, values: dict[str, Any]) -> str:
    safe = _Missing({k: v for k, v in values.items() if v is not None})
    try:
        return template.format_map(safe)
    except (ValueError, IndexError):  # a literal brace in the rule text
        return template
