"""bench/synthetic.py's cluster load written as `sacct --parsable2` text, so a store of any size
can be built through the public ingest path (`jobmedic ingest slurm FILE`).

Same shapes as bench/synthetic.py: 2,000 nodes (7, 77 and 777 bad), 500 users (zipf), 30
projects, 5 partitions, 5 % multi-node jobs, a 4 % base failure rate raised on the bad nodes,
for user 42 (OOM-prone) and in a noisy hour (03:00), six failure types. Slurm has no container
image, so the image of synthetic.py is not in the text. One allocation line per job (no steps);
GPU faults carry an Xid line in Comment (so they are classified from text, as in real logs).
The job rate is fixed (`per_day`), so a bigger store is a longer history: a 7-day window holds
the same ~233,000 jobs at 1M and at 10M. Deterministic for a given seed.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

T_END = 1_717_200_000  # 2024-06-01 00:00 UTC, as bench/synthetic.py
PER_DAY = 1_000_000 // 30  # bench/synthetic.py's 1M jobs over 30 days
HEADER = ("JobID|JobIDRaw|JobName|User|Account|Partition|QOS|State|ExitCode|Submit|Start|End|"
          "Elapsed|Timelimit|ReqCPUS|ReqMem|NNodes|NodeList|ReqTRES|Comment")
# failure type -> (State, ExitCode, Comment)
FAILS = [("FAILED", "1:0", ""), ("OUT_OF_MEMORY", "0:125", ""), ("TIMEOUT", "0:0", ""),
         ("NODE_FAIL", "0:0", ""),
         ("FAILED", "1:0", "NVRM: Xid (PCI:0000:3b:00): 79, pid=2211, GPU has fallen off the bus."),
         ("FAILED", "0:11", "")]
LIMITS = np.array([3600, 4 * 3600, 12 * 3600, 24 * 3600, 48 * 3600])
MEMS = np.array(["4G", "8G", "16G", "32G", "64000M"])


def _dur(s: np.ndarray) -> list[str]:
    d, r = np.divmod(s, 86400)
    h, r = np.divmod(r, 3600)
    m, sec = np.divmod(r, 60)
    return [f"{a}-{b:02d}:{c:02d}:{e:02d}" if a else f"{b:02d}:{c:02d}:{e:02d}"
            for a, b, c, e in zip(d.tolist(), h.tolist(), m.tolist(), sec.tolist())]


def _iso(t: np.ndarray) -> np.ndarray:
    return np.datetime_as_string(t.astype("datetime64[s]"), unit="s")


def write(path: str | Path, n_jobs: int, seed: int = 0, per_day: int = PER_DAY,
          n_nodes: int = 2000, batch: int = 200_000) -> dict:
    """Write `n_jobs` jobs ending before T_END at `per_day` jobs a day; returns the facts."""
    rng = np.random.default_rng(seed)
    days = n_jobs / per_day
    nodes = np.array([f"node{i:04d}" for i in range(n_nodes)])
    users = np.array([f"user{i:03d}" for i in range(500)])
    projects = np.array([f"proj{i:02d}" for i in range(30)])
    queues = np.array(["batch", "gpu", "debug", "long", "short"])
    bad = [7, 77, 777]
    failed_n = 0
    with open(path, "w", encoding="utf-8") as f:
        f.write(HEADER + "\n")
        for lo in range(0, n_jobs, batch):
            m = min(batch, n_jobs - lo)
            end = (T_END - rng.uniform(0, days * 86400, m)).astype(np.int64)
            u = rng.zipf(1.6, m) % len(users)
            node0 = rng.integers(0, n_nodes, m)
            img = rng.zipf(1.4, m) % 200
            width = np.where(rng.random(m) < 0.05, rng.integers(2, 9, m), 1)
            node0 = np.minimum(node0, n_nodes - width)
            p = np.full(m, 0.04)
            p[np.isin(node0, bad)] = 0.35
            p[img == 13] = 0.5
            p[u == 42] = 0.4
            p[(end // 3600) % 24 == 3] += 0.05
            failed = rng.random(m) < p
            ft = rng.integers(0, len(FAILS), m)
            ft[np.isin(node0, bad)] = 4
            ft[u == 42] = 1
            elapsed = rng.integers(60, 36000, m)
            limit = LIMITS[np.searchsorted(LIMITS, elapsed)]
            elapsed = np.where(failed & (ft == 2), limit, elapsed)
            gpus = np.where(rng.random(m) < 0.3, rng.integers(1, 9, m), 0)
            mem = MEMS[rng.integers(0, len(MEMS), m)]
            start = end - elapsed
            submit = start - 60
            s_sub, s_start, s_end = _iso(submit), _iso(start), _iso(end)
            s_el, s_lim = _dur(elapsed), _dur(limit)
            failed_n += int(failed.sum())
            out = []
            for i in range(m):
                jid = lo + i + 1
                ui = int(u[i])
                if failed[i]:
                    state, code, comment = FAILS[ft[i]]
                else:
                    state, code, comment = "COMPLETED", "0:0", ""
                w = int(width[i])
                n0 = int(node0[i])
                nl = nodes[n0] if w == 1 else f"node[{n0:04d}-{n0 + w - 1:04d}]"
                g = int(gpus[i])
                tres = f"cpu=8,mem={mem[i]},node={w}" + (f",gres/gpu={g}" if g else "")
                out.append(f"{jid}|{jid}|job{ui}-{int(img[i]) % 5}|{users[ui]}|{projects[ui % 30]}|"
                           f"{queues[ui % 5]}|normal|{state}|{code}|{s_sub[i]}|{s_start[i]}|"
                           f"{s_end[i]}|{s_el[i]}|{s_lim[i]}|8|{mem[i]}|{w}|{nl}|{tres}|{comment}\n")
            f.write("".join(out))
    return {"path": str(path), "jobs": n_jobs, "failed": failed_n, "days": round(days, 1),
            "bytes": Path(path).stat().st_size}


if __name__ == "__main__":
    import sys
    print(write(sys.argv[1], int(sys.argv[2])))
