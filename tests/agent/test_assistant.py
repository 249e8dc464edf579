"""The assistant end to end with the router: answers end with provenance, bad input gets a
polite answer, scope hides other projects, sessions persist across processes."""
from __future__ import annotations

import json
import random

import pytest
from typer.testing import CliRunner

from jobmedic.agent import AskResult, Assistant
from jobmedic.cli import app
from jobmedic.knowledge.store import Store
from tests.agent.conftest import build_store, make_ctx


def test_answer_has_reports_and_provenance(assistant):
    res = assistant.ask("how many OOMs last week and how do I fix them")
    assert isinstance(res, AskResult) and not res.fell_back and res.note is None
    assert [c["action"] for c in res.calls] == ["stats", "remediate"]
    assert all(c["status"] == "ok" for c in res.calls)
    assert [r["action"] for r in res.results] == ["stats", "remediate"]
    body, prov = res.answer.rsplit("---\n**Actions run**", 1)
    assert body.index("## Failure statistics") < body.index("## Fixes for `oom`")
    assert "1. `stats` (lookback_days=7, failure_type=oom) → ok; window 2024-04-26T12:00:00Z" in prov
    assert "2. `remediate` (failure_type=oom) → ok" in prov
    assert "failures" in prov.split("\n")[1]  # the counts behind it
    d = res.to_dict()
    assert set(d) == {"answer", "calls"} and d["calls"][0] == {
        "action": "stats", "args": {"failure_type": "oom", "lookback_days": 7}, "status": "ok"}
    json.dumps(d)


@pytest.mark.parametrize("question", [
    "", "   ", "x" * 100_000, "為什麼我的作業失敗了？", "Почему упала моя задача?",
    "¿por qué falló mi trabajo?", "\x00\x01\x02\x7f\x1b[31m\xff\xfe binary \x00\x00",
    bytes(range(256)).decode("latin-1"), "asdf qwerty zxcv", "?!?!", "help",
])
def test_bad_input_gets_examples_never_a_traceback(assistant, question):
    res = assistant.ask(question)
    assert res.calls == [] and res.kind in ("bad_input", "help")
    assert "You can ask, for example" in res.answer
    assert "Traceback" not in res.answer
    assert res.answer.rstrip().endswith("- none (no action was needed to answer)")


def test_long_question_is_declined_politely(assistant):
    res = assistant.ask("why did my job fail " * 6000)
    assert res.kind == "bad_input" and "too long" in res.answer


def test_random_input_never_raises(assistant):
    rnd = random.Random(7)
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789 -_.:/?!'\"#$%&()[]{}\n\tæøå中文€"
    for _ in range(150):
        q = "".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 120)))
        res = assistant.ask(q, session="fuzz")
        assert isinstance(res.answer, str) and res.answer
        # a polite error answer is non-empty too: no answer may come from an internal fault
        assert res.kind != "error", (q, res.answer)
        internal = [r for r in res.results if (r.get("error") or {}).get("type") == "internal_error"]
        assert not internal, (q, internal)


def test_bytes_and_none_questions(assistant):
    assert assistant.ask(b"analyze ml-team").calls[0]["args"] == {"project": "ml-team"}
    assert assistant.ask(None).kind == "bad_input"  # type: ignore[arg-type]


def test_scope_out_of_scope_project_answers_like_a_missing_one(agent_store, taxonomy):
    scoped = Assistant(make_ctx(agent_store, taxonomy, scope=["ml-team"]))
    hidden = scoped.ask("analyze project research", session="a")
    missing = scoped.ask("analyze project rezzarch", session="b")
    assert hidden.calls == missing.calls == []
    assert hidden.answer.replace("research", "X") == missing.answer.replace("rezzarch", "X")
    # fuzzy matching never reaches out of scope either
    typo = scoped.ask("analyze reserch", session="c")
    assert [(c["action"], c["args"]) for c in typo.calls] == [("analyze", {})]
    assert "research" not in typo.answer
    res = scoped.ask("failure counts by project this month", session="e")
    assert res.calls and all(c["status"] in ("ok", "no_data") for c in res.calls)
    for name in ("research", "chem", "physics", "ml-infra", "ivan", "judy"):
        assert name not in res.answer
    assert "scope ml-team" in res.answer


