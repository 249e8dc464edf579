"""The real local chat model through the agent (issue 13): SmolLM2-135M-Instruct (GGUF, the
`local-llm` extra) on this machine's CPU, 20 questions of tests/agent/questions_heldout2.yaml
(every second one that expects actions) against the agent test store.

`python -m bench.bench_local_llm [--n 20] [--threads 1]` -> bench/out/local_llm.json

Figures: tool-call validity (the model's call was parsed, names a known action, its
arguments pass the request model and the wrong-call check, so the model decided), the
fallback rate (the router decided instead), the model's chosen actions against the expected
ones, grounding (the model's wording accepted or rejected), latency per answer (model load
reported apart).
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from jobmedic.agent import Assistant
from jobmedic.agent.local_model import LocalChatModel, gguf_path, load
from jobmedic.knowledge.store import Store
from jobmedic.knowledge.taxonomy import Taxonomy
from jobmedic.settings import config_path
from tests.agent.conftest import build_store, make_ctx
from tests.agent.evaluation import QUESTIONS, load_items

OUT = Path(__file__).resolve().parent / "out"


def questions(n: int) -> list[dict]:
    items = [it for it in load_items(QUESTIONS.with_name("questions_heldout2.yaml"))
             if isinstance(it["expect"], list) and not it.get("before")]
    return items[::2][:n]


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=20)
    ap.add_argument("--threads", type=int, default=None)
    a = ap.parse_args(argv)
    t = time.perf_counter()
    load(gguf_path("smollm2"))
    load_s = time.perf_counter() - t
    tax = Taxonomy.from_yaml(config_path("taxonomy.yaml"))
    ctx = make_ctx(build_store(Store(":memory:"), tax), tax)
    model = LocalChatModel(threads=a.threads)
    rows = []
    for i, it in enumerate(questions(a.n)):
        res = Assistant(ctx, model="local:smollm2", chat_model=model).ask(it["q"], session=f"b{i}")
        expected = [e["action"] for e in it["expect"]]
        rows.append({"q": it["q"][:80], "decided_by": res.decided_by, "note": res.note,
                     "actions": [c["action"] for c in res.calls], "expected": expected,
                     "grounding": res.grounding, "ms": round(res.timings.get("total_ms", 0))})
        print(json.dumps(rows[-1]), flush=True)
    n = len(rows)
    by_model = [r for r in rows if r["decided_by"] == "model"]
    ms = [r["ms"] for r in rows]
    out = {"questions": n, "load_s": round(load_s, 1), "threads": a.threads,
           "tool_call_valid": len(by_model), "tool_call_validity_rate": round(len(by_model) / n, 3),
           "fallback_rate": round(sum(r["decided_by"] == "router" for r in rows) / n, 3),
           "model_actions_as_expected": sum(r["actions"] == r["expected"] for r in by_model),
           "answers_as_expected": sum(r["actions"] == r["expected"] for r in rows),
           "grounding_accepted": sum(r["grounding"] == "accepted" for r in rows),
           "grounding_rejected": sum(r["grounding"] == "rejected" for r in rows),
           "latency_ms_median": round(statistics.median(ms)), "latency_ms_max": max(ms),
           "fallback_reasons": sorted({(r["note"] or "")[:90] for r in rows if r["note"]})}
    OUT.mkdir(exist_ok=True)
    (OUT / "local_llm.json").write_text(json.dumps({"summary": out, "rows": rows}, indent=1))
    print(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main()
