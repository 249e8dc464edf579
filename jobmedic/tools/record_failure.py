"""The record_failure action: store one Run:AI-style failure event and classify it.

Without a failure_type the event is classified from its phase and texts (the taxonomy, then
past symptoms such as CrashLoopBackOff to a cause the text names) and templated with the
store's Drain3 miner. The dedup key (project, cluster, job id or name, pod, timestamp, type)
makes a repeated report of the same event a no-op; it is per project, so one project's events
never make another's report a "duplicate". A scoped caller writes only onto its own projects'
jobs: naming another project's job is refused in the store (ScopeError, HTTP 403), and the
event is stored with the job's own project.
"""
from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from jobmedic.core import validate
from jobmedic.ingest.base import event_tuple
from jobmedic.knowledge.rootcause import classify_deep, root_cause
from jobmedic.knowledge.templates import Templates, template_line
from jobmedic.reports.records import render_failure
from jobmedic.tools.base import (
    ActionRequest,
    Invocation,
    ToolContext,
    ToolResult,
    error_result,
    ok,
    parse_time_arg,
)


class RecordFailureRequest(ActionRequest):
    """One failure event with the Run:AI-style fields; classified when failure_type is absent."""

    action: Literal["record_failure"] = Field("record_failure",
                                              description='The action: always "record_failure".')
    job_name: str = Field(..., min_length=1, max_length=512, description="Job or workload name.")
    project: str | None = Field(None, max_length=256, description="Project / namespace.")
    user: str | None = Field(None, max_length=256, description="Submitting user.")
    cluster: str | None = Field(None, max_length=256, description="Cluster (default from configuration).")
    job_id: str | None = Field(None, max_length=256, description="Scheduler job id, when there is one.")
    failure_type: str | None = Field(None, description="A taxonomy code; classified from the text when absent.")
    phase: str | None = Field(None, max_length=128, description="Pod / job phase or reason (Failed, OOMKilled, ...).")
    timestamp: str | None = Field(None, description="When it failed (ISO or epoch; default now).")
    pod_name: str | None = Field(None, max_length=512,
                                 description="Pod name (Kubernetes, Run:AI).")
    node_name: str | None = Field(None, max_length=512, description="Node it ran on.")
    container_image: str | None = Field(None, max_length=1024,
                                        description="Container image.")
    error_message: str | None = Field(None, max_length=1_000_000,
                                      description="The error message (classified for the failure type).")
    logs_snippet: str | None = Field(None, max_length=1_000_000,
                                     description="The end of the job's log, when there is one.")
    events_snippet: str | None = Field(None, max_length=1_000_000,
                                       description="Kubernetes events (kubectl describe).")
    gpu_count: int | None = Field(None, ge=0, le=100_000,
                                  description="GPUs the job requested.")
    memory_request: str | None = Field(None, max_length=64, description="e.g. 64Gi, 4000M.")
    cpu_request: str | None = Field(None, max_length=64, description="e.g. 8, 500m.")

    @field_validator("timestamp")
    @classmethod
    def _check_timestamp(cls, v: str | None) -> str | None:
        return validate.request_time(v, "timestamp")  # 1970 .. now + 1 year, before any write


def run(ctx: ToolContext, req: RecordFailureRequest) -> ToolResult:
    scope = ctx.effective_scope(req)
    inv = Invocation(filters={"job_name": req.job_name, "project": req.project}, scope=scope)
    project = req.project
    if scope is not None:
        if project is None and len(scope) == 1:
            project = scope[0]
        if project not in scope:
            return error_result("record_failure", "not_found",
                                f"project {project!r} is not one of your projects" if project
                                else "give the project this failure belongs to",
                                "your projects: " + ", ".join(scope), "project", inv)
    ts = parse_time_arg(req.timestamp, "timestamp") if req.timestamp else ctx.current_time()
    cluster = req.cluster or ctx.default_cluster
    project = ctx.store.write_project(cluster, req.job_id, project, scope)  # ScopeError: not yours
    text = "\n".join(t for t in (req.error_message, req.logs_snippet, req.events_snippet) if t)
    evidence: list[str] = []
    if req.failure_type:
        code = ctx.taxonomy.check_code(req.failure_type)
        blame, rule = ctx.taxonomy.blame_of(code), "given"
    else:
        c, _symptom, evidence = classify_deep(ctx.taxonomy, text[:200_000], req.phase)
        code, blame, rule = c.failure_type, c.blame, c.rule
        if code == "unknown" and req.phase and req.phase.lower() == "failed":
            code, blame, rule = "app_error", ctx.taxonomy.blame_of("app_error"), "phase:Failed"
    rc = root_cause(code, text[:200_000])
    templates = Templates(ctx.store.load_templates())
    line = template_line(text, evidence[0] if evidence else None) if text else ""
    template_id = templates.add(line, code, ts) if line else None
    ev = {**req.model_dump(exclude={"action", "allowed_projects", "timestamp", "failure_type"}),
          "cluster": cluster, "project": project, "failure_type": code, "blame": blame,
          "timestamp": ts, "template_id": template_id, "evidence": evidence[0] if evidence else None,
          "source": "record_failure", "resolved": 0}
    dedup = (f"event:{project or ''}:{cluster}:{req.job_id or req.job_name}:{req.pod_name or ''}:"
             f"{ts}:{code}")
    with ctx.store.transaction():
        added = ctx.store.add_failure_events([event_tuple(ev, dedup)], scope)
        pending = templates.drain_pending()
        if pending and added:
            ctx.store.save_templates(pending)
    data: dict[str, Any] = {
        "recorded": bool(added), "duplicate": not added, "cluster": cluster,
        "job_name": req.job_name, "project": project, "failure_type": code, "blame": blame,
        "rule": rule, "evidence": evidence, "root_cause": rc.to_dict() if rc else None,
        "template_id": template_id, "timestamp": ts,
    }
    return ok("record_failure", data, render_failure(data), inv)
