"""The predict action: failure risk, runtime and memory for a job spec or a known job."""
from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from jobmedic.tools.base import ActionRequest, ToolContext, ToolResult, error_result


class PredictRequest(ActionRequest):
    """Will this job fail, how long will it run, how much memory does it need."""

    action: Literal["predict"] = "predict"
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

    @model_validator(mode="after")
    def _something(self):
        if not self.job_id and not any((self.user, self.project, self.queue, self.image, self.name,
                                        self.req_cpus, self.req_gpus, self.req_mem_mb,
                                        self.req_walltime_s)):
            raise ValueError("give job_id or at least one field of the job spec")
        return self


def run(ctx: ToolContext, req: PredictRequest) -> ToolResult:
    return error_result("predict", "not_implemented", "predict is not implemented yet")
