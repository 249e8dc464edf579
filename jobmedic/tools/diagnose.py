"""The diagnose action: why a job failed, or what a pasted error text means."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, model_validator

from jobmedic.core.units import fmt_duration, fmt_mem
from jobmedic.knowledge.advice import dialect_of, platform_of, ranked_fixes
from jobmedic.knowledge.graph import graph_for
from jobmedic.knowledge.readout import read_text
from jobmedic.knowledge.rootcause import root_cause
from jobmedic.reports.diagnose import render
from jobmedic.tools.base import ActionRequest, Invocation, ToolContext, ToolResult, error_result, ok
from jobmedic.tools.remedy_common import find_job, rules_of, templates_for

if TYPE_CHECKING:
    from jobmedic.knowledge.store import Store

MAX_TEXT = 10 * 1024 * 1024
ANALYSED = 200_000  # characters classified: the first and the last half of a longer text
K8S_HINTS = ("kubectl", "Events:", "Namespace:", "kubelet", "Pod ", "pod/", "Container ID:")
SLURM_HINTS = ("slurmstepd", "sbatch", "srun", "sacct", "SLURM_", "MaxRSS", "seff")


class DiagnoseRequest(ActionRequest):
    """Failure type, blame, evidence lines, root cause, similar past failures and fixes."""

    action: Literal["diagnose"] = Field("diagnose",
                                        description='The action: always "diagnose".')
    job_id: str | None = Field(None, description="A job id (or pod / job name) in the store.")
    text: str | None = Field(None, max_length=MAX_TEXT,
                             description="A pasted error message, log excerpt or kubectl describe output.")
    cluster: str | None = Field(None, description="Cluster of the job, when ids repeat across clusters.")

    @model_validator(mode="after")
    def _one_of(self):
        if not self.job_id and self.text is None:
            raise ValueError("give job_id or text")
        return self


def run(ctx: ToolContext, req: DiagnoseRequest) -> ToolResult:
    scope = ctx.effective_scope(req)
    inv = Invocation(filters={k: v for k, v in {"job_id": req.job_id, "cluster": req.cluster,
                                                "text_chars": len(req.text) if req.text else None
                                                }.items() if v is not None}, scope=scope)
    notes: list[str] = []
    job = None
    if req.job_id:
        job = find_job(ctx, req.job_id, req.cluster, scope)
        text = _job_text(ctx, job, req.text)
    else:
        text = req.text or ""
        if not text.strip():
            return error_result("diagnose", "invalid_field", "the pasted text is empty: nothing to diagnose",
                                "paste the error message, the end of the job's log, or the output of "
                                "`kubectl describe pod NAME`", "text", inv)
    if len(text) > ANALYSED:
        half = ANALYSED // 2
        notes.append(f"the text has {len(text):,} characters; only the first and the last "
                     f"{half:,} were analysed")
        text = text[:half] + "\n" + text[-half:]
    data = diagnose_text(ctx, text, job, scope)
    data["notes"] = notes + data.get("notes", [])
    return ok("diagnose", data, render(data), inv)


def _job_text(ctx: ToolContext, job: dict[str, Any], extra: str | None) -> str:
    own = [job["project"]] if job.get("project") else None  # never another project's event
    ev = job.get("_event") or (ctx.store.failure_event_of(job["cluster"], job["job_id"], own)
                               if job.get("job_id") else None)
    job["_event"] = ev
    parts = [extra] if extra else []
    if ev:
        parts += [ev.get(k) for k in ("error_message", "logs_snippet", "events_snippet")]
    if job.get("reason") and job.get("reason") not in ("None", "(null)"):
        parts.append(job["reason"])
    return "\n".join(p for p in parts if p)


def diagnose_text(ctx: ToolContext, text: str, job: dict[str, Any] | None, scope: Any) -> dict[str, Any]:
    """Classification, evidence, root cause, similar failures and fixes for a text (and job)."""
    store, tax = ctx.store, ctx.taxonomy
    rd = read_text(tax, text)
    if rd.failure_type == "unknown" and not job:
        _from_templates(store, rd, scope)
    text_type, symptom, evidence = rd.failure_type, rd.symptom, list(rd.evidence)
    ftype, blame, rule = text_type, tax.blame_of(text_type), rd.rule
    decided_by, confidence = rd.decided_by, rd.confidence
    if job and job.get("failure_type"):
        if ftype in ("unknown", "app_error") or job["failure_type"] not in ("unknown", "app_error"):
            ftype, blame = job["failure_type"], job.get("blame") or tax.blame_of(job["failure_type"])
            rule = f"stored:{job.get('raw_state') or job.get('state')}"
            decided_by, confidence = "stored", 1.0
            if text_type != ftype:  # the text's lines are about something else
                evidence = []
            state_line = f"state {job.get('raw_state') or job.get('state')}"
            if job.get("exit_code") is not None:
                state_line += f", exit code {job['exit_code']}" + (f":{job['signal']}" if job.get("signal") else "")
            evidence = [state_line] + evidence
    elif job and job.get("state") not in (None, "failed", "timeout", "oom", "node_fail", "preempted", "cancelled"):
        return {"job": _job_summary(job), "failure_type": None, "blame": None, "evidence": [],
                "notes": [f"job {job['job_id']} did not fail (state {job.get('state')})"],
                "similar": [], "fixes": []}
    rc = root_cause(ftype, text)
    cause = rc.to_dict() if rc else _job_cause(ftype, job)
    if rc and rc.line and rc.line not in evidence and text_type == ftype and len(evidence) < 4:
        evidence.append(rc.line)
    template_id = job.get("template_id") if job else None
    if template_id is None and evidence:
        template_id = templates_for(store).template_of(evidence[-1] if rule.startswith("stored")
                                                       else evidence[0])[0]
    node = (job.get("nodes") or [None])[0] if job else None
    image = job.get("image") if job else None
    similar = _similar(store, ftype, template_id, node, image, job, scope)
    platform = platform_of(job) or _guess_platform(text)
    gpu = bool(job.get("req_gpus")) if job and job.get("req_gpus") is not None else None
    fixes = ranked_fixes(store, rules_of(ctx), ftype, scope, platform, gpu, job, text) if ftype else []
    data: dict[str, Any] = {
        "failure_type": ftype, "blame": blame, "description": tax.describe(ftype), "rule": rule,
        "decided_by": decided_by, "confidence": confidence,
        "symptom": symptom, "evidence": evidence[:6], "root_cause": cause,
        "template_id": template_id, "platform": platform, "similar": similar, "fixes": fixes[:3],
        "related": graph_for(store).related("node", node, scope, 5) if node else [],
    }
    if job:
        data["job"] = _job_summary(job)
    if rd.alternatives:
        data["alternatives"] = [{"failure_type": c, "probability": p} for c, p in rd.alternatives]
    data["notes"] = list(rd.notes)
    if ftype == "unknown":
        data["considered"] = rd.considered
        data["notes"].append("no known failure pattern in the text; paste more of the log (its "
                             "last lines) or the scheduler's state")
    return data


def _from_templates(store: Store, rd: Any, scope: Any) -> None:
    """When neither rules nor classifier decide: a considered line whose log template matches
    past failures of one type in the store decides (the share of them is the confidence)."""
    miner = templates_for(store)
    for line in rd.considered:
        tid = miner.template_of(line)[0]
        if tid is None:
            continue
        rows = [r for r in store.similar_failures("unknown", tid, None, None, None, scope)
                if r["template_id"] == tid and r["failure_type"] not in (None, "unknown")]
        if not rows:
            continue
        types = [r["failure_type"] for r in rows]
        top = max(set(types), key=types.count)
        rd.failure_type, rd.decided_by, rd.rule = top, "template", f"template:{tid}"
        rd.confidence = round(0.7 * types.count(top) / len(types), 2)
        rd.evidence = [line]
        return


def _job_summary(job: dict[str, Any]) -> dict[str, Any]:
    return {k: job.get(k) for k in ("cluster", "job_id", "name", "project", "user", "queue", "state",
                                    "raw_state", "exit_code", "req_mem_mb", "max_rss_mb",
                                    "timelimit_s", "elapsed_s", "req_gpus", "nodes", "image")}


def _job_cause(ftype: str, job: dict[str, Any] | None) -> dict[str, Any] | None:
    """A root cause from the job's own numbers when the text names none."""
    if not job:
        return None
    plat = platform_of(job)
    if ftype == "oom" and job.get("req_mem_mb"):
        req, rss = job["req_mem_mb"], job.get("max_rss_mb")
        if rss:
            return {"phrase": f"MaxRSS {fmt_mem(rss, dialect_of(plat))} reached {100 * rss / req:.0f}% of the "
                              f"{fmt_mem(req, dialect_of(plat))} requested", "max_rss_mb": rss, "req_mem_mb": req}
        return {"phrase": f"killed at its {fmt_mem(req, dialect_of(plat))} memory limit", "req_mem_mb": req}
    if ftype == "timeout" and job.get("timelimit_s"):
        return {"phrase": f"ran {fmt_duration(job.get('elapsed_s'))} of its {fmt_duration(job['timelimit_s'])} "
                          f"time limit", "timelimit_s": job["timelimit_s"]}
    if ftype in ("node_failure", "gpu_error", "nccl_error") and job.get("nodes"):
        return {"phrase": "failed on " + ", ".join(job["nodes"][:8]), "nodes": job["nodes"][:8]}
    return None


