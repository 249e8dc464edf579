"""The record_outcome action: a fix was tried for a failed job or a failure type; did it work."""
from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from jobmedic.tools.base import ActionRequest, ToolContext, ToolResult, error_result


class RecordOutcomeRequest(ActionRequest):
    """Record that a solution was tried, and whether it worked."""

    action: Literal["record_outcome"] = "record_outcome"
    job_id: str | None = Field(None, description="The failed job the fix was applied to.")
    cluster: str | None = Field(None, description="Cluster of the job.")
    failure_type: str | None = Field(None, description="The failure type, when no job is named.")
    solution: str = Field(..., min_length=1, max_length=2000,
                          description="A solution id, or the fix in words (matched to a known one).")
    success: bool = Field(..., description="Did the fix work?")
    note: str | None = Field(None, max_length=10_000)
    followup_job: str | None = Field(None, description="The job that ran with the fix, if any.")
    recorded_by: str | None = Field(None, max_length=256)

    @model_validator(mode="after")
    def _one_of(self):
        if not self.job_id and not self.failure_type:
            raise ValueError("give job_id or failure_type")
        return self


def run(ctx: ToolContext, req: RecordOutcomeRequest) -> ToolResult:
    return error_result("record_outcome", "not_implemented", "record_outcome is not implemented yet")
