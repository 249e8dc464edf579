"""What the windowed actions share: the entity filters of a request resolved against the store,
and the failure summary of a window's totals. Its own module so that one action (stats) does
not import another action's module (analyze) to reach them (issue 16: `act` imports the tool
it runs)."""
from __future__ import annotations

from typing import Any

from jobmedic.tools.base import ToolContext

#: Request field -> vocabulary kind resolved against the store (inside the scope).
FILTER_KINDS = ("project", "cluster", "node", "image", "user", "queue")


def resolve_filters(ctx: ToolContext, req: Any, scope: list[str] | None) -> dict[str, str]:
    """The request's entity filters, each resolved to its stored spelling inside the scope
    (NotFound, with the closest known names, for an unknown or out-of-scope name)."""
    out = {}
    for kind in FILTER_KINDS:
        value = getattr(req, kind, None)
        if value is not None:
            out[kind] = ctx.store.resolve(kind, value, scope)
    return out


def summary(totals: dict[str, Any]) -> dict[str, Any]:
    jobs, fails = int(totals["jobs"]), int(totals["failures"])
    return {"failures": fails, "jobs": jobs, "failure_rate": round(fails / jobs, 4) if jobs else None,
            "projects_affected": int(totals["projects"]), "users_affected": int(totals["users"]),
            "failure_types": int(totals["types"]), "gpu_h_lost": round(float(totals["gpu_h"]), 1),
            "core_h_lost": round(float(totals["core_h"]), 1), "cancelled": int(totals["cancelled"])}
