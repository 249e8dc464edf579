"""Scoring of the assistant's evaluation set (tests/agent/questions.yaml): action accuracy
(the list of actions run is exactly the expected one, or the answer asks back / helps as
expected, or refuses a question about nothing it knows) and argument accuracy (the actions are right and every argument matches: no
missing and no extra arguments; "re:..." values match free text by regular expression)."""
from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

QUESTIONS = Path(__file__).resolve().parent / "questions.yaml"


def load_items(path: Path = QUESTIONS) -> list[dict[str, Any]]:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def value_matches(exp: Any, got: Any) -> bool:
    if isinstance(exp, str) and exp.startswith("re:"):
        return isinstance(got, str) and re.search(exp[3:], got, re.IGNORECASE | re.DOTALL) is not None
    if isinstance(exp, bool) or isinstance(got, bool):
        return exp is got
    if isinstance(exp, (int, float)) and isinstance(got, (int, float)):
        return abs(exp - got) < 1e-3
    return exp == got


def args_match(exp: dict[str, Any], got: dict[str, Any]) -> bool:
    return set(exp) == set(got) and all(value_matches(exp[k], got[k]) for k in exp)


def score_item(item: dict[str, Any], result: Any) -> tuple[bool, bool]:
    """(actions right, actions and arguments right) for one answer."""
    exp = item["expect"]
    said = item.get("answer")  # "re:...": the answer's text must match too
    if said is not None and not value_matches(said, result.answer):
        return False, False
    if exp in ("clarify", "help", "refuse"):
        kinds = {"clarify": {"clarify"}, "help": {"help", "bad_input"}, "refuse": {"off_topic"}}[exp]
        ok = not result.calls and result.kind in kinds
        return ok, ok
    actions_ok = [c["action"] for c in result.calls] == [e["action"] for e in exp]
    args_ok = actions_ok and all(args_match(e.get("args") or {}, c["args"])
                                 for e, c in zip(exp, result.calls))
    return actions_ok, args_ok


def evaluate(make_assistant: Callable[[], Any], items: list[dict[str, Any]] | None = None
             ) -> dict[str, Any]:
    """Ask every question (after its `before` questions, in its own session) and score it."""
    items = load_items() if items is None else items
    assistant = make_assistant()
    n_act = n_arg = 0
    failures = []
    for i, item in enumerate(items):
        session = f"eval-{i}"
        for before in item.get("before") or []:
            assistant.ask(before, session=session)
        q = item["q"]
        result = assistant.ask(q, session=session)
        a_ok, g_ok = score_item(item, result)
        n_act += a_ok
        n_arg += g_ok
        if not g_ok:
            failures.append({"q": q[:120], "expect": item["expect"], "kind": result.kind,
                             "got": [{"action": c["action"], "args": c["args"]} for c in result.calls]})
    n = len(items)
    return {"questions": n, "action_accuracy": n_act / n, "argument_accuracy": n_arg / n,
            "failures": failures}