def test_sessions_persist_across_processes(tmp_path, taxonomy):
    path = tmp_path / "jm.db"
    with Store(path) as s1:
        build_store(s1, taxonomy)
        first = Assistant(make_ctx(s1, taxonomy)).ask("analyze ml-team last week", session="s")
        assert first.calls[0]["args"] == {"project": "ml-team", "lookback_days": 7}
    with Store(path) as s2:  # a second process: a new connection, a new assistant
        a2 = Assistant(make_ctx(s2, taxonomy))
        follow = a2.ask("and for research?", session="s")
        assert follow.calls[0]["args"] == {"project": "research", "lookback_days": 7}
        other = a2.ask("and for research?", session="another")
        assert other.calls[0]["args"] == {"project": "research"}
        scoped = Assistant(make_ctx(s2, taxonomy, scope=["research"]))
        assert scoped.ask("what about last month?", session="s").calls[0]["args"] == {
            "lookback_days": 30}  # no ml-team / research context from the unscoped session
        assert s2.load_session("s") is None  # keyed by name and scope, not by name alone
        assert len(s2.list_sessions()) >= 2


def test_cli_ask_json_and_session(tmp_path, taxonomy):
    db = tmp_path / "cli.db"
    with Store(db) as s:
        build_store(s, taxonomy)
    runner = CliRunner()
    base = ["--db", str(db), "--as-of", "2024-05-03T12:00:00"]
    r = runner.invoke(app, base + ["ask", "--json", "--session", "t", "how many ooms last week"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["calls"] == [{"action": "stats", "args": {"failure_type": "oom", "lookback_days": 7},
                             "status": "ok"}]
    assert "**Actions run**" in out["answer"]
    r = runner.invoke(app, base + ["ask", "--session", "t", "what about last month?"])
    assert r.exit_code == 0 and "`stats` (failure_type=oom, lookback_days=30)" in r.stdout
    r = runner.invoke(app, base + ["ask", "--model", "ollama:llama3.1", "--base-url",
                                   "http://127.0.0.1:9", "analyze ml-team"])
    assert r.exit_code == 0 and "router answered" in r.stdout
    r = runner.invoke(app, base + ["ask", "-"], input="Traceback (most recent call last):\n"
                      "  File \"x.py\", line 3\nRuntimeError: CUDA out of memory\n")
    assert r.exit_code == 0 and "`diagnose`" in r.stdout
    r = runner.invoke(app, base + ["ask", ""])
    assert r.exit_code == 0 and "You can ask, for example" in r.stdout


@pytest.mark.parametrize("hidden,missing", [
    ("why did job 2003 fail?", "why did job 9876 fail?"),
    ("what killed llm-finetune-7", "what killed llm-finetune-99"),
    ("how much memory does md-sim need", "how much memory does zz-sim need"),
])
def test_scope_jobs_of_other_projects_answer_like_missing_ones(agent_store, taxonomy, hidden, missing):
    """Another project's job answers as if it did not exist: the same actions and statuses as
    a missing one, and word for word the answer the same question gets from a store where the
    other projects' jobs and events were never ingested (the closest ids suggested for a
    missing job come from the caller's own jobs only)."""
    scoped = Assistant(make_ctx(agent_store, taxonomy, scope=["ml-team"]))
    a, b = scoped.ask(hidden, session="h"), scoped.ask(missing, session="m")
    assert [c["action"] for c in a.calls] == [c["action"] for c in b.calls]
    assert [c["status"] for c in a.calls] == [c["status"] for c in b.calls]
    own = Store(":memory:")
    agent_store.conn.backup(own.conn)
    for table in ("jobs", "failure_events"):
        own.conn.execute(f"DELETE FROM {table} WHERE project IS NOT 'ml-team'")
    own.conn.commit()
    alone = Assistant(make_ctx(own, taxonomy, scope=["ml-team"])).ask(hidden, session="h")
    assert a.answer == alone.answer
    for secret in ("research", "chem", "ivan", "judy", "dgx-h100-3"):
        assert secret not in a.answer


def test_an_internal_error_is_a_polite_answer(assistant, monkeypatch):
    def boom(*a, **k):
        raise RuntimeError("simulated bug")
    monkeypatch.setattr(type(assistant), "router", boom)
    res = assistant.ask("analyze ml-team")
    assert res.kind == "error" and res.calls == []
    assert "went wrong on my side while answering (RuntimeError)" in res.answer and "simulated bug" not in res.answer
    assert "You can ask, for example" in res.answer


def test_follow_up_pronoun_uses_the_job_but_a_new_error_text_does_not(assistant):
    assistant.ask("why did job 2001 fail", session="f")
    assert assistant.ask("why did it fail?", session="f").calls[0]["args"] == {"job_id": "2001"}
    res = assistant.ask("what does exit code 137 mean", session="f")
    assert res.calls[0]["args"] == {"text": "what does exit code 137 mean"}
