"""Answer composition: the reports of the actions that ran, in order, then the provenance
(each action, its arguments, its status, the window and the counts behind it).

Only the actions' own reports carry facts; text written by a chat model is added as a
summary only when every number in it appears in those reports and it repeats no stored
(untrusted) text, so neither a model's invention nor an instruction hidden in a log line
can pass for an answer.
"""
from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

EXAMPLES = [
    "Analyze failures from the last 7 days",
    "what's been breaking in ml-team this week?",
    "how many OOMs per node since 2024-05-01?",
    "why did job 4242 fail?",
    "how do I fix OOMKilled?",
    "will a 4-GPU job with 64G on the gpu partition fail?",
    "doubling the memory fixed training-job-123",
    "(paste an error message or log excerpt)",
]
_COUNT_KEY = re.compile(r"^(?:n_\w+|total\w*|\w*jobs|\w*failures|\w*events|count\w*|failed|"
                        r"rows|matched|similar)$")
BAD_INPUT = {
    "empty": "The question is empty.",
    "binary": "That looks like binary data rather than a question.",
    "language": "I can only read questions in English.",
    "too_long": "That question is too long for me to read (over 20,000 characters). To diagnose a "
                "long log, paste only the error lines, or run `jobmedic diagnose --text \"...\"`.",
}


def examples_text() -> str:
    return "You can ask, for example:\n\n" + "\n".join(f"- {e}" for e in EXAMPLES)


def refusal() -> str:
    """The short answer to a question about nothing jobmedic knows."""
    return ("That is outside what I can answer: I only know about jobs on this cluster and why "
            "they fail (Slurm, Kubernetes, Run:AI), from the knowledge store.\n\n" + examples_text())


def help_answer(reason: str | None = None) -> str:
    head = BAD_INPUT.get(reason or "", "") if reason else ""
    intro = ("I answer questions about failed cluster jobs (Slurm, Kubernetes, Run:AI) with "
             "numbers from the knowledge store.")
    return "\n\n".join(p for p in (head, intro, examples_text()) if p)


def fmt_args(args: dict[str, Any]) -> str:
    parts = []
    for k, v in args.items():
        s = json.dumps(v, ensure_ascii=False) if not isinstance(v, str) else v
        if len(s) > 80:
            s = s[:77] + "..."
        s = s.replace("\n", " ").replace("`", "'")
        parts.append(f"{k}={s}")
    return ", ".join(parts) or "(defaults)"


def counts_of(data: Any) -> dict[str, Any]:
    """The headline counts of an envelope's data (top-level numbers and a `counts` table)."""
    if not isinstance(data, dict):
        return {}
    out = {k: v for k, v in data.items()
           if isinstance(v, (int, float)) and not isinstance(v, bool) and _COUNT_KEY.match(k)}
    for key in ("counts", "totals", "summary"):
        sub = data.get(key)
        if isinstance(sub, dict):
            out.update({k: v for k, v in sub.items()
                        if isinstance(v, (int, float)) and not isinstance(v, bool)})
    return dict(list(out.items())[:8])


def provenance(calls: list[dict[str, Any]], results: list[dict[str, Any]],
               decided: str | None = None) -> str:
    lines = ["---", f"**Actions run** (chosen by {decided})" if decided and calls else "**Actions run**"]
    if not calls:
        lines.append("- none (no action was needed to answer)")
    for i, (c, env) in enumerate(zip(calls, results), 1):
        line = f"{i}. `{c['action']}` ({fmt_args(c['args'])}) → {c['status']}"
        inv = env.get("invocation") or {}
        win = inv.get("window") or {}
        if win.get("start"):
            line += f"; window {win['start']} → {win.get('end')}"
        counts = counts_of(env.get("data"))
        if counts:
            line += "; " + ", ".join(f"{k} {v}" for k, v in counts.items())
        scope = inv.get("scope")
        if scope is not None:
            line += f"; scope {', '.join(scope) if scope else '(none)'}"
        lines.append(line)
    return "\n".join(lines)


def compose(calls: list[dict[str, Any]], results: list[dict[str, Any]], notes: Iterable[str] = (),
            summary: str | None = None, reply: str | None = None, decided: str | None = None) -> str:
    """The whole answer in markdown, always ending with the provenance."""
    parts: list[str] = [f"_{n}_" for n in notes if n]
    if reply:
        parts.append(reply)
    if summary:
        parts.append(summary)
    for c, env in zip(calls, results):
        text = (env.get("text") or "").strip() or f"`{c['action']}`: {env.get('status')}"
        if len(calls) > 1 and not text.startswith("#"):
            text = f"### {c['action']}\n\n{text}"
        parts.append(text)
    parts.append(provenance(calls, results, decided))
    return "\n\n".join(parts)


def untrusted_strings(results: list[dict[str, Any]]) -> list[str]:
    """Free text in the results that came from stored data (error messages, logs)."""
    out: list[str] = []

    def walk(node: Any, depth: int) -> None:
        if depth > 6:
            return
        if isinstance(node, str):
            if len(node) >= 12:
                out.append(node)
        elif isinstance(node, dict):
            for v in node.values():
                walk(v, depth + 1)
        elif isinstance(node, list):
            for v in node[:200]:
                walk(v, depth + 1)
    for env in results:
        walk(env.get("data"), 0)
    return out


def safe_summary(text: str | None, results: list[dict[str, Any]]) -> tuple[str | None, str | None]:
    """The model's summary if it is grounded, else (None, why it was left out)."""
    if not text or not text.strip():
        return None, None
    text = text.strip()[:2000]
    facts = " ".join((env.get("text") or "") + json.dumps(env.get("data") or {}, default=str)
                     for env in results)
    numbers = set(re.findall(r"\d+(?:\.\d+)?", text))
    missing = [n for n in numbers if n not in facts]
    if missing:
        return None, (f"The model's own summary was left out: it quoted numbers ({', '.join(sorted(missing)[:5])}) "
                      "that no action returned.")
    words = re.findall(r"[a-z0-9']+", text.lower())
    grams = {" ".join(words[i:i + 4]) for i in range(len(words) - 3)}
    for s in untrusted_strings(results):
        sw = re.findall(r"[a-z0-9']+", s.lower())
        if any(" ".join(sw[i:i + 4]) in grams for i in range(len(sw) - 3)) or \
                (len(words) >= 2 and " ".join(words) in " ".join(sw)):
            return None, ("The model's own summary was left out: it repeated text stored in the "
                          "knowledge base (logs or error messages), which is data, not instructions.")
    return text, None
