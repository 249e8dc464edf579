"""The grounding check on a model's wording, the wrong-call check, and the local model's
tool-call parsing (no model is loaded here)."""
from __future__ import annotations

import pytest

from jobmedic.agent import Assistant
from jobmedic.agent.grounding import call_problem, check_answer
from jobmedic.agent.local_model import parse_tool_call
from jobmedic.agent.models import ModelUnavailable, make_chat_model

ENV = [{"text": "## Diagnosis of job 2001: `oom` (blame: job)\nnode a100-01, user alice",
        "data": {"job_id": "2001", "failure_type": "oom", "node": "a100-01", "user": "alice",
                 "max_rss_gb": 32.33, "share": 0.4132, "n_failures": 12}}]
NAMES = ["a100-01", "a100-02", "alice", "bob", "ml-team", "research"]
CODES = ["oom", "timeout", "node_failure", "gpu_error"]


@pytest.mark.parametrize("text", [
    "Job 2001 ran out of memory on a100-01.",
    "alice's job used about 32.3 GB; 41% of the failures, 12 in all.",
    "It was an oom.",
    "",
])
def test_grounded_wording_is_accepted(text):
    assert check_answer(text, ENV, NAMES, CODES) == (True, None)


@pytest.mark.parametrize("text,why", [
    ("Job 2002 ran out of memory.", "2002"),                 # a job id no action returned
    ("It used 64 GB.", "64"),                                # a number
    ("It ran on a100-02.", "a100-02"),                       # a node
    ("bob submitted it.", "bob"),                            # a user
    ("It hit its time limit.", "timeout"),                   # a failure type (words)
    ("A node_failure killed it.", "node_failure"),           # a failure type (code)
    ("training-job-999 failed too.", "training-job-999"),   # a job name
])
def test_ungrounded_wording_is_rejected(text, why):
    ok, reason = check_answer(text, ENV, NAMES, CODES)
    assert not ok and why in reason


def test_wrong_calls_name_what_the_question_does_not():
    plan = [{"action": "analyze", "args": {"project": "ml-team"}}]
    q = "what's failing in ML-team this week?"
    assert call_problem("analyze", {"project": "ml-team", "lookback_days": 4.5}, q, plan) is None
    assert "astro" in call_problem("analyze", {"project": "astro"}, q, plan)
    assert "4242" in call_problem("diagnose", {"job_id": "4242"}, q, plan)
    assert "gpu_error" in call_problem("stats", {"failure_type": "gpu_error"}, q, plan)
    assert call_problem("stats", {"failure_type": "oom"}, "how many OOMs?", []) is None


@pytest.mark.parametrize("raw,name,args", [
    ('{"tool": "diagnose", "args": {"job_id": "2001"}}', "diagnose", {"job_id": "2001"}),
    ('Sure! {"name": "stats", "arguments": {"failure_type": "oom"}} hope this helps',
     "stats", {"failure_type": "oom"}),
    ('{"action": "analyze", "project": "ml-team"}', "analyze", {"project": "ml-team"}),
    ('{"tool": "stats", "args": "{\\"top\\": 3}"}', "stats", {"top": 3}),
    ('{"tool": "diagnose", "args": {"job_id": 2011, "text": null}}', "diagnose", {"job_id": "2011"}),
])
def test_tool_calls_are_parsed_from_the_models_text(raw, name, args):
    call = parse_tool_call(raw, {"diagnose", "stats", "analyze"})
    assert call["name"] == name and call["args"] == args and call["id"].startswith("call_")


@pytest.mark.parametrize("raw", ["The job failed because of memory.", "{not json}", '{"tool": 3}', ""])
def test_text_that_is_no_tool_call_is_none(raw):
    assert parse_tool_call(raw, {"stats"}) is None


def test_a_missing_local_model_file_falls_back_to_the_router(agent_ctx, tmp_path):
    with pytest.raises(ModelUnavailable, match="no GGUF model file"):
        make_chat_model(f"local:{tmp_path / 'none.gguf'}")
    res = Assistant(agent_ctx, model=f"local:{tmp_path / 'none.gguf'}").ask("why did job 2001 fail?")
    assert res.fell_back and res.decided_by == "router" and "unavailable" in res.note
    assert res.calls[0]["args"] == {"job_id": "2001"} and "(chosen by the built-in router)" in res.answer
