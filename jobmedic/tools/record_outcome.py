"""The record_outcome action: a fix was tried for a failed job or a failure type; did it work.

The solution may be an id (``oom.raise_memory``) or words ("doubled the memory"): words are
matched to the rule base (RuleBase.match), then to solutions already learned for the type;
only a fix that matches nothing becomes a new user solution. One attempt per failed job and
solution: recording it again changes nothing, recording it with the other result corrects it.

Ownership (checked in the store): a scoped caller records only onto its own projects' jobs,
the outcome is stored with the job's project (or, with no job, the caller's one project), and
a new user solution, whose text the user wrote, belongs to that project: no other project
ever lists it. Curated and learned solutions, and anonymous counts, are shared.
"""
from __future__ import annotations

import hashlib
import re
from typing import Any, Literal

from pydantic import Field, model_validator

from jobmedic.knowledge.errors import JobmedicError
from jobmedic.knowledge.rules import normalise, tokens
from jobmedic.reports.records import render_outcome
from jobmedic.tools.base import ActionRequest, Invocation, ToolContext, ToolResult, ok
from jobmedic.tools.remedy_common import find_job, rules_of


class RecordOutcomeRequest(ActionRequest):
    """Record that a solution was tried, and whether it worked."""

    action: Literal["record_outcome"] = Field("record_outcome",
                                              description='The action: always "record_outcome".')
    job_id: str | None = Field(None, description="The failed job the fix was applied to.")
    cluster: str | None = Field(None, description="Cluster of the job.")
    failure_type: str | None = Field(None, description="The failure type, when no job is named.")
    solution: str = Field(..., min_length=1, max_length=2000,
                          description="A solution id, or the fix in words (matched to a known one).")
    success: bool = Field(..., description="Did the fix work?")
    note: str | None = Field(None, max_length=10_000,
                             description="A note on the attempt, in words.")
    followup_job: str | None = Field(None, description="The job that ran with the fix, if any.")
    recorded_by: str | None = Field(None, max_length=256,
                                    description="Who recorded it (default: user).")

    @model_validator(mode="after")
    def _one_of(self):
        if not self.job_id and not self.failure_type:
            raise ValueError("give job_id or failure_type")
        return self


def run(ctx: ToolContext, req: RecordOutcomeRequest) -> ToolResult:
    scope = ctx.effective_scope(req)
    store = ctx.store
    job = find_job(ctx, req.job_id, req.cluster, scope) if req.job_id else None
    if req.failure_type:
        ftype = ctx.taxonomy.check_code(req.failure_type)
    else:
        ftype = job.get("failure_type")
        if not ftype:
            raise JobmedicError(f"job {req.job_id!r} did not fail (state {job.get('state')}), so "
                                "there is no failure type to record a fix for",
                                hint="give --failure-type as well")
    if job is None:
        project = scope[0] if scope is not None and len(scope) == 1 else None
    else:
        project = job.get("project")
    project = store.write_project(job["cluster"] if job else None, job["job_id"] if job else None,
                                  project, scope)  # ScopeError: not the caller's
    sid, how, source, key = match_solution(ctx, ftype, req.solution, scope, project)
    owner = project if source == "user" and how == "new" else None
    now = ctx.current_time()
    if job:
        dedup = f"job:{job['cluster']}:{job['job_id']}:{sid}"
    else:
        digest = hashlib.sha1((req.note or "").encode()).hexdigest()[:12]
        dedup = f"type:{ftype}:{sid}:{int(req.success)}:{req.recorded_by or ''}:{digest}" + (
            f":{project}" if project else "")  # per project: never another project's duplicate
    before = store.outcome_exists(dedup)
    gpu = None if not job or job.get("req_gpus") is None else int(bool(job["req_gpus"]))
    with store.transaction():  # a new solution lands only with its outcome (or neither does)
        store.seed_solutions([(ftype, sid, key)], source, project=owner)
        rowid = store.solution_rowids(ftype)[(ftype, sid)]
        row = (rowid, job["cluster"] if job else None, job["job_id"] if job else None,
               req.followup_job, project, int(req.success), req.recorded_by or "user", now,
               req.note, 0, None, dedup, job.get("queue") if job else None, gpu, None)
        changed = store.add_outcomes([row], scope)
    status = "recorded" if before is None else ("updated" if changed else "duplicate")
    stat = next(s for s in store.solution_stats(ftype, scope) if s["solution"] == sid)
    data: dict[str, Any] = {
        "status": status, "failure_type": ftype, "solution": sid, "matched_by": how,
        "source": source, "success": req.success, "job_id": job["job_id"] if job else None,
        "cluster": job["cluster"] if job else None, "counts": {
            "successes": stat["successes"], "attempts": stat["attempts"]},
    }
    inv = Invocation(filters={"failure_type": ftype, "job_id": req.job_id, "solution": req.solution},
                     scope=scope)
    return ok("record_outcome", data, render_outcome(data), inv)


def match_solution(ctx: ToolContext, ftype: str, text: str, scope: list[str] | None = None,
                   project: str | None = None) -> tuple[str, str, str, str | None]:
    """(solution id, how it matched, source, key) for a fix given as an id or in words, among
    the solutions the scope sees; a new one of a `project` carries it in its id (``@project``)
    so that two projects' fixes in the same words stay two solutions."""
    rules = rules_of(ctx)
    sol, how = rules.match(text, ftype)
    if sol is not None:
        return sol.id, how, "rule", (sol.learn_from[0] if sol.learn_from else None)
    known = ctx.store.list_solutions(ftype, scope)
    t = text.strip()
    norm, toks = normalise(t), set(tokens(t))
    for s in known:
        if t in (s["solution"], s["solution"].split(".", 1)[-1]):
            return s["solution"], "id", s["source"], s["solution_key"]
    from jobmedic.knowledge.outcomes import CHANGE_TITLES

    best = (0.0, None)
    for s in known:
        ref_text = s["solution_key"] or ""
        if s["solution_key"] in CHANGE_TITLES:
            ref_text = CHANGE_TITLES[s["solution_key"]] + " " + s["solution_key"].replace("_", " ")
        if normalise(ref_text) == norm:
            return s["solution"], "title", s["source"], s["solution_key"]
        ref = set(tokens(ref_text))
        if toks and ref:
            score = len(toks & ref) / len(toks | ref)
            if score > best[0]:
                best = (score, s)
    if best[1] is not None and best[0] >= 0.5:
        s = best[1]
        return s["solution"], "tokens", s["source"], s["solution_key"]
    slug = "_".join(tokens(t)[:6]) or "fix"
    slug = re.sub(r"[^a-z0-9_]", "", slug)[:60] or "fix"
    return f"{ftype}.user_{slug}" + (f"@{project}" if project else ""), "new", "user", t[:200]
