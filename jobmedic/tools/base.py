"""The action envelope shared by every tool, the request base models, and `run_action`,
the one entry point the CLI, the HTTP API and the agent use to run an action.

Every answer is a `ToolResult`: status ok / no_data / error, the data, a markdown report,
and the invocation (window, filters, scope) it was computed from. Errors name what was asked,
what went wrong and what to try next; they never carry a traceback.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from difflib import get_close_matches
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from jobmedic.core import validate
from jobmedic.core.scope import narrow
from jobmedic.core.timeutil import Window, iso, now_epoch, parse_time_arg
from jobmedic.knowledge.errors import JobmedicError, NotFound
from jobmedic.knowledge.rules import RuleBase
from jobmedic.knowledge.store import Store
from jobmedic.knowledge.taxonomy import Taxonomy

Status = Literal["ok", "no_data", "error"]
MAX_LOOKBACK_DAYS = 3650


class ErrorInfo(BaseModel):
    type: str
    message: str
    hint: str = ""
    field: str | None = None
    suggestions: list[dict[str, Any]] | None = None  # closest existing names (a job id not found)


class Invocation(BaseModel):
    window: dict[str, Any] | None = None
    filters: dict[str, Any] = {}
    scope: list[str] | None = None


class ToolResult(BaseModel):
    """The envelope every action returns."""

    status: Status
    action: str
    data: dict[str, Any] = {}
    text: str = ""
    invocation: Invocation = Invocation()
    error: ErrorInfo | None = None

    def to_json(self, **kw: Any) -> str:
        return self.model_dump_json(**kw)


class ActionRequest(BaseModel):
    """Fields every action accepts."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    action: str
    allowed_projects: list[str] | None = Field(
        None, description="Narrow the caller's scope to these projects (never widens it).")

    @field_validator("*")
    @classmethod
    def _values(cls, v: Any, info: ValidationInfo) -> Any:
        """Every field through the one validation layer (core/validate.py): no NUL, valid
        UTF-8, finite numbers, 64-bit integers: a field error before anything runs."""
        return validate.request_value(v, info.field_name)


class WindowedRequest(ActionRequest):
    """Fields of actions that look at a time window ending at now or `as_of`."""

    lookback_days: float = Field(7, gt=0, le=MAX_LOOKBACK_DAYS,
                                 description="Days to look back from now (or from as_of), 0 < d <= 3650.")
    as_of: str | None = Field(None, description="Treat this time (ISO date/time or epoch seconds) "
                                                "as now; useful for historical traces.")

    @field_validator("as_of")
    @classmethod
    def _check_as_of(cls, v: str | None) -> str | None:
        return validate.request_time(v, "as_of", stored=False)  # finite, a real date


@dataclass
class ToolContext:
    """Everything a tool may use, built by the set-up layer (`jobmedic.app`), which alone reads
    Settings. Each field is typed; nothing is passed through an untyped dict."""

    store: Store
    taxonomy: Taxonomy
    scope: list[str] | None = None  # None means all projects
    now: int | None = None  # epoch seconds; None means the real time
    options: dict[str, dict[str, Any]] = field(default_factory=dict)  # per analyzer / tool
    rules: RuleBase | None = None  # the parsed remediation rule base
    models_dir: Path | None = None  # the model folder that belongs to this store
    risk_levels: dict[str, float] = field(default_factory=dict)  # moderate / high / critical
    resubmit_window_h: float = 72.0  # how far apart a failure and its resubmission may be
    default_cluster: str = "default"  # cluster name for writes that do not say one
    retry_budgets: dict[str, float] = field(default_factory=dict)  # cluster (or "*") -> share killed

    def retry_budget(self, cluster: str | None) -> float:
        """The default acceptable share of killed runs for `cluster` (2 % unless configured)."""
        b = self.retry_budgets
        return float(b.get(cluster or self.default_cluster, b.get("*", 0.02)))

    def current_time(self) -> int:
        return int(self.now if self.now is not None else now_epoch())

    def effective_scope(self, req: ActionRequest) -> list[str] | None:
        """The caller's scope, narrowed (never widened) by the request's allowed_projects."""
        return narrow(self.scope, req.allowed_projects)

    def window_for(self, req: WindowedRequest) -> Window:
        now = parse_time_arg(req.as_of, "as_of") if req.as_of else self.current_time()
        return Window.lookback(now, req.lookback_days)


@dataclass(frozen=True)
class Tool:
    """One action: its name, request model, when to use it (shown to chat models) and the
    facts every surface needs about it, declared here once instead of kept in lists."""

    name: str
    description: str
    request_model: type[ActionRequest]
    run: Callable[[ToolContext, Any], ToolResult]
    writes: bool = False  # changes the store (the agent only runs it when asked to)
    cacheable: bool = False  # same request + scope + now + store version -> same answer
    windowed: bool = False  # looks at a time window (lookback_days, as_of)


