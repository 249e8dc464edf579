"""Ingest benchmarks (issue 2): `python -m bench ingest [--runs N] [--quick]`.

* google2011: the 490,845-job table into an empty store, end to end (reading the .gz
  included) in a child process: jobs/s and the child's peak RSS; `--runs` times through the
  library ingest (`child`: what `jobmedic ingest` runs), once through the CLI itself, whose
  figures also carry its imports and its after-ingest hooks (outcome inference).
* slurm: generated `sacct --parsable2` files of 250,000 and 1,000,000 lines (allocation +
  .batch + .extern (+ .0) steps, arrays, compressed node lists, every state and ReqMem unit,
  shaped like tests/fixtures/sacct_states.txt and the slurm2sql fixtures) into an empty store:
  lines/s and peak RSS (flat in file size?), then re-ingesting the 1M file (zero new rows).

Every figure is the median of `--runs` runs (default 3), each in a fresh child process, so
the peak RSS and CPU time are those of one ingest (os.wait4). Rates are given three ways:
over the ingest itself (the summary's seconds), over the child's wall time (interpreter start
and post-ingest hooks included) and over the child's CPU time (user + system), the figure
least distorted when the shared machine is loaded.
"""
from __future__ import annotations

import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GOOGLE = ROOT.parent / "shared" / "data" / "google_clusterdata_2011" / "google2011_jobs.csv.gz"
FIELDS = ("JobID|JobIDRaw|JobName|User|Account|Partition|QOS|State|ExitCode|Reason|Submit|Start|"
          "End|Elapsed|ElapsedRaw|Timelimit|TimelimitRaw|ReqCPUS|NCPUS|ReqMem|MaxRSS|NNodes|"
          "NodeList|ReqTRES|AllocTRES|WorkDir|SubmitLine|Cluster|Comment")
# (state, exit, step state, step exit, weight): the mix of a busy cluster
STATES = [("COMPLETED", "0:0", "COMPLETED", "0:0", 70), ("FAILED", "1:0", "FAILED", "1:0", 6),
          ("FAILED", "1:0", "FAILED", "139:0", 2), ("FAILED", "0:11", "FAILED", "0:11", 1),
          ("TIMEOUT", "0:0", "CANCELLED", "0:15", 5), ("OUT_OF_MEMORY", "0:125",
                                                       "OUT_OF_MEMORY", "0:125", 4),
          ("CANCELLED by 1234", "0:0", "CANCELLED", "0:15", 6), ("NODE_FAIL", "0:0",
                                                                  "CANCELLED", "0:9", 1),
          ("PREEMPTED", "0:0", "CANCELLED", "0:15", 1), ("RUNNING", "0:0", "RUNNING", "0:0", 2),
          ("PENDING", "0:0", None, None, 2)]
MEMS = ["4000M", "3000Mc", "48000Mn", "4G", "16G", "500Mc"]
USERS = [f"user{i:03d}" for i in range(200)]
ACCOUNTS = ["ml-team", "physics", "bio", "chem", "climate", "astro", "cfd", "genomics"]
NAMES = ["train_résnet", "sim", "mpi_solver", "preprocess", "align", "render", "eval", "sweep"]


def _ts(t: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t))


def _dur(s: int) -> str:
    d, s = divmod(s, 86400)
    h, s = divmod(s, 3600)
    m, s = divmod(s, 60)
    return (f"{d}-" if d else "") + f"{h:02d}:{m:02d}:{s:02d}"


