"""The remediate action: fixes for a failure type or a job, rule-based and learned."""
from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from jobmedic.tools.base import ActionRequest, ToolContext, ToolResult, error_result


class RemediateRequest(ActionRequest):
    """How to fix a failure type, or a specific failed job."""

    action: Literal["remediate"] = "remediate"
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
    return error_result("remediate", "not_implemented", "remediate is not implemented yet")
