"""diagnose through the CLI's warm path (issue 13: <= 50 ms).

The `jobmedic` CLI runs one action per process, so a one-shot `jobmedic diagnose --text ...`
pays the interpreter and package start-up every time (docs/benchmarks.md, "Start-up"). The warm
path a person or a script uses for repeated diagnoses is `jobmedic serve`: the same actions
behind the HTTP action API (`POST /v1/actions`, the envelope `jobmedic act` prints), with the
rules compiled, the classifier loaded and the store open. This benchmark measures both:

1. warm: `jobmedic --db DB serve` started as a child process on loopback (a store ingested
   from tests/fixtures/sacct_states.txt with `jobmedic ingest slurm`), then every corpus text
   (tests/data/diagnose_corpus.jsonl, <= 8 KB each) `--repeat` times and one 8 KB paste per
   corpus text, each as `POST /v1/actions {"action": "diagnose", "text": ...}` over one
   keep-alive connection; per request the client's wall time (send to last byte, JSON parsed),
   and the server process's CPU time (utime + stime from /proc) over the whole run divided by
   the requests;
   and, from a shell, one `curl` process per text (`--curl N` texts: the process start
   included);
2. cold: `jobmedic --db DB diagnose --text TEXT` as fresh processes (`--cold N` runs), wall
   and the child's own CPU time (os.wait4).

    .venv/bin/python -m bench diagnose_warm [--repeat 3] [--cold 5] [--curl 100]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench.bench_http import free_port, start_server

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "data" / "diagnose_corpus.jsonl"
FIXTURE = ROOT / "tests" / "fixtures" / "sacct_states.txt"
JOBMEDIC = [sys.executable, "-m", "jobmedic"]


def _stats(ms: list[float]) -> dict[str, float]:
    ms = sorted(ms)
    return {"median_ms": round(statistics.median(ms), 2),
            "p95_ms": round(ms[int(0.95 * (len(ms) - 1))], 2), "max_ms": round(ms[-1], 2),
            "n": len(ms)}


def _cpu_s(pid: int) -> float:
    """utime + stime of a process, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(prog="python -m bench diagnose_warm")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--cold", type=int, default=5)
    ap.add_argument("--curl", type=int, default=100)
    args = ap.parse_args(argv)
    rows = [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines()]
    texts = [r["text"] for r in rows if len(r["text"].encode()) <= 8192]
    pool = "\n".join(texts)
    big = [(pool[i * 997 % len(pool):] + pool)[: 8192 - len(t.encode()) - 1] + "\n" + t
           for i, t in enumerate(texts) if len(t.encode()) < 8000]
    out: dict = {"load_avg_start": [round(x, 2) for x in os.getloadavg()]}
    with tempfile.TemporaryDirectory() as d:
        db = Path(d) / "warm.db"
        subprocess.run([*JOBMEDIC, "--db", str(db), "ingest", "slurm", str(FIXTURE)],
                       check=True, stdout=subprocess.DEVNULL)
        port = free_port()
        proc = start_server(db, port, as_of=None)
        try:
            url = f"http://127.0.0.1:{port}/v1/actions"
            with httpx.Client(timeout=30) as client:
                for t in texts[:20]:  # warm: rules compiled, classifier loaded, templates read
                    client.post(url, json={"action": "diagnose", "text": t}).raise_for_status()

                def run(batch: list[str]) -> tuple[list[float], float]:
                    lat = []
                    c0 = _cpu_s(proc.pid)
                    for t in batch:
                        t0 = time.perf_counter()
                        r = client.post(url, json={"action": "diagnose", "text": t})
                        env = r.json()
                        lat.append((time.perf_counter() - t0) * 1000)
                        assert r.status_code == 200 and env["status"] == "ok", env
                    return lat, (_cpu_s(proc.pid) - c0) * 1000 / len(batch)

                lat, cpu = run(texts * args.repeat)
                out["warm_http_corpus"] = _stats(lat) | {"server_cpu_ms_per_request":
                                                         round(cpu, 2)}
                lat, cpu = run(big)
                out["warm_http_8kb"] = _stats(lat) | {"server_cpu_ms_per_request":
                                                      round(cpu, 2)}
            if shutil.which("curl"):  # from a shell: one curl process per diagnosis
                lat = []
                for t in texts[: args.curl]:
                    body = json.dumps({"action": "diagnose", "text": t})
                    t0 = time.perf_counter()
                    r = subprocess.run(["curl", "-s", "-H", "Content-Type: application/json",
                                        "--data-binary", "@-", url], input=body.encode(),
                                       capture_output=True, check=True)
                    lat.append((time.perf_counter() - t0) * 1000)
                    assert json.loads(r.stdout)["status"] == "ok"
                out["warm_curl"] = _stats(lat)
        finally:
            proc.terminate()
            proc.wait(10)
        cold_ms, cold_cpu = [], []
        for t in texts[: args.cold]:
            t0 = time.perf_counter()
            p = subprocess.Popen([*JOBMEDIC, "--db", str(db), "diagnose", "--text", t],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            _pid, status, ru = os.wait4(p.pid, 0)
            cold_ms.append((time.perf_counter() - t0) * 1000)
            cold_cpu.append((ru.ru_utime + ru.ru_stime) * 1000)
            assert os.waitstatus_to_exitcode(status) == 0
        out["cold_cli"] = _stats(cold_ms) | {"cpu": _stats(cold_cpu)}
    out["texts"], out["pastes_8kb"], out["repeat"] = len(texts), len(big), args.repeat
    out["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]
    w, b, c = out["warm_http_corpus"], out["warm_http_8kb"], out["cold_cli"]
    print(f"warm (serve, HTTP) corpus texts: median {w['median_ms']} ms, p95 {w['p95_ms']} ms, "
          f"server CPU {w['server_cpu_ms_per_request']} ms/request ({w['n']} requests)")
    print(f"warm (serve, HTTP) 8 KB pastes: median {b['median_ms']} ms, p95 {b['p95_ms']} ms, "
          f"server CPU {b['server_cpu_ms_per_request']} ms/request ({b['n']} requests)")
    if "warm_curl" in out:
        k = out["warm_curl"]
        print(f"warm (serve) from a shell, one curl per text: median {k['median_ms']} ms, "
              f"p95 {k['p95_ms']} ms ({k['n']} requests)")
    print(f"cold CLI process: median {c['median_ms']} ms wall, {c['cpu']['median_ms']} ms CPU")
    print(f"load average {out['load_avg_start']} -> {out['load_avg_end']}")
    return out


if __name__ == "__main__":
    main(sys.argv[1:])
