"""The assistant: one question in, the actions it needs run in the caller's scope, one
composed answer out (see the package docstring for the interface)."""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from jobmedic.agent import compose as comp
from jobmedic.agent import session as sess
from jobmedic.agent.grounding import call_problem, check_answer
from jobmedic.agent.loop import Outcome, run_plan
from jobmedic.agent.models import describe_failure, is_router
from jobmedic.agent.router import Plan, Router, Vocabulary
from jobmedic.core.timeutil import parse_time_arg
from jobmedic.tools import WRITE_ACTIONS, ToolContext

log = logging.getLogger("jobmedic.agent")


@dataclass
class AskResult:
    """One answer: markdown ending with its provenance, the calls that ran and their envelopes."""

    answer: str
    calls: list[dict[str, Any]] = field(default_factory=list)  # {"action", "args", "status"}
    results: list[dict[str, Any]] = field(default_factory=list)  # the full envelopes
    fell_back: bool = False  # the configured model failed and the router answered
    note: str | None = None  # why it fell back (also said in the answer)
    kind: str = "answer"  # answer | clarify | help | bad_input | off_topic | error
    timings: dict[str, float] = field(default_factory=dict)  # ms: route, actions, total
    decided_by: str = "router"  # router | model: which chose the actions
    grounding: str | None = None  # accepted | rejected: the model's wording, when it gave one

    def to_dict(self) -> dict[str, Any]:
        """The `jobmedic ask --json` and `POST /v1/ask` shape."""
        return {"answer": self.answer, "calls": [dict(c) for c in self.calls]}


def system_prompt() -> str:
    return resources.files("jobmedic.agent").joinpath("prompts/system.md").read_text(encoding="utf-8")


