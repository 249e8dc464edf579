"""The analyze action: cross-job patterns, hotspots, blame, time spikes and change points."""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from jobmedic.tools.base import ToolContext, ToolResult, WindowedRequest, error_result


class AnalyzeRequest(WindowedRequest):
    """Find what is failing, where and since when, ranked by impact."""

    action: Literal["analyze"] = "analyze"
    project: str | None = Field(None, description="Only jobs of this project (Slurm account, namespace, Run:AI project).")
    cluster: str | None = Field(None, description="Only jobs of this cluster.")
    node: str | None = Field(None, description="Only jobs that ran on this node.")
    image: str | None = Field(None, description="Only jobs that used this container image.")
    user: str | None = Field(None, description="Only jobs of this user.")
    queue: str | None = Field(None, description="Only jobs of this queue / partition.")
    max_findings: int = Field(20, ge=1, le=200, description="Most findings to report.")


def run(ctx: ToolContext, req: AnalyzeRequest) -> ToolResult:
    return error_result("analyze", "not_implemented", "analyze is not implemented yet")
