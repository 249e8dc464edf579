"""HTTP API under load (issue 7).

`python -m bench http [--jobs 1000000] [--clients 32] [--requests 10000] [--write-every 4]`:
builds (or reuses) a synthetic store through Store.upsert_jobs / add_job_nodes
(bench/synthetic.py), starts `jobmedic serve` on loopback in a child process, and drives it from
this process with `--clients` concurrent asyncio clients (httpx):

1. read load: POST /v1/actions {"action": "stats", "lookback_days": 7} until `--requests`
   answers; latency percentiles, throughput, errors;
2. mixed load: the same clients, every `--write-every`-th request a record_outcome with a
   unique note, the others a 1-day stats (every write invalidates the cached answers, so the
   reads are recomputed); the outcome rows are counted before and after, so a lost write shows.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np

from bench.synthetic import T_END, build
from jobmedic.knowledge.store import Store

OUT = Path(__file__).resolve().parent / "out"
STATS = {"action": "stats", "lookback_days": 7}
MIXED_READ = {"action": "stats", "lookback_days": 1}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(db: Path, port: int, as_of: int | None = T_END) -> subprocess.Popen:
    """`jobmedic serve` on the store without tokens, answering /healthz (or RuntimeError)."""
    env = dict(os.environ, JOBMEDIC_SERVER__TOKENS="[]")
    clock = ["--as-of", str(as_of)] if as_of is not None else []
    proc = subprocess.Popen(
        [sys.executable, "-m", "jobmedic", "--db", str(db), *clock, "serve",
         "--port", str(port), "--log-level", "warning"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.3)
    proc.kill()
    raise RuntimeError("server did not start: " + proc.stderr.read().decode()[-2000:])


async def load(base: str, clients: int, total: int, write_every: int = 0,
               tag: str = "", read_body: dict = STATS) -> dict:
    lat: list[float] = []
    codes: dict[int, int] = {}
    writes_ok = 0
    counter = iter(range(total))

    async def client(i: int, http: httpx.AsyncClient) -> None:
        nonlocal writes_ok
        for n in counter:
            is_write = write_every and n % write_every == 0
            body = ({"action": "record_outcome", "failure_type": "oom",
                     "solution": "oom.raise_memory", "success": bool(n % 3),
                     "note": f"bench {tag} {n}", "recorded_by": f"bench-{tag}"}
                    if is_write else read_body)
            t0 = time.perf_counter()
            try:
                r = await http.post("/v1/actions", json=body)
                code = r.status_code
            except httpx.HTTPError:
                code = -1
            lat.append(time.perf_counter() - t0)
            codes[code] = codes.get(code, 0) + 1
            if is_write and code == 200:
                writes_ok += 1

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base, timeout=120, limits=limits) as http:
        t0 = time.perf_counter()
        await asyncio.gather(*(client(i, http) for i in range(clients)))
        wall = time.perf_counter() - t0
    a = np.array(lat) * 1000
    return {"requests": len(lat), "clients": clients, "wall_s": round(wall, 2),
            "throughput_rps": round(len(lat) / wall, 1),
            "p50_ms": round(float(np.percentile(a, 50)), 2),
            "p95_ms": round(float(np.percentile(a, 95)), 2),
            "p99_ms": round(float(np.percentile(a, 99)), 2), "max_ms": round(float(a.max()), 2),
            "status_codes": {str(k): v for k, v in sorted(codes.items())},
            "errors": sum(v for k, v in codes.items() if k != 200), "writes_ok": writes_ok}


WRK_SCRIPT = """
wrk.method = "POST"
wrk.body = [[%s]]
wrk.headers["Content-Type"] = "application/json"
function done(summary, latency, requests)
  io.write(string.format("JM requests=%%d errors=%%d status=%%d p50=%%.3f p95=%%.3f p99=%%.3f max=%%.3f\\n",
    summary.requests, summary.errors.connect + summary.errors.read + summary.errors.write +
    summary.errors.timeout, summary.errors.status, latency:percentile(50) / 1000,
    latency:percentile(95) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
end
"""


def wrk_load(base: str, clients: int, seconds: int) -> dict:
    """The read load with `wrk` (C, from Debian), so the client takes little of the CPU."""
    script = OUT / "http_stats.lua"
    script.write_text(WRK_SCRIPT % json.dumps(STATS))
    out = subprocess.run(["wrk", "-t2", f"-c{clients}", f"-d{seconds}s", "--timeout", "30s",
                          "-s", str(script), f"{base}/v1/actions"],
                         capture_output=True, text=True, check=True).stdout
    m = re.search(r"JM requests=(\d+) errors=(\d+) status=(\d+) p50=([\d.]+) p95=([\d.]+) "
                  r"p99=([\d.]+) max=([\d.]+)", out)
    assert m, out
    n, err, status = int(m[1]), int(m[2]), int(m[3])
    return {"client": "wrk", "requests": n, "clients": clients, "wall_s": seconds,
            "throughput_rps": round(n / seconds, 1), "p50_ms": float(m[4]),
            "p95_ms": float(m[5]), "p99_ms": float(m[6]), "max_ms": float(m[7]),
            "errors": err + status, "non_2xx": status, "socket_errors": err}


def _count(db: Path) -> int:
    """Outcome rows in the store (during the mixed load only the bench writes them)."""
    with Store(db, migrate=False) as store:
        return store.table_counts()["solution_outcomes"]


def main(argv: list[str]) -> dict:
    ap = argparse.ArgumentParser(prog="python -m bench http")
    ap.add_argument("--jobs", type=int, default=1_000_000)
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--requests", type=int, default=10_000)
    ap.add_argument("--mixed-requests", type=int, default=1_000)
    ap.add_argument("--write-every", type=int, default=4)
    ap.add_argument("--db", default=None)
    ap.add_argument("--client", choices=["httpx", "wrk"], default="httpx",
                    help="wrk (Debian package) leaves more CPU to the server on a small machine")
    ap.add_argument("--seconds", type=int, default=60, help="duration of the wrk read load")
    args = ap.parse_args(argv)
    OUT.mkdir(exist_ok=True)
    db = Path(args.db) if args.db else OUT / f"http_{args.jobs}.db"
    built = build(db, args.jobs)
    port = free_port()
    server = start_server(db, port)
    base = f"http://127.0.0.1:{port}"
    try:
        t0 = time.perf_counter()
        first = httpx.post(f"{base}/v1/actions", json=STATS, timeout=300)
        cold_s = time.perf_counter() - t0
        assert first.status_code == 200, first.text[:500]
        if args.client == "wrk" and shutil.which("wrk"):
            read = wrk_load(base, args.clients, args.seconds)
        else:
            read = asyncio.run(load(base, args.clients, args.requests))
            read["client"] = "httpx"
        tag = f"{int(time.time())}"
        before = _count(db)
        mixed = asyncio.run(load(base, args.clients, args.mixed_requests, args.write_every, tag,
                                 MIXED_READ))
        after = _count(db)
        metrics = httpx.get(f"{base}/metrics", timeout=30).text
    finally:
        server.terminate()
        server.wait(30)
    cache = [ln for ln in metrics.splitlines() if ln.startswith("jobmedic_cache_requests_total")]
    result = {"store": built, "jobs": args.jobs, "request": STATS, "mixed_read": MIXED_READ,
              "cold_first_request_s":
              round(cold_s, 3), "read_load": read, "mixed_load": mixed,
              "outcome_rows_added": after - before, "writes_acknowledged": mixed["writes_ok"],
              "writes_lost": mixed["writes_ok"] - (after - before), "cache": cache,
              "cpus": os.cpu_count()}
    r = read
    print(f"stats on {args.jobs:,} jobs, {r['clients']} clients ({r['client']}), "
          f"{r['requests']:,} requests: "
          f"p50 {r['p50_ms']} ms, p95 {r['p95_ms']} ms, p99 {r['p99_ms']} ms, "
          f"{r['throughput_rps']} req/s, errors {r['errors']}; first (uncached) {cold_s:.2f} s")
    m = mixed
    print(f"mixed (1 in {args.write_every} record_outcome): {m['requests']:,} requests, p50 "
          f"{m['p50_ms']} ms, p95 {m['p95_ms']} ms, errors {m['errors']}; writes acknowledged "
          f"{m['writes_ok']}, rows added {after - before}, lost {result['writes_lost']}")
    print("cache:", "; ".join(cache))
    return result
