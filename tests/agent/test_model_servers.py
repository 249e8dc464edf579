"""The same agent path for Ollama and OpenAI-compatible servers, with the REAL client classes
(langchain-ollama's ChatOllama, langchain-openai's ChatOpenAI, built by make_chat_model from
the configured model string) against a small HTTP server on 127.0.0.1 that speaks their
protocol and returns a canned tool call, then a canned answer. No network."""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from jobmedic.agent import Assistant


class Canned:
    def __init__(self, tool: str, args: Any, answer: str) -> None:
        self.tool, self.args, self.answer, self.requests = tool, args, answer, []


def _handler(canned: Canned):
    class H(BaseHTTPRequestHandler):
        def log_message(self, *a):  # quiet
            pass

        def do_POST(self):  # http.server calls it by this name
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
            canned.requests.append((self.path, body))
            after_tool = any(m.get("role") == "tool" for m in body.get("messages", []))
            if self.path.endswith("/api/chat"):
                msg: dict[str, Any] = {"role": "assistant", "content": canned.answer if after_tool else ""}
                if not after_tool:
                    msg["tool_calls"] = [{"function": {"name": canned.tool, "arguments": canned.args}}]
                out = {"model": body.get("model"), "created_at": "2024-05-03T12:00:00Z", "message": msg,
                       "done": True, "done_reason": "stop", "total_duration": 1, "load_duration": 1,
                       "prompt_eval_count": 1, "prompt_eval_duration": 1, "eval_count": 1,
                       "eval_duration": 1}
                data, ctype = (json.dumps(out) + "\n").encode(), "application/x-ndjson"
            else:  # OpenAI /v1/chat/completions
                msg = {"role": "assistant", "content": canned.answer if after_tool else None}
                if not after_tool:
                    args = canned.args if isinstance(canned.args, str) else json.dumps(canned.args)
                    msg["tool_calls"] = [{"id": "call_1", "type": "function",
                                          "function": {"name": canned.tool, "arguments": args}}]
                out = {"id": "chatcmpl-1", "object": "chat.completion", "created": 1714737600,
                       "model": body.get("model"),
                       "choices": [{"index": 0, "message": msg,
                                    "finish_reason": "stop" if after_tool else "tool_calls"}],
                       "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}
                data, ctype = json.dumps(out).encode(), "application/json"
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
    return H


@pytest.fixture
def server():
    started = []

    def start(canned: Canned) -> str:
        srv = ThreadingHTTPServer(("127.0.0.1", 0), _handler(canned))
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        started.append(srv)
        return f"http://127.0.0.1:{srv.server_address[1]}"
    yield start
    for srv in started:
        srv.shutdown()
        srv.server_close()


def _ollama():
    pytest.importorskip("langchain_ollama", reason="the `models` extra (langchain-ollama) is not installed")


def _openai(monkeypatch):
    pytest.importorskip("langchain_openai", reason="the `models` extra (langchain-openai) is not installed")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-local-test")


def test_ollama_tool_call_runs_and_grounded_wording_is_shown(agent_ctx, server):
    _ollama()
    canned = Canned("stats", {"failure_type": "oom", "lookback_days": 30},
                    "Out-of-memory kills are the failures counted here.")
    url = server(canned)
    res = Assistant(agent_ctx, model="ollama:llama3.1", base_url=url).ask("how many OOMs last month?")
    assert [p for p, _ in canned.requests] == ["/api/chat", "/api/chat"]
    assert res.calls[0]["action"] == "stats" and res.calls[0]["args"] == {"failure_type": "oom",
                                                                           "lookback_days": 30}
    assert res.decided_by == "model" and not res.fell_back and res.grounding == "accepted"
    assert res.answer.startswith("Out-of-memory kills are the failures counted here.")
    assert "(chosen by the model ollama:llama3.1)" in res.answer
    tools = {t["function"]["name"] for t in canned.requests[0][1]["tools"]}
    assert {"analyze", "stats", "diagnose", "remediate"} <= tools


def test_openai_compatible_answer_with_an_invented_number_is_rejected(agent_ctx, server, monkeypatch):
    _openai(monkeypatch)
    canned = Canned("diagnose", {"job_id": "2001"}, "Job 2001 ran out of memory after using 97 GB.")
    url = server(canned)
    res = Assistant(agent_ctx, model="openai:gpt-4o-mini", base_url=url + "/v1").ask(
        "why did job 2001 fail?")
    assert canned.requests[0][0] == "/v1/chat/completions"
    assert res.calls[0]["action"] == "diagnose" and res.calls[0]["args"] == {"job_id": "2001"}
    assert res.decided_by == "model" and res.grounding == "rejected"
    assert "97 GB" not in res.answer and "numbers (97)" in res.answer
    assert "## Diagnosis of job 2001" in res.answer  # the deterministic report stands


def test_openai_answer_naming_a_user_no_action_returned_is_rejected(agent_ctx, server, monkeypatch):
    _openai(monkeypatch)
    canned = Canned("diagnose", {"job_id": "2001"}, "The user bob ran out of memory.")
    url = server(canned)
    res = Assistant(agent_ctx, model="openai:gpt-4o-mini", base_url=url + "/v1").ask(
        "why did job 2001 fail?")
    assert res.grounding == "rejected" and "grounding check" in res.answer
    assert "The user bob ran out of memory." not in res.answer


def test_a_wrong_call_falls_back_to_the_router(agent_ctx, server, monkeypatch):
    _openai(monkeypatch)
    canned = Canned("analyze", {"project": "astro-x"}, "unused")  # a project the question never named
    url = server(canned)
    res = Assistant(agent_ctx, model="openai:gpt-4o-mini", base_url=url + "/v1").ask(
        "what's failing in ml-team?")
    assert res.fell_back and res.decided_by == "router"
    assert "wrong call" in res.note and "astro-x" in res.note
    assert res.calls == [{"action": "analyze", "args": {"project": "ml-team"}, "status": "ok"}]
    assert "(chosen by the built-in router)" in res.answer


def test_a_malformed_call_falls_back_to_the_router(agent_ctx, server):
    _ollama()
    canned = Canned("no_such_action", {"x": 1}, "unused")
    url = server(canned)
    res = Assistant(agent_ctx, model="ollama:llama3.1", base_url=url).ask("why did job 2001 fail?")
    assert res.fell_back and res.decided_by == "router" and "unknown tool" in res.note
    assert res.calls[0]["action"] == "diagnose" and res.calls[0]["args"] == {"job_id": "2001"}
