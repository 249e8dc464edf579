"""Chat models named by configuration (`agent.model`, `--model`): "router" (built in), or any
model string LangChain's `init_chat_model` understands ("ollama:llama3.1",
"openai:gpt-4o-mini", ...) with an optional `base_url` for a local or OpenAI-compatible
endpoint, or "local:smollm2" / "local:/path/model.gguf" (run in-process, the `local-llm` extra). Provider packages are the optional extra `jobmedic[models]`; when one is missing
or the model cannot be built, `ModelUnavailable` says so and the assistant uses the router.
"""
from __future__ import annotations

from typing import Any

from jobmedic.agent.model_errors import ModelUnavailable

ROUTER_NAMES = ("router", "", "builtin", "offline")
PROVIDER_PACKAGES = {"ollama": "langchain-ollama", "openai": "langchain-openai",
                     "anthropic": "langchain-anthropic", "google_genai": "langchain-google-genai"}


__all__ = ["ModelUnavailable", "describe_failure", "is_router", "make_chat_model"]


def is_router(model: str | None) -> bool:
    return (model or "router").strip().lower() in ROUTER_NAMES


def make_chat_model(model: str, base_url: str | None = None, timeout_s: float = 30) -> Any:
    """A LangChain chat model for `model` (raises ModelUnavailable with the reason)."""
    provider = model.split(":", 1)[0] if ":" in model else ""
    if provider == "local":  # a GGUF file run in-process (the `local-llm` extra)
        from jobmedic.agent.local_model import make_local

        return make_local(model)
    kwargs: dict[str, Any] = {}
    if base_url:
        kwargs["base_url"] = base_url
    if provider == "ollama":
        kwargs["client_kwargs"] = {"timeout": timeout_s}
    else:
        kwargs.update(timeout=timeout_s, max_retries=0)
    try:
        from langchain.chat_models import init_chat_model

        return init_chat_model(model, **kwargs)
    except ImportError as exc:
        pkg = PROVIDER_PACKAGES.get(provider, f"the LangChain package for {provider or model!r}")
        raise ModelUnavailable(f"{pkg} is not installed ({exc}); install it with "
                               f"`pip install 'jobmedic[models]'`") from exc
    except Exception as exc:
        raise ModelUnavailable(f"cannot build chat model {model!r}: {type(exc).__name__}: "
                               f"{str(exc).splitlines()[0][:200] if str(exc) else ''}") from exc


def describe_failure(model: str, exc: BaseException) -> str:
    """One sentence for the answer: why the configured model was not used."""
    from jobmedic.agent.loop import ToolCallError

    if isinstance(exc, ModelUnavailable):
        return f"The configured model {model!r} is unavailable: {exc}. The built-in router answered instead."
    if isinstance(exc, ToolCallError):
        return (f"The configured model {model!r} did not call the actions properly ({exc}); "
                "the built-in router answered instead.")
    text = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"
    if _unreachable(exc):
        return f"The configured model {model!r} was unreachable ({text}); the built-in router answered instead."
    return f"The configured model {model!r} failed ({text}); the built-in router answered instead."


def _unreachable(exc: BaseException) -> bool:
    seen = 0
    while exc is not None and seen < 6:
        name = type(exc).__name__.lower()
        if isinstance(exc, (ConnectionError, TimeoutError, OSError)) or any(
                w in name for w in ("connect", "timeout", "network", "unreachable")):
            return True
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
        seen += 1
    return False
