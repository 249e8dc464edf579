"""Advice: the fixes for a failure type, rule-based and learned, ranked honestly and, for a
specific job, fitted to what that job actually asked for and used.

Ranking (jobmedic/knowledge/fixrank.py): empirical-Bayes success rates (over all projects:
numbers only) with curated fixes as a prior, per cluster for a job (pooled towards the other
clusters), ordered by their posterior lower bound; curated solutions nobody has tried yet
follow in rule-base order, and a learned fix with fewer than three attempts after them. An OOM
on the GPU gets GPU fixes, never `--mem`. Every fix still shows its 95 % Wilson interval.
A fitted change reads like "raise --mem from 8G to 16G: its MaxRSS reached 7.9G of 8G".
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from jobmedic.core.units import Dialect, fmt_duration, fmt_mem
from jobmedic.knowledge import fixrank
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


def oom_memory(store: Store, failure_type: str, text: str | None,
               job: dict[str, Any] | None) -> str | None:
    """For an OOM: "gpu" or "host" from the text, else the job's stored failure event and
    state; None for other types or when nothing says."""
    if failure_type != "oom":
        return None
    parts = [text]
    if job:
        ev = job.get("_event")
        if ev is None and job.get("job_id") and job.get("cluster"):
            own = [job["project"]] if job.get("project") else None
            ev = store.failure_event_of(job["cluster"], job["job_id"], own)
        if ev:
            parts += [ev.get(k) for k in ("error_message", "logs_snippet", "events_snippet")]
        parts += [job.get("reason"), job.get("raw_state")]
    return fixrank.memory_kind(*(p for p in parts if isinstance(p, str)))


def ranked_fixes(store: Store, rules: RuleBase, failure_type: str, scope: Sequence[str] | None,
                 platform: str | None = None, gpu: bool | None = None,
                 job: dict[str, Any] | None = None, text: str | None = None) -> list[dict[str, Any]]:
    """Every applicable fix of a type with its counts, interval, posterior score and (for a
    job) fitted change; `text` (a pasted log) tells a GPU OOM from a host one."""
    ctx = context_of(job)
    stats = {s["solution"]: s for s in store.solution_stats(failure_type, scope, ctx)}
    memory = oom_memory(store, failure_type, text, job)
    if memory == "gpu":
        gpu = True  # a CUDA OOM ran on a GPU whatever the request says
    out = []
    order = 0
    seen = set()
    for sol in rules.for_type(failure_type):
        seen.add(sol.id)
        if not sol.applies(platform, gpu) or (memory == "gpu" and sol.memory == "host"):
            continue
        out.append(_entry(sol.id, sol.title, "rule", stats.get(sol.id), scope, order, sol, job,
                          platform))
        order += 1
    for sid, st in stats.items():
        if sid in seen or not st["attempts"]:
            continue
        from jobmedic.knowledge.outcomes import CHANGE_TITLES  # learned fixes only (start-up)

        key = st.get("key") or sid.split(".", 1)[-1]
        title = (CHANGE_TITLES[key] + " (learned)" if key in CHANGE_TITLES
                 else sid.split(".", 1)[-1].replace("_", " "))
        if st["source"] == "user":
            title = st.get("key") or title
        out.append(_entry(sid, title, st["source"], st, scope, 1000 + order, None, job, platform))
        order += 1
    prior = fixrank.fit_prior([(int(s["successes"]), int(s["attempts"])) for s in stats.values()])
    cluster = (ctx or {}).get("cluster")
    for e in out:
        st = stats.get(e["id"])
        cc = st.get("cluster_counts") if st and cluster is not None else None
        e["posterior"] = fixrank.score(prior, e["source"] == "rule", e["successes"], e["attempts"],
                                       tuple(cc) if cc else None)
        if cc:
            e["posterior"]["cluster"] = cluster
        e["score"] = e["posterior"]["low"]
        e["_tier"] = fixrank.tier(e, memory)
    out.sort(key=lambda e: (e["_tier"], -e["score"] if e["_tier"] != 1 else 0.0,
                            -e["attempts"], e["_order"]))
    for i, e in enumerate(out, 1):
        e["rank"] = i
        e.pop("_order")
        e.pop("_tier")
        if memory:
            e["oom_memory"] = memory
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
                  "why": sol.why, "memory": sol.memory,
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
