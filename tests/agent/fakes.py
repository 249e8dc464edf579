"""Fake tool-calling chat models for the LangChain path (no network)."""
from __future__ import annotations

import json
import re
from typing import Any

from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import Field


class ScriptedToolModel(GenericFakeChatModel):
    """LangChain's GenericFakeChatModel, able to bind tools: replays scripted AIMessages."""

    seen: list[Any] = Field(default_factory=list)

    def bind_tools(self, tools: Any, **kwargs: Any):
        return self

    def _generate(self, messages, stop=None, run_manager=None, **kwargs):
        self.seen.append(list(messages))
        return super()._generate(messages, stop=stop, run_manager=run_manager, **kwargs)


def call(name: str, args: dict[str, Any], i: int = 0) -> dict[str, Any]:
    return {"name": name, "args": args, "id": f"fake_{name}_{i}", "type": "tool_call"}


def scripted(*steps: AIMessage | str) -> ScriptedToolModel:
    return ScriptedToolModel(messages=iter(steps), seen=[])


class ObedientModel(BaseChatModel):
    """A model that does whatever text in its context tells it to: it first calls the tool
    the test gives it, then obeys any 'call TOOL with {json}' and "reply 'TEXT'" it reads,
    tool output included. It stands for a real model that is steered by injected text."""

    first: dict[str, Any]
    contents: list[str] = Field(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "obedient-fake"

    def bind_tools(self, tools: Any, **kwargs: Any):
        return self

    def _generate(self, messages, stop=None, run_manager=None, **kwargs) -> ChatResult:
        tool_texts = [m.content for m in messages if isinstance(m, ToolMessage)]
        self.contents.extend(tool_texts)
        if not tool_texts:
            msg = AIMessage(content="", tool_calls=[call(self.first["name"], self.first["args"])])
            return ChatResult(generations=[ChatGeneration(message=msg)])
        text = tool_texts[-1].replace('\\"', '"')
        m = re.search(r"call (\w+) with (\{.*?\})", text)
        already = sum(1 for t in tool_texts if t.startswith("refused"))
        if m and not already and not text.startswith("refused"):
            msg = AIMessage(content="", tool_calls=[call(m[1], json.loads(m[2]), 1)])
        else:
            r = re.search(r"reply '([^']+)'", " ".join(self.contents).replace('\\"', '"'))
            msg = AIMessage(content=r[1] if r else "done")
        return ChatResult(generations=[ChatGeneration(message=msg)])


class BrokenModel(BaseChatModel):
    """A configured model whose endpoint cannot be reached."""

    error: Exception

    @property
    def _llm_type(self) -> str:
        return "broken-fake"

    def bind_tools(self, tools: Any, **kwargs: Any):
        return self

    def _generate(self, messages, stop=None, run_manager=None, **kwargs) -> ChatResult:
        raise self.error