def write_sacct(path: str | Path, n_lines: int, seed: int = 7, first_id: int = 1_000_000,
                t0: int = 1714521600) -> int:
    """Write a `sacct --parsable2` file of about `n_lines` lines; returns the lines written.
    Job ids count up from `first_id`, submit times from `t0`."""
    rng = random.Random(seed)
    weights = [s[-1] for s in STATES]
    t = t0
    jobid = first_id
    written = 0
    with open(path, "w", encoding="utf-8") as f:
        f.write(FIELDS + "\n")
        while written < n_lines:
            jobid += 1
            state, ex, sstate, sex, _w = rng.choices(STATES, weights)[0]
            t += rng.randint(0, 20)
            array = rng.random() < 0.2
            jid = f"{jobid}_{rng.randint(0, 99)}" if array else str(jobid)
            raw = str(jobid + 5_000_000) if array else jid
            nn = rng.choice((1, 1, 1, 2, 4))
            pre = "gpu" if rng.random() < 0.3 else "cn"
            first = rng.randint(1, 400)
            nodes = (f"{pre}{first:03d}" if nn == 1 else
                     f"{pre}[{first:03d}-{first + nn - 2:03d},{first + 500:03d}]")
            cpus = nn * rng.choice((1, 4, 16, 32))
            limit = rng.choice((3600, 14400, 86400, 172800))
            run = limit if state == "TIMEOUT" else rng.randint(1, limit)
            pending = state == "PENDING"
            start, end = ("Unknown", "Unknown") if pending else (
                _ts(t + 5), "Unknown" if state == "RUNNING" else _ts(t + 5 + run))
            nodelist = "None assigned" if pending else nodes
            gpus = f",gres/gpu={nn}" if pre == "gpu" else ""
            mem = rng.choice(MEMS)
            comment = "Segmentation fault (core dumped)" if ex == "0:11" else ""
            cols = [jid, raw, rng.choice(NAMES), rng.choice(USERS), rng.choice(ACCOUNTS),
                    "gpu" if pre == "gpu" else "cpu", "normal", state, ex, "None", _ts(t), start,
                    end, _dur(0 if pending else run), str(0 if pending else run), _dur(limit),
                    str(limit // 60), str(cpus), str(cpus), mem, "", str(nn), nodelist,
                    f"billing={cpus},cpu={cpus},mem={mem},node={nn}{gpus}", "",
                    "/home/x/run", "sbatch run.sh", "bench", comment]
            f.write("|".join(cols) + "\n")
            written += 1
            if pending or sstate is None:
                continue
            steps = [("batch", sstate, sex), ("extern", "COMPLETED", "0:0")]
            if rng.random() < 0.3:
                steps.append(("0", sstate, sex))
            for step, st, sx in steps:
                rss = f"{rng.randint(1000, 9_000_000)}K"
                scols = [f"{jid}.{step}", f"{raw}.{step}", step, "", cols[4], "", "", st, sx, "",
                         cols[10], start, end, cols[13], cols[14], "", "", str(cpus), str(cpus),
                         mem, rss, str(nn), nodes, "", f"cpu={cpus},mem={mem},node={nn}", "",
                         "", "bench", ""]
                f.write("|".join(scols) + "\n")
                written += 1
    return written


def child(source: str, path: str, db: str) -> None:
    """The library ingest alone (what `jobmedic ingest` runs, without the CLI's imports and
    its after-ingest hooks): prints the summary as JSON."""
    from jobmedic.ingest import READERS, IngestContext, run_ingest
    from jobmedic.knowledge.store import Store
    from jobmedic.knowledge.taxonomy import Taxonomy
    from jobmedic.knowledge.templates import Templates
    from jobmedic.settings import config_path

    with Store(db) as store:
        ctx = IngestContext(Taxonomy.from_yaml(config_path("taxonomy.yaml")),
                            Templates(store.load_templates()))
        print(json.dumps(run_ingest(store, READERS[source], path, ctx).to_dict()))


def _run(args: list[str], cli: bool = False) -> dict:
    """Run an ingest in a child reaped with wait4: its summary, wall time, CPU time and its
    own peak RSS. `args` = [--db, DB, ingest, SOURCE, PATH]; `cli` runs `python -m jobmedic`
    (end to end, hooks included), else the library ingest alone (`child`)."""
    t0 = time.perf_counter()
    argv = ([sys.executable, "-m", "jobmedic", *args, "--json", "--no-progress"] if cli else
            [sys.executable, "-m", "bench.bench_ingest", "child", args[3], args[4], args[1]])
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
    out = proc.stdout.read()
    err = proc.stderr.read()
    _pid, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - t0
    if proc.returncode:
        raise RuntimeError(f"jobmedic {' '.join(args)} failed: {err.decode()[-500:]}")
    text = out.decode()
    summary = json.loads(text[text.index("{"):text.rindex("}") + 1])
    return {"summary": summary, "wall_s": round(wall, 2), "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
            "peak_rss_mb": round(usage.ru_maxrss / 1024, 1)}


def _median(runs: list[dict], key) -> float:
    return round(statistics.median(key(r) for r in runs), 2)


def _ingest_runs(source: str, path: str, runs: int, tmp: str, tag: str, keep: bool = False,
                 cli: bool = False) -> tuple[list[dict], str]:
    out = []
    db = ""
    for i in range(runs):
        db = os.path.join(tmp, f"{tag}-{i}.db")
        out.append(_run(["--db", db, "ingest", source, path], cli=cli))
        if not keep:
            for suffix in ("", "-wal", "-shm"):
                Path(db + suffix).unlink(missing_ok=True)
    return out, db


def _figures(runs: list[dict], unit: str) -> dict:
    s = [r["summary"] for r in runs]
    return {
        f"{unit}": s[0]["read"], "inserted": s[0]["inserted"],
        "ingest_s_median": _median(runs, lambda r: r["summary"]["seconds"]),
        f"{unit}_per_s_median": _median(runs, lambda r: r["summary"]["read"] / r["summary"]["seconds"]),
        "process_wall_s_median": _median(runs, lambda r: r["wall_s"]),
        f"{unit}_per_s_process_median": _median(runs, lambda r: r["summary"]["read"] / r["wall_s"]),
        "process_cpu_s_median": _median(runs, lambda r: r["cpu_s"]),
        f"{unit}_per_cpu_s_median": _median(runs, lambda r: r["summary"]["read"] / r["cpu_s"]),
        "peak_rss_mb_median": _median(runs, lambda r: r["peak_rss_mb"]),
        "runs": [{k: r[k] for k in ("wall_s", "cpu_s", "peak_rss_mb")} | {"ingest_s": round(
            r["summary"]["seconds"], 2)} for r in runs],
    }


def main(argv: list[str]) -> dict:
    runs = 3
    if "--runs" in argv:
        runs = int(argv[argv.index("--runs") + 1])
    quick = "--quick" in argv
    result: dict = {"runs": runs, "machine": f"{os.cpu_count()} cpus, shared", "python": sys.version.split()[0]}
    with tempfile.TemporaryDirectory(prefix="jm-bench-") as tmp:
        if GOOGLE.exists() and not quick:
            g, _ = _ingest_runs("google2011", str(GOOGLE), runs, tmp, "google")
            result["google2011"] = _figures(g, "jobs")
            print("google2011:", json.dumps({k: v for k, v in result["google2011"].items() if k != "runs"}))
            g, _ = _ingest_runs("google2011", str(GOOGLE), 1, tmp, "google-cli", cli=True)
            result["google2011_cli"] = _figures(g, "jobs")
            print("google2011 via the CLI:", json.dumps(
                {k: v for k, v in result["google2011_cli"].items() if k != "runs"}))
        sizes = (20_000, 80_000) if quick else (250_000, 1_000_000)
        for n in sizes:
            path = os.path.join(tmp, f"sacct-{n}.txt")
            lines = write_sacct(path, n)
            r, db = _ingest_runs("slurm", path, runs, tmp, f"slurm{n}", keep=(n == sizes[-1]))
            fig = _figures(r, "lines") | {"lines_in_file": lines + 1}
            result[f"slurm_{n}"] = fig
            print(f"slurm {n:,} lines:", json.dumps({k: v for k, v in fig.items() if k != "runs"}))
            if n == sizes[-1]:
                c, _ = _ingest_runs("slurm", path, 1, tmp, "slurm-cli", cli=True)
                result["slurm_cli"] = _figures(c, "lines")
                print("slurm via the CLI:", json.dumps(
                    {k: v for k, v in result["slurm_cli"].items() if k != "runs"}))
                again = [_run(["--db", db, "ingest", "slurm", path]) for _ in range(runs)]
                result["slurm_reingest"] = _figures(again, "lines") | {
                    "new_rows": max(a["summary"]["inserted"] + a["summary"]["updated"] for a in again)}
                print("slurm re-ingest:", json.dumps({k: v for k, v in result["slurm_reingest"].items()
                                                      if k != "runs"}))
    small, big = (result[f"slurm_{n}"]["peak_rss_mb_median"] for n in sizes)
    result["slurm_memory_ratio_big_over_small"] = round(big / small, 2)
    print("slurm peak RSS", sizes[-1], "vs", sizes[0], "lines:", result["slurm_memory_ratio_big_over_small"])
    return result


if __name__ == "__main__":
    if sys.argv[1:2] == ["child"]:
        child(*sys.argv[2:5])
