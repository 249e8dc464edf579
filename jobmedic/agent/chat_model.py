"""The offline router as a LangChain chat model.

`RouterChatModel` turns the last human message into `AIMessage.tool_calls` by the router's
rules, and once tool results have come back it ends the turn with a final message. So the
agent loop that drives any LangChain chat model (`loop.run_chat_model`) drives the router
too, and the tests that run a fake tool-calling model run the same code path.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import ConfigDict, Field

from jobmedic.agent.compose import help_answer, refusal


class RouterChatModel(BaseChatModel):
    """Rule-based tool calling: no network, no API key."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    router: Any  # jobmedic.agent.router.Router
    history: list[dict[str, Any]] = Field(default_factory=list)  # the session's earlier turns

    @property
    def _llm_type(self) -> str:
        return "jobmedic-router"

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any):
        """Bind tools like any tool-calling model: only their names are used."""
        return self.bind(tools=[convert_to_openai_tool(t) for t in tools], **kwargs)

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: Any = None, **kwargs: Any) -> ChatResult:
        last_human = max((i for i, m in enumerate(messages) if isinstance(m, HumanMessage)),
                         default=None)
        if last_human is None:
            return _result(AIMessage(content=help_answer()))
        after = messages[last_human + 1:]
        if any(isinstance(m, ToolMessage) for m in after):
            return _result(AIMessage(content="", response_metadata={"router": "final"}))
        question = messages[last_human].content
        if not isinstance(question, str):
            question = " ".join(p.get("text", "") if isinstance(p, dict) else str(p) for p in question)
        plan = self.router.route(question, self.history)
        bound = {t["function"]["name"] for t in kwargs.get("tools") or []}
        calls = [c for c in plan.calls if not bound or c["action"] in bound]
        if not calls:
            text = plan.reply if plan.kind == "clarify" else refusal() if plan.kind == "off_topic" \
                else help_answer(plan.reply if plan.kind == "bad_input" else None)
            return _result(AIMessage(content=text, response_metadata={"router": plan.kind}))
        return _result(AIMessage(
            content="", response_metadata={"router": "calls", "notes": plan.notes},
            tool_calls=[{"name": c["action"], "args": c["args"], "id": f"router_{i}",
                         "type": "tool_call"} for i, c in enumerate(calls)]))


def _result(msg: AIMessage) -> ChatResult:
    return ChatResult(generations=[ChatGeneration(message=msg)])
