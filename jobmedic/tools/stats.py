"""The stats action: counts and failure rates grouped by a whitelisted dimension, and trend."""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from jobmedic.tools.base import ToolContext, ToolResult, WindowedRequest, error_result

GroupBy = Literal["failure_type", "project", "node", "image", "user", "queue", "cluster",
                  "blame", "state", "day", "hour"]


class StatsRequest(WindowedRequest):
    """Counts of failures and jobs, failure rates, and the daily trend."""

    action: Literal["stats"] = "stats"
    group_by: list[GroupBy] = Field(["failure_type"], min_length=1, max_length=3,
                                    description="Dimensions to group by (one table each).")
    project: str | None = Field(None, description="Only jobs of this project.")
    cluster: str | None = Field(None, description="Only jobs of this cluster.")
    node: str | None = Field(None, description="Only jobs that ran on this node.")
    image: str | None = Field(None, description="Only jobs that used this image.")
    user: str | None = Field(None, description="Only jobs of this user.")
    queue: str | None = Field(None, description="Only jobs of this queue / partition.")
    failure_type: str | None = Field(None, description="Only failures of this taxonomy code.")
    top: int = Field(15, ge=1, le=500, description="Rows per table.")


def run(ctx: ToolContext, req: StatsRequest) -> ToolResult:
    return error_result("stats", "not_implemented", "stats is not implemented yet")
