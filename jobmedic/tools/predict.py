"""The predict action: failure risk, runtime and memory for a job spec or a known job."""
from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from jobmedic.core import validate
from jobmedic.core.timeutil import iso
from jobmedic.knowledge.errors import ModelError
from jobmedic.reports.predict import render
from jobmedic.tools.base import (
    ActionRequest,
    Invocation,
    ToolContext,
    ToolResult,
    ok,
    parse_time_arg,
)

DEFAULT_LEVELS = {"moderate": 0.3, "high": 0.6, "critical": 0.8}
SPEC_FIELDS = ("cluster", "user", "project", "queue", "qos", "image", "name", "req_cpus",
               "req_gpus", "req_mem_mb", "req_walltime_s", "n_nodes")


class PredictRequest(ActionRequest):
    """Will this job fail, how long will it run, how much memory does it need."""

    action: Literal["predict"] = Field("predict",
                                       description='The action: always "predict".')
    job_id: str | None = Field(None, description="Predict for a job already in the store.")
    cluster: str | None = Field(None, description="Cluster of the job or of the spec.")
    user: str | None = Field(None, description="Submitting user (unknown users are allowed: cold start).")
    project: str | None = Field(None, description="Project / account.")
    queue: str | None = Field(None, description="Queue / partition.")
    qos: str | None = Field(None, description="Quality of service.")
    image: str | None = Field(None, description="Container image.")
    name: str | None = Field(None, description="Job name.")
    req_cpus: int | None = Field(None, ge=1, le=1_000_000, description="Requested CPUs, 1..1,000,000.")
    req_gpus: int | None = Field(None, ge=0, le=100_000, description="Requested GPUs, 0..100,000.")
    req_mem_mb: float | None = Field(None, gt=0, le=1e9, description="Requested memory in MB, up to 1 PB.")
    req_walltime_s: int | None = Field(None, gt=0, le=366 * 86400,
                                       description="Requested time limit in seconds, up to one year.")
    n_nodes: int | None = Field(None, ge=1, le=100_000, description="Requested nodes.")
    submit_time: str | None = Field(None, description="When it will be submitted (default now).")
    running: bool = Field(False, description="List the running jobs (in scope; project, user, "
                          "queue and cluster filter them) with their early-warning score and "
                          "memory-kill estimate, riskiest first, instead of predicting one job.")
    top: int = Field(20, ge=1, le=500, description="With running: the most jobs listed.")
    retry_budget: float | None = Field(None, ge=0.001, le=0.5,
                                       description="Acceptable share of killed runs (0.001..0.5; default "
                                                   "the cluster's, 2 %): returns the time and memory "
                                                   "request meeting it, calibrated on held-out history.")

    @field_validator("submit_time")
    @classmethod
    def _check_submit(cls, v: str | None) -> str | None:
        return validate.request_time(v, "submit_time", stored=False)  # finite, a real date

    @model_validator(mode="after")
    def _something(self):
        if self.running:
            return self
        if not self.job_id and not any((self.user, self.project, self.queue, self.image, self.name,
                                        self.req_cpus, self.req_gpus, self.req_mem_mb,
                                        self.req_walltime_s)):
            raise ValueError("give job_id, at least one field of the job spec, or running: true")
        return self


def _spec(ctx: ToolContext, req: PredictRequest, scope) -> tuple[dict, int, dict | None]:
    """(spec in job-frame names, submit time, the stored job or None)."""
    if req.job_id:
        job = ctx.store.get_job(req.job_id, req.cluster, scope)
        if job is None:
            from jobmedic.tools.remedy_common import job_not_found

            raise job_not_found(ctx, req.job_id, req.cluster, scope)
        spec = {k: job.get(k) for k in ("user", "project", "queue", "qos", "image", "name",
                                        "req_cpus", "req_gpus", "req_mem_mb", "timelimit_s", "n_nodes")}
        return spec, int(job.get("submit_time") or ctx.current_time()), job
    spec = {k: getattr(req, k) for k in SPEC_FIELDS if k != "req_walltime_s"}
    spec["timelimit_s"] = req.req_walltime_s
    now = parse_time_arg(req.submit_time, "submit_time") if req.submit_time else ctx.current_time()
    return spec, now, None


def run(ctx: ToolContext, req: PredictRequest) -> ToolResult:
    scope = ctx.effective_scope(req)
    levels = DEFAULT_LEVELS | dict(ctx.risk_levels)
    if req.running:  # the running jobs at risk
        from jobmedic.tools import predict_running

        return predict_running.run(ctx, req, scope, levels)
    spec, now, job = _spec(ctx, req, scope)
    if ctx.models_dir is None:
        raise ModelError("this store has no model folder, so there is no model to predict with",
                         "train one first: `jobmedic train failure`")
    from jobmedic.models.predictor import predict_one  # XGBoost loads only when predicting

    cluster = req.cluster or (job or {}).get("cluster")
    budget = req.retry_budget if req.retry_budget is not None else ctx.retry_budget(cluster)
    data = predict_one(ctx.store, spec, now, ctx.models_dir, levels, scope,
                       cluster=cluster, retry_budget=budget)
    data["spec"] = {k: v for k, v in spec.items() if v is not None}
    data["submit_time"] = iso(now)
    if job is not None:
        data["job"] = {"job_id": job["job_id"], "cluster": job["cluster"], "state": job["state"],
                       "elapsed_s": job.get("elapsed_s"), "max_rss_mb": job.get("max_rss_mb")}
    if job is not None and job.get("state") == "running":  # early warning from its samples
        from jobmedic.models.early_running import assess

        data["running"] = assess(ctx.store, job, ctx.current_time(), ctx.models_dir, scope)
    inv = Invocation(window={"history_before": iso(now)},
                     filters={k: v for k, v in req.model_dump().items()
                              if v is not None and k not in ("action", "allowed_projects")},
                     scope=scope)
    return ok("predict", data, render(data, levels), inv)
