"""The remediate action: fixes for a failure type or a job, rule-based and learned."""
from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from jobmedic.knowledge.advice import platform_of, ranked_fixes
from jobmedic.knowledge.errors import JobmedicError
from jobmedic.knowledge.graph import graph_for
from jobmedic.reports.remediate import render
from jobmedic.tools.base import ActionRequest, Invocation, ToolContext, ToolResult, ok
from jobmedic.tools.remedy_common import find_job, rules_of


class RemediateRequest(ActionRequest):
    """How to fix a failure type, or a specific failed job."""

    action: Literal["remediate"] = Field("remediate",
                                         description='The action: always "remediate".')
    failure_type: str | None = Field(None, description="A taxonomy code (oom, timeout, image_pull, ...).")
    job_id: str | None = Field(None, description="A failed job's id; fixes are fitted to its request.")
    cluster: str | None = Field(None, description="Cluster of the job, when ids repeat across clusters.")
    project: str | None = Field(None, description="Context: a project, for history learned there.")
    platform: Literal["slurm", "kubernetes"] | None = Field(None, description="Only fixes for this platform.")

    @model_validator(mode="after")
    def _one_of(self):
        if not self.failure_type and not self.job_id:
            raise ValueError("give failure_type or job_id")
        return self


def run(ctx: ToolContext, req: RemediateRequest) -> ToolResult:
    scope = ctx.effective_scope(req)
    rules = rules_of(ctx)
    store = ctx.store
    job = find_job(ctx, req.job_id, req.cluster, scope) if req.job_id else None
    if req.failure_type:
        ftype = ctx.taxonomy.check_code(req.failure_type)
    else:
        ftype = job.get("failure_type") if job else None
        if not ftype:
            raise JobmedicError(
                f"job {req.job_id!r} did not fail (state {job.get('state')}); nothing to remediate",
                hint="give --failure-type to see the fixes of a failure type")
    view = scope
    if req.project:
        project = store.resolve("project", req.project, scope)
        view = [project]
    platform = req.platform or platform_of(job)
    gpu = bool(job.get("req_gpus")) if job and job.get("req_gpus") is not None else None
    fixes = ranked_fixes(store, rules, ftype, view, platform, gpu, job)
    data: dict[str, Any] = {
        "failure_type": ftype, "description": ctx.taxonomy.describe(ftype),
        "blame": ctx.taxonomy.blame_of(ftype), "platform": platform,
        "fixes": fixes, "where": graph_for(store).where(ftype, view),
        "context_stats": _context_stats(fixes),
        "recent_outcomes": store.recent_outcomes(ftype, view),
        "rates_from": "all projects" if view is not None else "the whole store",
    }
    if job:
        data["job"] = {k: job.get(k) for k in ("cluster", "job_id", "name", "project", "user",
                                               "queue", "state", "req_mem_mb", "max_rss_mb",
                                               "timelimit_s", "elapsed_s", "req_gpus", "nodes",
                                               "image")}
    inv = Invocation(filters={k: v for k, v in {"failure_type": ftype, "job_id": req.job_id,
                                                "project": req.project, "platform": platform}.items() if v},
                     scope=scope)
    return ok("remediate", data, render(data), inv)


def _context_stats(fixes: list[dict[str, Any]]) -> dict[str, Any]:
    """Per solution, successes and attempts in this job's cluster, queue and GPU/CPU class."""
    return {f["id"]: f["context"] for f in fixes if f.get("context")}
