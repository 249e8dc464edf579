"""The record_failure action: store one Run:AI-style failure event and classify it."""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from jobmedic.tools.base import ActionRequest, ToolContext, ToolResult, error_result


class RecordFailureRequest(ActionRequest):
    """One failure event with the Run:AI-style fields; classified when failure_type is absent."""

    action: Literal["record_failure"] = "record_failure"
    job_name: str = Field(..., min_length=1, max_length=512, description="Job or workload name.")
    project: str | None = Field(None, max_length=256, description="Project / namespace.")
    user: str | None = Field(None, max_length=256, description="Submitting user.")
    cluster: str | None = Field(None, max_length=256, description="Cluster (default from configuration).")
    job_id: str | None = Field(None, max_length=256, description="Scheduler job id, when there is one.")
    failure_type: str | None = Field(None, description="A taxonomy code; classified from the text when absent.")
    phase: str | None = Field(None, max_length=128, description="Pod / job phase or reason (Failed, OOMKilled, ...).")
    timestamp: str | None = Field(None, description="When it failed (ISO or epoch; default now).")
    pod_name: str | None = Field(None, max_length=512)
    node_name: str | None = Field(None, max_length=512)
    container_image: str | None = Field(None, max_length=1024)
    error_message: str | None = Field(None, max_length=1_000_000)
    logs_snippet: str | None = Field(None, max_length=1_000_000)
    events_snippet: str | None = Field(None, max_length=1_000_000)
    gpu_count: int | None = Field(None, ge=0, le=100_000)
    memory_request: str | None = Field(None, max_length=64, description="e.g. 64Gi, 4000M.")
    cpu_request: str | None = Field(None, max_length=64, description="e.g. 8, 500m.")


def run(ctx: ToolContext, req: RecordFailureRequest) -> ToolResult:
    return error_result("record_failure", "not_implemented", "record_failure is not implemented yet")
