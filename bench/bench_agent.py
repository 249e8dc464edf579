"""The assistant's own overhead and its start-up time on a 1,000,000-job store (issue 6).

`python -m bench agent [--jobs 1000000] [--repeat 15] [--starts 3]`

- overhead: `Assistant.ask` in-process for routed questions; the agent's own time (loading
  the session, routing with the cached vocabulary, composing the answer, saving the session)
  is the total minus the time of the actions it ran, which are also timed on their own
  through `run_action` with the same requests for comparison. Medians. "new process" drops
  the in-memory vocabulary first, as a fresh `jobmedic ask` process would (it then reads the
  vocabulary cached in the store); the other figure is a long-lived process (server, chat).
- start-up: `jobmedic ask "..."` as a new process, wall time to the printed answer, and the
  time of the same action in-process, so that what the process adds is visible; also which
  heavy modules (langchain, torch, xgboost, sklearn) a routed analyze question loads.

The store is bench/out/agent_<N>.db, copied from bench/out/analyze_<N>.db when that exists
(the analyze benchmark's synthetic store), else built with bench/synthetic.py.
"""
from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench.synthetic import T_END, build
from jobmedic.agent import Assistant
from jobmedic.app import build_tool_context
from jobmedic.knowledge.store import Store
from jobmedic.knowledge.taxonomy import Taxonomy
from jobmedic.settings import config_path, load_settings
from jobmedic.tools import run_action

OUT = Path(__file__).resolve().parent / "out"
ROOT = Path(__file__).resolve().parent.parent
QUESTIONS = {
    "analyze": "analyze failures in proj03 over the last 7 days",
    "stats": "how many OOMs per node in the last 7 days",
    "remediate": "how do I fix OOMKilled?",
}
HEAVY = ("langchain_core", "langchain", "torch", "xgboost", "sklearn")


def store_path(n: int) -> Path:
    path = OUT / f"agent_{n}.db"
    src = OUT / f"analyze_{n}.db"
    if not path.exists() and src.exists():
        with sqlite3.connect(src) as a, sqlite3.connect(path) as b:
            a.backup(b)
    build(path, n)
    return path


def med(xs: list[float]) -> float:
    return round(statistics.median(xs), 2)


def overhead(ctx, repeat: int) -> dict:
    out: dict = {}
    for name, q in QUESTIONS.items():
        assistant = Assistant(ctx)
        first = assistant.ask(q, session=f"bench-{name}-warm")
        calls = [{"action": c["action"], **c["args"]} for c in first.calls]
        agent, route, total, acts, solo, fresh = [], [], [], [], [], []
        for i in range(repeat):
            ctx.store.__dict__.pop("_agent_vocab_memo", None)  # as a new `jobmedic ask` process
            fresh.append(Assistant(ctx).ask(q, session=f"bench-{name}-f{i}").timings["overhead_ms"])
            res = assistant.ask(q, session=f"bench-{name}-{i}")
            t = res.timings
            agent.append(t["overhead_ms"])
            route.append(t["route_ms"])
            total.append(t["total_ms"])
            acts.append(t["actions_ms"])
            t0 = time.perf_counter()
            for c in calls:
                run_action(dict(c), ctx)
            solo.append((time.perf_counter() - t0) * 1e3)
        out[name] = {"question": q, "calls": first.calls, "runs": repeat,
                     "agent_overhead_ms": med(agent), "agent_overhead_new_process_ms": med(fresh),
                     "route_ms": med(route),
                     "total_ms": med(total), "actions_in_ask_ms": med(acts),
                     "actions_alone_ms": med(solo),
                     "total_minus_actions_alone_ms": round(med(total) - med(solo), 2)}
        print(f"{name:10s} agent overhead {out[name]['agent_overhead_ms']:7.2f} ms (new process "
              f"{out[name]['agent_overhead_new_process_ms']:6.2f} ms)  route "
              f"{out[name]['route_ms']:6.2f} ms  total {out[name]['total_ms']:8.1f} ms  actions "
              f"alone {out[name]['actions_alone_ms']:8.1f} ms")
    return out


def cold_vocabulary(path: Path, tax: Taxonomy) -> dict:
    """The first question after new data: the vocabulary is recomputed and cached."""
    with Store(path) as s:
        s.conn.execute("DELETE FROM agent_cache")
        ctx = build_tool_context(load_settings(), s, tax, T_END, None)
        t0 = time.perf_counter()
        res = Assistant(ctx).ask("how do I fix OOMKilled?", session="bench-cold")
        cold = (time.perf_counter() - t0) * 1e3
        warm = Assistant(ctx).ask("how do I fix OOMKilled?", session="bench-warm").timings["total_ms"]
    print(f"vocabulary: first question after new data {cold:.0f} ms, then {warm:.1f} ms")
    return {"cold_ms": round(cold, 1), "warm_ms": round(warm, 1), "status": res.calls[0]["status"]}


def startup(path: Path, starts: int) -> dict:
    q = QUESTIONS["analyze"]
    probe = ("import sys, time\nt0 = time.perf_counter()\nfrom jobmedic.main import main\n"
             "sys.argv = ['jobmedic', '--db', sys.argv[1], '--as-of', sys.argv[2], 'ask', sys.argv[3]]\n"
             "try:\n    main()\nexcept SystemExit:\n    pass\n"
             f"print('HEAVY', [m for m in {HEAVY!r} if m in sys.modules], file=sys.stderr)\n")
    walls, heavy = [], None
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    for _ in range(starts):
        t0 = time.perf_counter()
        p = subprocess.run([sys.executable, "-c", probe, str(path), str(T_END), q], cwd=ROOT,
                           capture_output=True, text=True, env=env, timeout=600, check=False)
        walls.append(time.perf_counter() - t0)
        assert p.returncode == 0 and "Actions run" in p.stdout, p.stderr[-2000:]
        heavy = next((ln for ln in p.stderr.splitlines() if ln.startswith("HEAVY")), "")
    t0 = time.perf_counter()
    imp = subprocess.run([sys.executable, "-c", "import jobmedic.cli, jobmedic.agent"], cwd=ROOT,
                         capture_output=True, env=env, check=False)
    import_s = time.perf_counter() - t0
    assert imp.returncode == 0
    print(f"process start to answer: median {med(walls):.2f} s over {starts}; importing the CLI "
          f"alone {import_s:.2f} s; heavy modules loaded: {heavy}")
    return {"question": q, "wall_s": [round(w, 2) for w in walls], "median_wall_s": med(walls),
            "import_cli_s": round(import_s, 2), "heavy_modules": heavy}


def main(argv: list[str]) -> dict:
    ap = argparse.ArgumentParser(prog="python -m bench agent")
    ap.add_argument("--jobs", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--starts", type=int, default=3)
    args = ap.parse_args(argv)
    OUT.mkdir(exist_ok=True)
    path = store_path(args.jobs)
    tax = Taxonomy.from_yaml(config_path("taxonomy.yaml"))
    result: dict = {"jobs": args.jobs, "store": str(path), "machine": f"{os.cpu_count()} cores, shared"}
    result["cold_vocabulary"] = cold_vocabulary(path, tax)
    with Store(path) as s:
        ctx = build_tool_context(load_settings(), s, tax, T_END, None)
        result["overhead"] = overhead(ctx, args.repeat)
    result["startup"] = startup(path, args.starts)
    print(json.dumps({k: v for k, v in result.items() if k != "overhead"}, indent=1, default=str))
    return result
