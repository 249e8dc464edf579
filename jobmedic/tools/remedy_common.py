"""Shared by remediate, diagnose, record_outcome and record_failure: the rule base from the
tool context, cached template miners, and job lookup that falls
back to failure events (Run:AI workloads have no jobs row)."""
from __future__ import annotations

import threading
import weakref
from typing import TYPE_CHECKING, Any

from jobmedic.core.units import UnitError, parse_mem_mb
from jobmedic.knowledge.errors import JobmedicError, NotFound
from jobmedic.knowledge.rules import RuleBase
from jobmedic.knowledge.templates import Templates
from jobmedic.tools.base import ToolContext

if TYPE_CHECKING:
    from jobmedic.knowledge.store import Store

_TEMPLATES: weakref.WeakKeyDictionary[Any, tuple[tuple[int, int], Templates]] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def rules_of(ctx: ToolContext) -> RuleBase:
    """The parsed rule base the set-up layer put in the context."""
    if ctx.rules is None:
        raise JobmedicError("the remediation rule base is not loaded",
                            hint="open the tool context through jobmedic.app, which loads the "
                                 "packaged remediations.yaml")
    return ctx.rules


def templates_for(store: Store) -> Templates:
    """A template miner seeded from the store, rebuilt only when templates were added."""
    version = store.template_version()
    with _LOCK:
        hit = _TEMPLATES.get(store)
        if hit is None or hit[0] != version:
            hit = (version, Templates(store.load_templates()))
            _TEMPLATES[store] = hit
        return hit[1]


def find_job(ctx: ToolContext, job_id: str, cluster: str | None, scope: Any) -> dict[str, Any]:
    """A job row in scope, or a failure event shaped like one; NotFound naming the job."""
    job = ctx.store.get_job(job_id, cluster, scope)
    if job is not None:
        job["_kind"] = "job"
        return job
    ev = ctx.store.find_event(job_id, cluster, scope)
    if ev is None:
        raise job_not_found(ctx, job_id, cluster, scope)
    return {
        "_kind": "event", "_event": ev, "cluster": ev["cluster"], "job_id": ev["job_id"] or ev["job_name"],
        "name": ev["job_name"], "project": ev["project"], "user": ev["user"],
        "image": ev["container_image"], "failure_type": ev["failure_type"], "blame": ev["blame"],
        "state": "failed", "raw_state": ev["phase"], "source": ev["source"],
        "req_gpus": ev["gpu_count"], "nodes": [ev["node_name"]] if ev["node_name"] else [],
        "req_mem_mb": _event_mem_mb(ev["memory_request"]),
    }


def job_not_found(ctx: ToolContext, job_id: str, cluster: str | None, scope: Any) -> NotFound:
    """NotFound naming the job id (and cluster) asked for, with the closest existing job ids
    the caller may see (same array job or step, numeric neighbours, a few edits away); never
    an id outside the scope."""
    close = ctx.store.close_job_ids(job_id, cluster, scope)
    where = f" on cluster {cluster!r}" if cluster else ""
    exc = NotFound("job", job_id)
    exc.closest = [c["job_id"] for c in close]
    exc.suggestions = close
    shown = [c["job_id"] + (f" ({c['cluster']})" if cluster and c["cluster"] != cluster else "")
             for c in close]
    exc.message = f"no job {job_id!r}{where} in the store" + (
        " (or not in your projects)" if scope is not None else "") + (
        f"; closest job ids: {', '.join(shown)}" if shown else "")
    exc.hint = "check the job id (or pod / workload name), or ingest its accounting data first"
    return exc


def _event_mem_mb(v: str | None) -> float | None:
    """A failure event's memory request (a Kubernetes quantity: 4000M is 3814.7 MiB) in MiB;
    None when unreadable."""
    try:
        return parse_mem_mb(v, "k8s")
    except UnitError:
        return None