# -- results ---------------------------------------------------------------------------------
def ok(action: str, data: dict[str, Any], text: str, invocation: Invocation) -> ToolResult:
    return ToolResult(status="ok", action=action, data=data, text=text, invocation=invocation)


def error_result(action: str, type_: str, message: str, hint: str = "",
                 field_name: str | None = None, invocation: Invocation | None = None,
                 suggestions: list[dict[str, Any]] | None = None) -> ToolResult:
    text = f"**Error:** {message}" + (f"\n\n{hint}" if hint else "")
    return ToolResult(status="error", action=action, text=text,
                      invocation=invocation or Invocation(),
                      error=ErrorInfo(type=type_, message=message, hint=hint, field=field_name,
                                      suggestions=suggestions))


def no_data(action: str, store: Store, window: Window | None, invocation: Invocation,
            what: str = "jobs or failures", scope: Sequence[str] | None = None) -> ToolResult:
    """An empty answer that says what range the store does hold and how to reach it."""
    lo, hi = store.data_range(scope)
    if lo is None:
        msg = f"The store holds no {what} yet."
        hint = "Ingest data first: `jobmedic ingest slurm sacct.txt` or `jobmedic ingest kubernetes pods.json`."
        held = None
    else:
        span = f" between {iso(window.start)} and {iso(window.end)}" if window else ""
        msg = f"No {what}{span}."
        held = {"first": iso(lo), "last": iso(hi)}
        # the day after the last record: the window [as_of - lookback, as_of) then holds it
        hint = (f"The store holds data from {iso(lo)} to {iso(hi)}; try "
                f"`--as-of {iso((hi // 86400 + 1) * 86400)[:10]}` or a longer lookback.")
    return ToolResult(status="no_data", action=action, data={"store_range": held},
                      text=f"{msg}\n\n{hint}", invocation=invocation)


# -- the one entry point (jobmedic.tools.run_action calls it with the TOOLS registry) ----------
def dispatch(payload: dict[str, Any] | str | bytes, ctx: ToolContext,
             tools: Sequence[Tool]) -> ToolResult:
    """Validate a flat JSON request, run its action among `tools`, and always return an
    envelope."""
    by_name = {t.name: t for t in tools}
    if isinstance(payload, (str, bytes)):
        try:
            payload = json.loads(payload)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            return error_result("?", "invalid_json", f"the request is not valid JSON: {exc}",
                                'send one JSON object, e.g. {"action": "stats", "lookback_days": 7}')
    if not isinstance(payload, dict):
        return error_result("?", "invalid_request", "the request must be a JSON object",
                            'e.g. {"action": "analyze", "project": "ml-team"}')
    action = payload.get("action")
    if not isinstance(action, str) or action not in by_name:
        close = get_close_matches(str(action), list(by_name), 2)
        msg = f"unknown action {action!r}" if action is not None else "the request has no 'action'"
        return error_result(str(action), "unknown_action",
                            msg + (f"; did you mean {', '.join(close)}?" if close else ""),
                            "known actions: " + ", ".join(by_name), "action")
    tool = by_name[action]
    try:
        req = tool.request_model.model_validate(payload)
    except ValidationError as exc:
        return validation_error(action, exc)
    try:
        return tool.run(ctx, req)
    except NotFound as exc:
        return error_result(action, exc.kind, exc.message, exc.hint, exc.what,
                            Invocation(scope=ctx.effective_scope(req)),
                            exc.suggestions or None)
    except JobmedicError as exc:
        return error_result(action, exc.kind, exc.message, exc.hint)
    except ValueError as exc:
        return error_result(action, "invalid_request", str(exc))
    except Exception as exc:
        import logging  # only for a fault (start-up, issue 16)

        logging.getLogger("jobmedic.tools").exception("action %s failed", action)
        return error_result(action, "internal_error", f"{action} failed: {type(exc).__name__}: {exc}",
                            "this is a bug in jobmedic; the log has the details")


def validation_error(action: str, exc: ValidationError) -> ToolResult:
    errs = exc.errors()
    first = errs[0]
    field_name = ".".join(str(p) for p in first.get("loc", ())) or None
    parts = []
    for e in errs[:5]:
        loc = ".".join(str(p) for p in e.get("loc", ())) or "(request)"
        if e.get("type") == "extra_forbidden":
            parts.append(f"{loc}: unknown field")
        else:
            parts.append(f"{loc}: {e.get('msg')} (got {e.get('input')!r})"[:300])
    return error_result(action, "invalid_field", "; ".join(parts),
                        f"see `jobmedic {action.replace('_', '-')} --help` for the accepted "
                        "fields and ranges",  # the CLI's command names use hyphens
                        field_name)
