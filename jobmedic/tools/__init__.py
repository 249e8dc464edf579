"""Tools: one module per action (a request model and a run function); TOOLS is the registry.

The registry is lazy (issue 16 item 6): each entry knows its action's name, one-line summary,
description and facts (writes, cacheable, windowed) without importing the action's module; the
request model and the run function are imported on first use. `jobmedic act '{"action":
"stats"}'` therefore imports the stats tool only, and `jobmedic --help` none of them.
"""
from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jobmedic.tools.base import ActionRequest, Tool, ToolContext, ToolResult

#: Names re-exported from jobmedic.tools.base, imported on first use (module __getattr__) so
#: that listing the actions (`jobmedic --help`) does not import pydantic and the store.
_FROM_BASE = ("Tool", "ToolContext", "ToolResult")


def __getattr__(name: str) -> Any:
    if name in _FROM_BASE:
        from jobmedic.tools import base

        return getattr(base, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class LazyTool:
    """A registry entry with the attributes of a Tool (jobmedic.tools.base), whose request
    model and run function live in `module` and are imported the first time either is read;
    everything else is declared here. `summary` is the request model's one-line docstring (the
    CLI lists commands with it; tests check they agree). Read-only, like a Tool."""

    def __init__(self, name: str, description: str, *, summary: str, module: str, request: str,
                 writes: bool = False, cacheable: bool = False, windowed: bool = False) -> None:
        for key, value in (("name", name), ("description", description), ("summary", summary),
                           ("module", module), ("request", request), ("writes", writes),
                           ("cacheable", cacheable), ("windowed", windowed)):
            object.__setattr__(self, key, value)

    def __setattr__(self, key: str, value: Any) -> None:
        raise AttributeError(f"registry entry {self.name!r} is read-only")

    def _module(self) -> Any:
        return importlib.import_module(f"{__name__}.{self.module}")

    @property
    def request_model(self) -> type[ActionRequest]:  # type: ignore[override]
        return getattr(self._module(), self.request)

    @property
    def run(self) -> Callable[[ToolContext, Any], ToolResult]:  # type: ignore[override]
        return self._module().run

    def __repr__(self) -> str:
        return f"LazyTool({self.name!r}, module={self.module!r})"


TOOLS: list[Tool] = [  # LazyTool entries (a Tool's attributes)
    LazyTool("analyze", "Find cross-job failure patterns: hot nodes, images, projects, users and "
             "queues, blame (job or cluster), time-of-day spikes and change points, ranked by "
             "impact. Use for 'what is failing / breaking', 'analyze failures', 'any bad nodes?'.",
             summary="Find what is failing, where and since when, ranked by impact.",
             module="analyze", request="AnalyzeRequest", cacheable=True, windowed=True),
    LazyTool("stats", "Counts and failure rates grouped by failure type, project, node, image, "
             "user, queue, day or hour, with the daily trend. Use for 'how many', 'top', "
             "'breakdown', 'rate'.",
             summary="Counts of failures and jobs, failure rates, and the daily trend.",
             module="stats", request="StatsRequest", cacheable=True, windowed=True),
    LazyTool("remediate", "Fixes for a failure type or a failed job: rule-based and learned from "
             "history, ranked by success rate with counts. Use for 'how do I fix', 'what worked "
             "for'.",
             summary="How to fix a failure type, or a specific failed job.",
             module="remediate", request="RemediateRequest"),
    LazyTool("diagnose", "Why a job failed, or what a pasted error / log / kubectl describe text "
             "means: failure type, blame, evidence line, root cause, similar past failures, "
             "fixes.",
             summary="Failure type, blame, evidence lines, root cause, similar past failures "
                     "and fixes.",
             module="diagnose", request="DiagnoseRequest"),
    LazyTool("predict", "Before submitting: failure risk, runtime and memory with intervals and "
             "a recommended request, for a job spec or a known job id.",
             summary="Will this job fail, how long will it run, how much memory does it need.",
             module="predict", request="PredictRequest"),
    LazyTool("savings", "Core-hours and GB-hours requested but unused over a window, and what "
             "the recommended requests at a retry budget would have saved and killed, per user, "
             "project and queue. Use for 'how much are we wasting', 'what would right-sizing "
             "save'.",
             summary="Requested-but-unused resources and what the recommendations would have "
                     "saved.",
             module="savings", request="SavingsRequest", windowed=True),
    LazyTool("record_failure", "Store one failure event (Run:AI-style fields) and classify it.",
             summary="One failure event with the Run:AI-style fields; classified when "
                     "failure_type is absent.",
             module="record_failure", request="RecordFailureRequest", writes=True),
    LazyTool("record_outcome", "Record that a fix was tried on a failed job or failure type, and "
             "whether it worked, so future rankings learn from it.",
             summary="Record that a solution was tried, and whether it worked.",
             module="record_outcome", request="RecordOutcomeRequest", writes=True),
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
    always return an envelope: the one entry point of every surface. Only the module of the
    action asked for is imported."""
    from jobmedic.tools.base import dispatch

    return dispatch(payload, ctx, TOOLS if tools is None else tools)


WRITE_ACTIONS = frozenset(t.name for t in TOOLS if t.writes)
CACHEABLE_ACTIONS = frozenset(t.name for t in TOOLS if t.cacheable)
WINDOWED_ACTIONS = frozenset(t.name for t in TOOLS if t.windowed)

__all__ = ["CACHEABLE_ACTIONS", "TOOLS", "WINDOWED_ACTIONS", "WRITE_ACTIONS", "LazyTool", "Tool",
           "ToolContext", "ToolResult", "run_action", "tool_named"]
