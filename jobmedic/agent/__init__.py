"""The assistant: natural-language questions answered through the actions.

Interface (used by `jobmedic ask`, the chat TUI and the HTTP server's `POST /v1/ask`)::

    from jobmedic.agent import Assistant
    assistant = Assistant(ctx, model="router", base_url=None, timeout_s=30)
    result = assistant.ask("what's failing in ml-team this week?", session="default")
    result.answer      # markdown: the actions' reports, ending with the provenance
    result.calls       # [{"action": "analyze", "args": {...}, "status": "ok"}, ...]
    result.results     # the full envelope of each call
    result.fell_back   # True when the configured model failed and the router answered
    result.note        # why it fell back (None otherwise); the answer says it too
    result.to_dict()   # {"answer": ..., "calls": [...]}: the `ask --json` / HTTP shape

`ctx` is a `jobmedic.tools.ToolContext`: every action runs inside `ctx.scope`. `model` is
"router" (the built-in offline router, no network) or a LangChain model string such as
"ollama:llama3.1" or "openai:gpt-4o-mini" (provider packages: `pip install 'jobmedic[models]'`).
`session` names a conversation kept in the store, so follow-up questions work across
processes. `ask` never raises for bad input: it answers with examples instead.

Modules: `router/` (rules: intents, time phrases, names, failure types, sizes), `chat_model`
(the router as a LangChain chat model), `tools` (the actions as LangChain tools), `loop`
(the agent loop), `compose` (answer and provenance), `session` (conversation state),
`models` (configured chat models), `prompts/` (system prompt). LangChain is imported only
when a chat model is used, so a routed question starts fast.
"""
from jobmedic.agent.assistant import AskResult, Assistant

__all__ = ["AskResult", "Assistant"]
