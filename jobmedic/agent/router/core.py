"""The offline router: a question (and the conversation so far) -> the actions to run.

Rules, not a model: intent cues pick the action of each clause, extraction fills its
arguments from the question, and the previous turn fills what a follow-up leaves out ("and
for research?", "what about last month?", "how do I fix that?"). A name the store does not
know, or one that fits several, gets a question back instead of a guess.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from jobmedic.agent.router import args as argmod
from jobmedic.agent.router.extract import Entities, extract
from jobmedic.agent.router.intents import (
    HELP,
    clauses,
    intent_of,
    is_garbage,
    off_topic,
    pasted_text,
)
from jobmedic.agent.router.lexicon import FOLLOWUP_RX, PRONOUN_RX
from jobmedic.agent.router.times import TimeSpec
from jobmedic.agent.router.vocabulary import Vocabulary
from jobmedic.tools import TOOLS, WINDOWED_ACTIONS, WRITE_ACTIONS

MAX_QUESTION = 20_000
READ_ACTIONS = frozenset(t.name for t in TOOLS if not t.writes)
WRITE_REFUSAL = ("Nothing was written: this request would change the store, and I only write "
                 "onto names you can see exactly.")


@dataclass
class Plan:
    """What to do: `calls` (each {"action", "args"}), or a `reply` (help, a question back)."""

    calls: list[dict[str, Any]] = field(default_factory=list)
    reply: str | None = None
    kind: str = "calls"  # calls | clarify | help | bad_input | off_topic
    notes: list[str] = field(default_factory=list)


class Router:
    """Routes questions for one caller: the vocabulary is the caller's scope's."""

    def __init__(self, vocab: Vocabulary, now: int,
                 find_jobs: Callable[[list[str]], dict[str, str]] | None = None,
                 top_failure: Callable[[dict[str, Any]], str | None] | None = None) -> None:
        self.vocab, self.now, self.find_jobs, self.top_failure = vocab, now, find_jobs, top_failure

    def route(self, question: str, history: Sequence[dict[str, Any]] = ()) -> Plan:
        bad = is_garbage(question)
        if bad or len(question) > MAX_QUESTION:
            return Plan(kind="bad_input", reply=bad or "too_long")
        q = question.strip()
        if HELP.search(q):
            return Plan(kind="help")
        paste = pasted_text(q)
        if paste is not None:
            ent = extract(q.splitlines()[0] if "\n" in q else "", self.vocab, self.now)
            return Plan([{"action": "diagnose", "args": argmod.build("diagnose", ent, q, paste)}])
        whole = self._extract(q)
        prev = _last_turn(history)
        recognised = bool(whole.jobs or whole.failure_type or whole.sizes or whole.group_by
                          or set(whole.names) - set(whole.guessed))
        if off_topic(q, recognised, bool(prev or whole.time or FOLLOWUP_RX.search(q))):
            return Plan(kind="off_topic")
        plan = Plan(notes=list(whole.notes))
        seen: set[str] = set()
        parts = clauses(q)
        intents = []
        for part in parts:
            ent = self._extract(part) if len(parts) > 1 else whole
            it = intent_of(part, bool(ent.jobs), ent.success is not None, bool(ent.failure_type))
            it = None if it == "help" else it
            if it is None and intents:
                continue
            intents.append((it, part, ent))
        if all(it is None for it, _, _ in intents):
            intents = [(None, q, whole)]
        else:  # a clause with no request of its own only adds arguments ("CUDA OOM, any tips?")
            intents = [x for x in intents if x[0] is not None]
        for it, part, ent in intents:
            ent = _merge(ent, whole)
            call = self._call(it, part, ent, prev, q)
            if isinstance(call, Plan):
                return call
            key = repr(call)
            if key not in seen:
                seen.add(key)
                plan.calls.extend(call)
        if any(c["action"] in WRITE_ACTIONS for c in plan.calls):
            # words of the error text or the fix itself are data, not names
            said = " ".join(str(v) for c in plan.calls for v in c["args"].values())
            whole.unknown = [u for u in whole.unknown if u[0] not in said]
            whole.ambiguous = [a for a in whole.ambiguous if a[0] not in said]
            if whole.guessed or whole.ambiguous or whole.unknown:
                return self._refuse_guessed_write(whole)
        if whole.ambiguous or whole.unknown:
            return self._ask_back(whole)
        if not plan.calls:
            return Plan(kind="help")
        return plan

    # -- one clause ------------------------------------------------------------------------
    def _call(self, intent: str | None, part: str, ent: Entities, prev: dict[str, Any] | None,
              q: str) -> list[dict[str, Any]] | Plan:
        followup = bool(FOLLOWUP_RX.search(part) or PRONOUN_RX.search(part))
        if intent is None:
            if prev and (followup or len(part.split()) <= 6):
                again = _repeat(prev, ent)
                if again:
                    return again
            if ent.jobs:
                intent = "diagnose"
            elif ent.failure_type:
                intent = "stats"
            elif ent.any_filter() or ent.group_by:
                intent = "stats" if ent.group_by else "analyze"
            else:
                return Plan(kind="help")
        if intent == "running_risk":  # running jobs at risk: predict lists them
            return [{"action": "predict", "args": argmod.running_args(ent)}]
        facts = _facts(prev) if prev else {}
        if intent in WINDOWED_ACTIONS and prev and followup and not ent.any_filter():
            base = next((c["args"] for c in prev["calls"] if c["action"] in WINDOWED_ACTIONS), None)
            if base:
                ent.names.update({k: base[k] for k in argmod.FILTER_KINDS if k in base})
                if intent == "stats" and base.get("failure_type") and not ent.failure_type:
                    ent.failure_type = base["failure_type"]
                if "lookback_days" in base:
                    ent.time = TimeSpec(base["lookback_days"], base.get("as_of"))
        if intent in ("remediate", "record_outcome") and prev and not facts.get("failure_type") \
                and not ent.failure_type and not ent.jobs and self.top_failure is not None:
            for c in prev["calls"]:
                if c["action"] in WINDOWED_ACTIONS:
                    ft = self.top_failure(c["args"])
                    if ft:
                        facts["failure_type"] = ft
                        break
        if intent in ("remediate", "diagnose", "predict", "record_outcome") and not ent.jobs \
                and not (intent in ("remediate", "record_outcome") and ent.failure_type):
            if intent == "predict" and (ent.sizes or ent.names):
                pass
            elif facts.get("job_id") and followup:
                ent.jobs = [facts["job_id"]]
            elif intent in ("remediate", "record_outcome") and facts.get("failure_type") and (followup or prev):
                ent.failure_type = facts["failure_type"]
            elif intent == "remediate":
                return Plan(kind="clarify", reply="Which failure do you want to fix? Name a failure "
                            "type (oom, timeout, node_failure, image_pull, ...) or a job id, e.g. "
                            "`how do I fix OOM?` or `how do I fix job 4242?`.")
            elif intent == "predict":
                return Plan(kind="clarify", reply="Which job? Give a job id (`will job 4242 fail?`) "
                            "or its request, e.g. `will a 4-GPU job with 64G on the gpu partition fail?`.")
            elif intent == "record_outcome":
                return Plan(kind="clarify", reply="Which job or failure type was the fix for? e.g. "
                            "`doubling the memory fixed job 4242`.")
        action = intent
        args = argmod.build(action, ent, part if action in WRITE_ACTIONS else q)
        if action == "record_outcome" and not args.get("solution"):
            return Plan(kind="clarify", reply="What fix was tried? e.g. `doubling the memory fixed "
                        "job 4242` or `raising the time limit did not help job 4242`.")
        if action == "record_failure" and not args.get("job_name"):
            return Plan(kind="clarify", reply="Which job failed? e.g. `record a failure: job "
                        "train-7 in ml-team failed with CUDA out of memory on gpu01`.")
        return [{"action": action, "args": args}]

    def _extract(self, text: str) -> Entities:
        return extract(text, self.vocab, self.now, self.find_jobs)

    def _refuse_guessed_write(self, ent: Entities) -> Plan:
        """A write is never aimed at a guess: a name the caller cannot see exactly (another
        project's, a typo) would otherwise land the record in the nearest project it can see."""
        parts = [WRITE_REFUSAL]
        parts += [n.replace("I read", "I would have had to read") for n in ent.notes]
        if ent.ambiguous or ent.unknown:
            parts.append(self._ask_back(ent).reply.replace(" Ask again with the exact name.", ""))
        parts.append("Ask again with the exact name (a project outside your scope cannot be "
                     "written to).")
        return Plan(kind="clarify", reply=" ".join(parts))

    def _ask_back(self, ent: Entities) -> Plan:
        lines = []
        for tok, names in ent.ambiguous:
            lines.append(f"'{tok}' could be {', '.join(names)}: which one did you mean?")
        for tok, kind, close in ent.unknown:
            what = kind or "project, node, user, queue or image"
            near = f"; did you mean {', '.join(close[:-1]) + ' or ' if len(close) > 1 else ''}" \
                f"{close[-1]}?" if close else "."
            lines.append(f"I don't know a {what} called '{tok}'{near}")
        return Plan(kind="clarify", reply=" ".join(lines) + " Ask again with the exact name.")


def _merge(ent: Entities, whole: Entities) -> Entities:
    """A clause's own arguments, completed by the rest of the question."""
    if ent is whole:
        return ent
    for k, v in whole.names.items():
        ent.names.setdefault(k, v)
    ent.time = ent.time or whole.time
    ent.jobs = ent.jobs or list(whole.jobs)
    ent.failure_type = ent.failure_type or whole.failure_type
    ent.success = ent.success if ent.success is not None else whole.success
    ent.sizes = ent.sizes or dict(whole.sizes)
    return ent


def _last_turn(history: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    for turn in reversed(list(history)):
        if any(c.get("action") in READ_ACTIONS for c in turn.get("calls", [])):
            return turn
    return None


def _facts(turn: dict[str, Any]) -> dict[str, Any]:
    """The previous turn's job and failure type (from its arguments and its results)."""
    out: dict[str, Any] = {}
    for c in turn.get("calls", []):
        args, facts = c.get("args", {}), c.get("facts", {}) or {}
        if args.get("job_id") and "job_id" not in out:
            out["job_id"] = args["job_id"]
        ft = facts.get("failure_type") or args.get("failure_type")
        if ft and "failure_type" not in out:
            out["failure_type"] = ft
    return out


def _repeat(prev: dict[str, Any], ent: Entities) -> list[dict[str, Any]] | None:
    """The previous turn's read actions again, with what this follow-up changes."""
    if not (ent.any_filter() or ent.failure_type or ent.group_by or ent.jobs):
        return None
    out = []
    for c in prev["calls"]:
        action, args = c["action"], dict(c["args"])
        if action not in READ_ACTIONS:
            continue
        if action in WINDOWED_ACTIONS:
            if ent.time:
                args.pop("lookback_days", None)
                args.pop("as_of", None)
                args.update(ent.time.args())
            for k in argmod.FILTER_KINDS:
                if k in ent.names:
                    args[k] = ent.names[k]
            if action == "stats" and ent.failure_type:
                args["failure_type"] = ent.failure_type
            if action == "stats" and ent.group_by:
                args["group_by"] = list(ent.group_by)
        elif action == "remediate":
            if ent.failure_type:
                args = {"failure_type": ent.failure_type}
            elif ent.jobs:
                args = {"job_id": ent.jobs[0]}
            if "project" in ent.names:
                args["project"] = ent.names["project"]
        elif action in ("diagnose", "predict") and ent.jobs:
            args = {"job_id": ent.jobs[0]}
        elif action == "predict":
            for k in ("user", "project", "queue", "image"):
                if k in ent.names:
                    args[k] = ent.names[k]
            args.update(ent.sizes)
        out.append({"action": action, "args": args})
    return out or None


__all__ = ["Plan", "Router"]
