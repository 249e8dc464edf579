"""Issue 11: the router never re-targets a write across projects. A scoped caller's vocabulary
holds only its own projects, so a write naming another project must be refused or asked back,
never read as the nearest name the caller can see."""
from __future__ import annotations

import pytest

from jobmedic.agent import Assistant
from tests.agent.conftest import make_ctx


@pytest.fixture
def scoped(agent_store, taxonomy):
    return Assistant(make_ctx(agent_store, taxonomy, ["ml-team"]))


@pytest.mark.parametrize("q,token", [
    # another project's name: was dropped and the record landed in ml-team
    ("record a failure: job train-7 in ml-infra failed with CUDA out of memory on gpu01",
     "ml-infra"),
    # typos of a name the caller can see: were read as ml-team ("I read 'ml-teem' as ...")
    ("record a failure: job train-7 in ml-teem failed with CUDA out of memory", "ml-teem"),
    ("record a failure: job train-7 in projekt ml-teams failed with CUDA out of memory",
     "ml-teams"),
])
def test_a_write_naming_a_project_it_cannot_see_writes_nothing(scoped, agent_store, q, token):
    before = agent_store.table_counts()
    res = scoped.ask(q, session=q[:30])
    assert res.kind == "clarify" and res.calls == []
    assert "Nothing was written" in res.answer and f"'{token}'" in res.answer
    assert agent_store.table_counts() == before


def test_a_fix_for_another_projects_job_is_refused_by_the_tool(scoped):
    res = scoped.ask("doubling the memory fixed job llm-finetune-7 in research", session="w-other")
    assert [c["action"] for c in res.calls] == ["record_outcome"]
    env = res.results[0]
    assert env["status"] == "error" and "not in your projects" in env["error"]["message"]


def test_a_write_inside_the_callers_project_still_runs(scoped):
    res = scoped.ask("record a failure: job train-7 in ml-team failed with CUDA out of memory "
                     "on gpu01", session="w-own")
    assert [c["action"] for c in res.calls] == ["record_failure"]
    assert res.calls[0]["args"]["project"] == "ml-team"
