"""`jobmedic ask "QUESTION"`: a plain-language question answered through the actions."""
from __future__ import annotations

import json
import sys

import typer

from jobmedic.cli.context import state


def ask(
    ctx: typer.Context,
    question: str = typer.Argument(..., metavar="QUESTION",
                                   help="The question in plain language, or - to read it (e.g. a pasted log) from stdin."),
    as_json: bool = typer.Option(False, "--json", help='Print {"answer": ..., "calls": [{"action", "args", "status"}]}.'),
    session: str = typer.Option("default", "--session", help="Conversation name: follow-ups use its history (kept in the store)."),
    model: str | None = typer.Option(None, "--model", help="Chat model: router (built in, offline) or a LangChain model string such as ollama:llama3.1 (default: agent.model)."),
    base_url: str | None = typer.Option(None, "--base-url", help="Endpoint of the chat model (default: agent.base_url)."),
) -> None:
    """Ask a question in your own words; the answer lists the actions it ran.

    Examples: jobmedic ask "what's failing in ml-team this week?";
    jobmedic ask "how do I fix OOMKilled?"; jobmedic ask --session s "and for research?"
    """
    from jobmedic.agent import Assistant

    st = state(ctx)
    if question == "-":
        question = sys.stdin.buffer.read().decode("utf-8", errors="replace")
    agent = st.settings.agent
    assistant = Assistant(st.tool_context(), model=model or agent.model,
                          base_url=base_url or agent.base_url, timeout_s=agent.timeout_s)
    result = assistant.ask(question, session=session)
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2, ensure_ascii=False, default=str))
    elif sys.stdout.isatty():
        from rich.console import Console
        from rich.markdown import Markdown

        Console().print(Markdown(result.answer))
    else:
        typer.echo(result.answer)


def register(app: typer.Typer) -> None:
    app.command("ask")(ask)
