"""Scope leak test, generic over TOOLS: with a scope of one project, no field of any action's
output (data, text, invocation, error) names another project, its users, images or queues, or
carries the store-wide totals that only exist with the other projects' jobs counted.

Each action runs with in-scope values for every field its request model has (plus one payload
per optional filter), both with the scope set in the context and narrowed by the request."""
from __future__ import annotations

import json
import re
import typing

import pytest

from jobmedic.tools import TOOLS, run_action
from tests.tools.analyze_data import context, fill

SCOPE = ["research"]
#: Names that belong to other projects only (nodes are shared hardware, not project data).
FOREIGN = ["ml-team", "ops-secret", "alice", "bob", "carol", "dave", "zed", "yan", "secret:bad",
           "secret:img", "ml:v1", '"ops"', "job-alice", "job-zed"]
#: Numbers that exist only when other projects' jobs are counted: store-wide jobs / failures,
#: ops-secret's jobs and failures, ml-team's jobs.
FOREIGN_NUMBERS = [r"\b1,?627\b", r"\b377\b", r"\b1,?000 (?:finished )?jobs\b", r"\b152 failures\b"]
IN_SCOPE = {"project": "research", "user": "mallory", "image": "sci:2", "queue": "cpu",
            "node": "gpu-05", "cluster": "c1", "failure_type": "oom", "text": "CUDA out of memory",
            "name": "job-mallory", "job_name": "job-mallory", "solution": "double the memory request",
            "success": True, "note": "worked", "error_message": "OOMKilled", "phase": "OOMKilled",
            "node_name": "gpu-05", "container_image": "sci:2", "req_cpus": 4, "req_mem_mb": 4000,
            "req_gpus": 0, "req_walltime_s": 3600, "lookback_days": 7}
RESEARCH_JOB = "j1210"  # one of mallory's planted jobs (research)


def _payloads(tool) -> list[dict]:
    fields = {k: f for k, f in tool.request_model.model_fields.items()
              if k not in ("action", "allowed_projects")}
    base = {"action": tool.name}
    for k, f in fields.items():
        if f.is_required():
            base[k] = IN_SCOPE.get(k, RESEARCH_JOB if k.endswith(("job_id", "job")) else "x")
    out = [dict(base)]
    for k, f in fields.items():
        if f.is_required():
            continue
        if k in IN_SCOPE:
            out.append({**base, k: IN_SCOPE[k]})
        elif k in ("job_id", "followup_job"):
            out.append({**base, k: RESEARCH_JOB})
        elif k == "group_by":
            (item,) = typing.get_args(typing.get_args(f.annotation)[0] if typing.get_origin(f.annotation) is typing.Union else f.annotation)
            dims = list(typing.get_args(item))
            out += [{**base, k: dims[i:i + 3]} for i in range(0, len(dims), 3)]
    # names outside the scope, and a near miss of one, must come back as unknown with
    # closest names from the scope only
    out.append({**base, "project": "ml-teem"} if "project" in fields else base)
    return out


def _leaks(res) -> list[str]:
    blob = json.dumps(res.model_dump(), default=str)
    found = [n for n in FOREIGN if n in blob]
    found += [rx for rx in FOREIGN_NUMBERS if re.search(rx, blob)]
    return found


@pytest.mark.parametrize("how", ["context", "request"])
@pytest.mark.parametrize("tool", TOOLS, ids=[t.name for t in TOOLS])
def test_no_action_reveals_other_projects(store, tool, how):
    fill(store)
    ctx = context(store, SCOPE if how == "context" else None)
    ran = 0
    for payload in _payloads(tool):
        if how == "request":
            payload = {**payload, "allowed_projects": SCOPE}
        res = run_action(payload, ctx)
        assert not _leaks(res), (payload, _leaks(res), res.model_dump_json()[:2000])
        ran += res.status == "ok"
    if tool.name in ("analyze", "stats"):  # not vacuous: they answered, with in-scope content
        assert ran >= 3