def _similar(store: Store, ftype: str, template_id: int | None, node: str | None, image: str | None,
             job: dict[str, Any] | None, scope: Any, limit: int = 5) -> list[dict[str, Any]]:
    """Past failures weighted by what they share (template 3, node 1.5, image 1, type 1)."""
    exclude = (job["cluster"], job["job_id"]) if job else None
    cands = store.similar_failures(ftype, template_id, node, image, exclude, scope)
    for r in cands:
        r["score"] = (3.0 * (template_id is not None and r["template_id"] == template_id)
                      + 1.0 * (r["failure_type"] == ftype) + 1.5 * (node is not None and r["node_name"] == node)
                      + 1.0 * (image is not None and r["container_image"] == image))
    cands.sort(key=lambda r: (-r["score"], -(r["timestamp"] or 0)))
    top = cands[:limit]
    fixes = store.outcomes_for_jobs([(r["cluster"], r["job_id"]) for r in top if r["job_id"]], scope)
    by_job: dict[str, list] = {}
    for f in fixes:
        by_job.setdefault(f["failed_job"], []).append(f)
    for r in top:
        r["fixed_by"] = by_job.get(r["job_id"], [])
    return top


def _guess_platform(text: str) -> str | None:
    k = sum(h in text for h in K8S_HINTS)
    s = sum(h in text for h in SLURM_HINTS)
    return "kubernetes" if k > s else "slurm" if s > k else None
