"""diagnose on pasted text: latency per text and classifier training time (issue 13).

`python -m bench diagnose [--repeat 5]` (in-process; the CLI's warm path, `jobmedic serve`
over HTTP, is bench/bench_diagnose_warm.py): every text of the corpus of real error output
(tests/data/diagnose_corpus.jsonl, all <= 8 KB) is diagnosed in-process, `--repeat` times:
(a) reading only (jobmedic.knowledge.readout.read_text: cleaning, line rules, the classifier
when the rules find nothing), and (b) the whole diagnose action through run_action on an
in-memory store (root cause, fixes, similar failures, the report); and (c) the action on
8 KB pastes (each corpus text after other corpus texts). Medians and p95 per text, wall
clock and CPU time of this process (the CPU figure is the one to read on a loaded, shared
machine: waiting for a core does not count); then the classifier is retrained on the corpus
TRAIN split into a temporary file and timed.
"""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from jobmedic.app import load_rules, load_taxonomy
from jobmedic.knowledge import textclf
from jobmedic.knowledge.readout import read_text
from jobmedic.knowledge.store import Store
from jobmedic.tools import ToolContext, run_action

CORPUS = Path(__file__).resolve().parent.parent / "tests" / "data" / "diagnose_corpus.jsonl"


def _stats(ms: list[float]) -> dict[str, float]:
    ms = sorted(ms)
    return {"median_ms": round(statistics.median(ms), 2),
            "p95_ms": round(ms[int(0.95 * (len(ms) - 1))], 2), "max_ms": round(ms[-1], 2)}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(prog="python -m bench diagnose")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args(argv)
    rows = [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines()]
    texts = [r["text"] for r in rows if len(r["text"].encode()) <= 8192]
    tax = load_taxonomy()
    ctx = ToolContext(store=Store(":memory:"), taxonomy=tax, rules=load_rules(tax))
    read_text(tax, texts[0])  # warm: compile the rules, load the classifier
    run_action({"action": "diagnose", "text": texts[0]}, ctx)
    # 8 KB pastes: each corpus text after other corpus texts, up to 8,192 bytes in all
    pool = "\n".join(texts)
    big = [(pool[i * 997 % len(pool):] + pool)[: 8192 - len(t.encode()) - 1] + "\n" + t
           for i, t in enumerate(texts) if len(t.encode()) < 8000]
    big_ms, big_cpu = [], []
    for t in big:
        t0, c0 = time.perf_counter(), time.process_time()
        run_action({"action": "diagnose", "text": t}, ctx)
        big_ms.append((time.perf_counter() - t0) * 1000)
        big_cpu.append((time.process_time() - c0) * 1000)
    read_ms, action_ms, read_cpu, action_cpu = [], [], [], []
    for _ in range(args.repeat):
        for t in texts:
            t0, c0 = time.perf_counter(), time.process_time()
            read_text(tax, t)
            read_ms.append((time.perf_counter() - t0) * 1000)
            read_cpu.append((time.process_time() - c0) * 1000)
            t0, c0 = time.perf_counter(), time.process_time()
            r = run_action({"action": "diagnose", "text": t}, ctx)
            action_ms.append((time.perf_counter() - t0) * 1000)
            action_cpu.append((time.process_time() - c0) * 1000)
            assert r.status == "ok", r.error
    train = [r for r in rows if r["split"] == "train"]
    t0, c0 = time.perf_counter(), time.process_time()
    arrays = textclf.train(train)
    with tempfile.TemporaryDirectory() as d:
        textclf.save(arrays, Path(d) / "m.npz")
    train_s = time.perf_counter() - t0
    train_cpu_s = time.process_time() - c0
    out = {"texts": len(texts), "max_text_bytes": max(len(t.encode()) for t in texts),
           "repeat": args.repeat, "read_text": _stats(read_ms),
           "diagnose_action": _stats(action_ms), "diagnose_action_8kb": _stats(big_ms),
           "cpu": {"read_text": _stats(read_cpu), "diagnose_action": _stats(action_cpu),
                   "diagnose_action_8kb": _stats(big_cpu)},
           "classifier_training_s": round(train_s, 2),
           "classifier_training_cpu_s": round(train_cpu_s, 2), "train_cases": len(train),
           "features": len(arrays["features"])}
    print(f"{out['texts']} texts (<= {out['max_text_bytes']} bytes) x {args.repeat}; "
          f"wall (CPU) per text")
    for key, label in (("read_text", "read_text"), ("diagnose_action", "diagnose action"),
                       ("diagnose_action_8kb", f"diagnose action, {len(big)} pastes of ~8 KB")):
        w, c = out[key], out["cpu"][key]
        print(f"{label:<40} median {w['median_ms']} ms ({c['median_ms']}), "
              f"p95 {w['p95_ms']} ms ({c['p95_ms']})")
    print(f"classifier training on {len(train)} train cases: {train_s:.2f} s "
          f"({train_cpu_s:.2f} s CPU; including the scikit-learn import)")
    return out