@pytest.mark.parametrize("action", ["analyze", "stats"])
def test_scoped_answers_use_in_scope_numbers(store, action):
    fill(store)
    extra = {"group_by": ["user", "project"]} if action == "stats" else {}
    res = run_action({"action": action, **extra}, context(store, SCOPE))
    assert res.status == "ok"
    blob = json.dumps(res.model_dump())
    assert "research" in blob and "mallory" in blob
    totals = res.data.get("summary") or res.data.get("totals")
    assert totals["jobs"] == 250 and totals["failures"] == 36  # research's own jobs only
    assert res.invocation.scope == SCOPE


def test_out_of_scope_name_is_unknown_with_in_scope_suggestions(store):
    fill(store)
    res = run_action({"action": "analyze", "project": "ml-teem"}, context(store, SCOPE))
    assert res.status == "error" and res.error.field == "project"
    assert "research" in res.error.message and "ml-team" not in res.model_dump_json()
    res = run_action({"action": "stats", "user": "zed"}, context(store, SCOPE))
    assert res.status == "error" and res.error.field == "user"


def test_empty_scope_sees_nothing(store):
    fill(store)
    res = run_action({"action": "stats"}, context(store, []))
    assert res.status == "no_data" and "ml-team" not in res.model_dump_json()


def test_the_leak_check_catches_an_unscoped_answer(store):
    fill(store)
    res = run_action({"action": "stats", "group_by": ["project"]}, context(store, None))
    assert {"ml-team", "ops-secret"} <= set(_leaks(res))
    res = run_action({"action": "analyze"}, context(store, None))
    assert _leaks(res)


#: Other projects' jobs (ml-team's failed j992, ops-secret's failed j1605): never writable.
FOREIGN_JOBS = ["j992", "j1605"]
RESEARCH_FAILED = "j1230"  # one of research's planted OOM jobs


def _foreign_writes(tool) -> list[dict]:
    """Each write naming another project's job (in every job field) or another project."""
    fields = tool.request_model.model_fields
    base = _payloads(tool)[0]
    out = []
    for k in ("job_id", "followup_job"):
        if k in fields:
            for j in FOREIGN_JOBS:
                extra = {"job_id": RESEARCH_FAILED} if k != "job_id" and "job_id" in fields else {}
                out.append({**base, **extra, k: j, "cluster": "c1"})
    if "project" in fields:
        out += [{**base, "project": p} for p in ("ml-team", "ops-secret")]
    return out


def _write_context(store, scope):
    """The analyze context with the packaged rule base (record_outcome needs it)."""
    import dataclasses

    import yaml

    from jobmedic.knowledge.rules import RuleBase
    from jobmedic.settings import config_path

    ctx = context(store, scope)
    with open(config_path("remediations.yaml"), encoding="utf-8") as fh:
        rules = RuleBase.from_dict(yaml.safe_load(fh), ctx.taxonomy.codes)
    return dataclasses.replace(ctx, rules=rules)


@pytest.mark.parametrize("how", ["context", "request"])
@pytest.mark.parametrize("tool", [t for t in TOOLS if t.writes], ids=lambda t: t.name)
def test_no_action_writes_into_other_projects(store, tool, how):
    """Every action that writes is tried across projects, as the read actions are: each
    attempt is refused and leaves the store as it was."""
    fill(store)
    ctx = _write_context(store, SCOPE if how == "context" else None)
    payloads = _foreign_writes(tool)
    assert len(payloads) >= 2  # not vacuous: each write action names a job or a project
    for payload in payloads:
        if how == "request":
            payload = {**payload, "allowed_projects": SCOPE}
        before = store.table_counts()
        res = run_action(payload, ctx)
        assert res.status == "error", (payload, res.model_dump_json()[:1000])
        assert res.error.type in ("forbidden", "not_found"), (payload, res.error)
        assert store.table_counts() == before, payload
        echoed = json.dumps(payload)  # the caller's own words may come back in the error
        assert not [n for n in _leaks(res) if n not in echoed], (payload, _leaks(res))
    ok = run_action({**_payloads(tool)[0], "job_id": RESEARCH_FAILED, "cluster": "c1"}
                    if "job_id" in tool.request_model.model_fields else _payloads(tool)[0],
                    _write_context(store, SCOPE))
    assert ok.status == "ok", ok.model_dump_json()[:1000]  # its own project's job: written