class Assistant:
    """Answers questions for one caller (`ctx`: store, taxonomy, scope, now)."""

    def __init__(self, ctx: ToolContext, model: str = "router", base_url: str | None = None,
                 timeout_s: float = 30, *, chat_model: Any = None,
                 prompt: str | None = None) -> None:
        self.ctx, self.model, self.base_url, self.timeout_s = ctx, model or "router", base_url, timeout_s
        self._chat_model, self._prompt = chat_model, prompt

    # -- the one entry point ---------------------------------------------------------------
    def ask(self, question: str, session: str = "default") -> AskResult:
        """Answer one question in a conversation; never raises for any input."""
        t0 = time.perf_counter()
        try:
            return self._ask(question, session, t0)
        except Exception as exc:  # the boundary: a polite answer, not a traceback
            log.exception("assistant failed on %r", str(question)[:200])
            text = (f"Something went wrong on my side while answering ({type(exc).__name__}); "
                    "the log has the details.\n\n" + comp.examples_text())
            return self._reply(text, "error", t0, time.perf_counter())

    def _ask(self, question: str, session: str, t0: float) -> AskResult:
        if isinstance(question, bytes):
            question = question.decode("utf-8", errors="replace")
        question = "" if question is None else str(question)
        turns = sess.load_turns(self.ctx.store, session, self.ctx.scope)
        router = self.router()
        plan = router.route(question, turns)
        t_route = time.perf_counter()
        if plan.kind == "bad_input":
            return self._reply(comp.help_answer(plan.reply), "bad_input", t0, t_route)
        if plan.kind == "off_topic":  # no model is asked: there is nothing to look up
            return self._reply(comp.refusal(), "off_topic", t0, t_route)
        fell_back, note, out, done = False, None, None, Outcome()
        if self._chat_model is not None or not is_router(self.model):
            try:
                out = self._run_model(question, turns, plan)
            except Exception as exc:  # noqa: BLE001 - any model failure: the router answers
                fell_back, note = True, describe_failure(self._model_name(), exc)
                done = _writes_done(getattr(exc, "partial", None))
        if out is None:
            if plan.kind in ("help", "clarify") and not done.calls:
                text = plan.reply if plan.kind == "clarify" else comp.help_answer()
                return self._reply(text, plan.kind, t0, t_route, note)
            out = run_plan(plan.calls, self.ctx, skip=[c["action"] for c in done.calls])
            out.calls, out.results = done.calls + out.calls, done.results + out.results
            out.actions_s += done.actions_s
            out.notes = plan.notes + out.notes
        notes = ([note] if note else []) + out.notes
        summary, grounding = None, None
        decided = "router" if fell_back or self._chat_model is None and is_router(self.model) \
            else "model"
        if out.summary:
            summary, why = comp.safe_summary(out.summary, out.results)
            ok, bad = check_answer(summary, out.results, router.vocab.all_names(),
                                   self.ctx.taxonomy.codes.keys())
            if not ok:
                summary, why = None, (f"The model's wording was rejected by the grounding check: "
                                      f"{bad}; the report below is the deterministic one.")
            grounding = "accepted" if summary else "rejected"
            if why:
                notes.append(why)
        configured = self._chat_model is not None or not is_router(self.model)
        who = None if not configured else (  # the default router: provenance as before
            "the built-in router" if decided == "router" else f"the model {self._model_name()}")
        answer = comp.compose(out.calls, out.results, notes, summary, decided=who)
        if out.calls:
            codes = self.ctx.taxonomy.codes.keys()
            turns.append(sess.turn_record(question, out.calls, out.results, codes))
            sess.save_turns(self.ctx.store, session, self.ctx.scope, turns)
        t1 = time.perf_counter()
        timings = {"route_ms": (t_route - t0) * 1e3, "actions_ms": out.actions_s * 1e3,
                   "total_ms": (t1 - t0) * 1e3}
        timings["overhead_ms"] = timings["total_ms"] - timings["actions_ms"]
        return AskResult(answer, out.calls, out.results, fell_back, note, "answer", timings,
                         decided, grounding)

    # -- parts ------------------------------------------------------------------------------
    def router(self) -> Router:
        store, scope = self.ctx.store, self.ctx.scope
        vocab = Vocabulary.from_store(store, scope)
        return Router(vocab, self.ctx.current_time(),
                      find_jobs=lambda toks: store.find_job_refs(toks, scope),
                      top_failure=self._top_failure)

    def _top_failure(self, args: dict[str, Any]) -> str | None:
        """The most frequent failure type in the window and filters of an earlier call."""
        try:
            now = parse_time_arg(args["as_of"], "as_of") if args.get("as_of") else self.ctx.current_time()
            start = int(now - float(args.get("lookback_days") or 7) * 86400)
            return self.ctx.store.top_failure_type(start, now, self.ctx.scope, args)
        except Exception:  # noqa: BLE001 - no fact: the router asks back instead
            return None

    def _model_name(self) -> str:
        return self.model if not is_router(self.model) else type(self._chat_model).__name__

    def _run_model(self, question: str, turns: list[dict[str, Any]], plan: Plan) -> Outcome:
        from jobmedic.agent.loop import run_chat_model
        from jobmedic.agent.models import make_chat_model

        model = self._chat_model or make_chat_model(self.model, self.base_url, self.timeout_s)
        if type(model).__name__ == "RouterChatModel":  # the router reads the session itself
            model = model.model_copy(update={"history": list(turns)})
        writes = [c["action"] for c in plan.calls if c["action"] in WRITE_ACTIONS]
        return run_chat_model(model, question, turns, self.ctx, self._prompt or system_prompt(),
                              writes_asked=writes,
                              check=lambda name, args: call_problem(name, args, question, plan.calls))

    def _reply(self, text: str, kind: str, t0: float, t_route: float,
               note: str | None = None) -> AskResult:
        body = "\n\n".join(p for p in ((f"_{note}_" if note else ""), text) if p)
        answer = comp.compose([], [], (), None, body)
        total = (time.perf_counter() - t0) * 1e3
        return AskResult(answer, [], [], note is not None, note, kind,
                         {"route_ms": (t_route - t0) * 1e3, "actions_ms": 0.0, "total_ms": total,
                          "overhead_ms": total})


def _writes_done(partial: Outcome | None) -> Outcome:
    """The writes a failed model attempt already made (kept, and not made again)."""
    done = Outcome()
    if partial is None:
        return done
    for call, env in zip(partial.calls, partial.results):
        if call["action"] in WRITE_ACTIONS and call["status"] == "ok":
            done.calls.append(call)
            done.results.append(env)
    return done
