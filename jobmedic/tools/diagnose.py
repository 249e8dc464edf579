"""The diagnose action: why a job failed, or what a pasted error text means."""
from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from jobmedic.tools.base import ActionRequest, ToolContext, ToolResult, error_result

MAX_TEXT = 10 * 1024 * 1024


class DiagnoseRequest(ActionRequest):
    """Failure type, blame, evidence lines, root cause, similar past failures and fixes."""

    action: Literal["diagnose"] = "diagnose"
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
    return error_result("diagnose", "not_implemented", "diagnose is not implemented yet")
