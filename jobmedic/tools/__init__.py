"""Tools: one module per action (a request model and a run function); TOOLS is the registry."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from jobmedic.tools import (
    analyze,
    diagnose,
    predict,
    record_failure,
    record_outcome,
    remediate,
    savings,
    stats,
)
from jobmedic.tools.base import Tool, ToolContext, ToolResult, dispatch

TOOLS: list[Tool] = [
    Tool("analyze", "Find cross-job failure patterns: hot nodes, images, projects, users and queues, "
         "blame (job or cluster), time-of-day spikes and change points, ranked by impact. Use for "
         "'what is failing / breaking', 'analyze failures', 'any bad nodes?'.",
         analyze.AnalyzeRequest, analyze.run, cacheable=True, windowed=True),
    Tool("stats", "Counts and failure rates grouped by failure type, project, node, image, user, "
         "queue, day or hour, with the daily trend. Use for 'how many', 'top', 'breakdown', 'rate'.",
         stats.StatsRequest, stats.run, cacheable=True, windowed=True),
    Tool("remediate", "Fixes for a failure type or a failed job: rule-based and learned from history, "
         "ranked by success rate with counts. Use for 'how do I fix', 'what worked for'.",
         remediate.RemediateRequest, remediate.run),
    Tool("diagnose", "Why a job failed, or what a pasted error / log / kubectl describe text means: "
         "failure type, blame, evidence line, root cause, similar past failures, fixes.",
         diagnose.DiagnoseRequest, diagnose.run),
    Tool("predict", "Before submitting: failure risk, runtime and memory with intervals and a "
         "recommended request, for a job spec or a known job id.",
         predict.PredictRequest, predict.run),
    Tool("savings", "Core-hours and GB-hours requested but unused over a window, and what the "
         "recommended requests at a retry budget would have saved and killed, per user, project "
         "and queue. Use for 'how much are we wasting', 'what would right-sizing save'.",
         savings.SavingsRequest, savings.run, windowed=True),
    Tool("record_failure", "Store one failure event (Run:AI-style fields) and classify it.",
         record_failure.RecordFailureRequest, record_failure.run, writes=True),
    Tool("record_outcome", "Record that a fix was tried on a failed job or failure type, and whether "
         "it worked, so future rankings learn from it.",
         record_outcome.RecordOutcomeRequest, record_outcome.run, writes=True),
]



def tool_named(name: str) -> Tool:
    """The registered tool called `name` (KeyError when there is none)."""
    for t in TOOLS:
        if t.name == name:
            return t
    raise KeyError(name)


def run_action(payload: dict[str, Any] | str | bytes, ctx: ToolContext,
               tools: Sequence[Tool] | None = None) -> ToolResult:
    """Validate a flat JSON request, run its action (one of `tools`, by default TOOLS), and
    always return an envelope: the one entry point of every surface."""
    return dispatch(payload, ctx, TOOLS if tools is None else tools)


WRITE_ACTIONS = frozenset(t.name for t in TOOLS if t.writes)
CACHEABLE_ACTIONS = frozenset(t.name for t in TOOLS if t.cacheable)
WINDOWED_ACTIONS = frozenset(t.name for t in TOOLS if t.windowed)

__all__ = ["CACHEABLE_ACTIONS", "TOOLS", "WINDOWED_ACTIONS", "WRITE_ACTIONS", "Tool", "ToolContext", "ToolResult", "run_action", "tool_named"]
