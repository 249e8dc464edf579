"""Grounding checks for what a chat model says and asks for.

- `check_answer`: the model may word the final answer, but every number, job id, node,
  user, project and failure type it states must appear in the envelopes the actions
  returned; otherwise the answer is rejected (the deterministic report stands alone).
- `call_problem`: a tool call is wrong when it names a job, node, user, project, queue or
  image that neither the question nor the router's reading of it contains (a model must not
  invent what to look up); the assistant then falls back to the router.
"""
from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from jobmedic.agent.router.extract import failure_type_of, looks_like_job_name
from jobmedic.agent.router.lexicon import FAILURE_RX

NUMBER = re.compile(r"(?<![\w.\-/:])\d+(?:[.,]\d+)*(?![\w\-/:])")
TOKEN = re.compile(r"[A-Za-z0-9][\w.\-/:@]*[A-Za-z0-9]|[A-Za-z0-9]")
NAME_ARGS = ("job_id", "name", "project", "node", "user", "queue", "image", "cluster")


def _facts(results: Iterable[dict[str, Any]]) -> str:
    return " ".join((env.get("text") or "") + " " + json.dumps(env.get("data") or {}, default=str)
                    for env in results).lower()


def _numbers(text: str) -> set[float]:
    out = set()
    for n in NUMBER.findall(text):
        try:
            out.add(round(float(n.replace(",", "")), 6))
        except ValueError:
            continue
    return out


def _number_ok(token: str, facts: set[float]) -> bool:
    """A number is grounded when an action returned it, or a figure it rounds (2.3 for 2.33,
    41 % for 0.4132)."""
    n = round(float(token.replace(",", "")), 6)
    places = len(token.split(".", 1)[1]) if "." in token else 0
    return n in facts or any(round(f, places) == n or round(f * 100, places) == n for f in facts)


def check_answer(text: str | None, results: list[dict[str, Any]], names: Iterable[str],
                 codes: Iterable[str]) -> tuple[bool, str | None]:
    """(grounded, why not): `names` are the store's known names (nodes, users, projects, ...),
    `codes` the taxonomy's failure types."""
    if not text or not text.strip():
        return True, None
    facts = _facts(results)
    fact_numbers = _numbers(facts)
    fact_tokens = set(TOKEN.findall(facts))
    low = text.lower()
    bad = [n for n in NUMBER.findall(text) if not _number_ok(n, fact_numbers)]
    if bad:
        return False, f"it states numbers no action returned ({', '.join(bad[:4])})"
    known = {n.lower() for n in names}
    for tok in TOKEN.findall(low):
        if (tok in known or looks_like_job_name(tok)) and tok not in fact_tokens and tok not in facts:
            return False, f"it names {tok!r}, which no action returned"
    for code in codes:
        if re.search(rf"\b{re.escape(code.lower())}\b", low) and code.lower() not in facts:
            return False, f"it states the failure type {code!r}, which no action returned"
    for code, rx in FAILURE_RX:
        if rx.search(low) and code.lower() not in facts:
            return False, f"it describes a {code} failure, which no action returned"
    return True, None


def call_problem(action: str, args: dict[str, Any], question: str,
                 plan_calls: Iterable[dict[str, Any]]) -> str | None:
    """Why a model's tool call is wrong (it names what the question does not), or None."""
    q = question.lower()
    routed = {str(v).lower() for c in plan_calls for k, v in (c.get("args") or {}).items()
              if k in NAME_ARGS}
    for k in NAME_ARGS:
        v = args.get(k)
        if v is None or v == "":
            continue
        s = str(v).lower()
        if s not in q and s not in routed:
            return f"{action} was called with {k}={v!r}, which the question does not mention"
    ft = args.get("failure_type")
    if ft and ft not in {c.get("args", {}).get("failure_type") for c in plan_calls} \
            and failure_type_of(q)[0] != ft and ft.lower() not in q:
        return f"{action} was called with failure_type={ft!r}, which the question does not mention"
    return None


__all__ = ["call_problem", "check_answer"]
