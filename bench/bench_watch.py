"""`jobmedic watch` costs on a large synthetic store (bench/synthetic.py):

* polls that each bring 100 new jobs (20 failed, with output files to read) end to end:
  sacct text (this batch and the previous one, as the cursor's overlap re-reads it) -> new
  jobs -> job output -> incremental outcome inference -> every default alert rule but the
  hotspot one (at most every 5 minutes, less often when costly; timed apart) -> jsonl sink; median
  and p95, wall and CPU, over `--new-polls` polls; against the whole-store outcome inference
  the after-ingest step used to run;
* idle polls (nothing new) and what they mean for CPU at a 30 s interval, with and without
  the hotspot rule's share;
* resident memory over `--polls` idle polls;
* a real `sacct` call on the testbed when one answers.

The sacct text is generated in sacct's own --parsable2 format (the scheduler is not part of a
poll's cost here; the real call is timed separately). The load average is recorded at the
start and the end (the machine is shared).

    python -m bench.bench_watch --jobs 1000000 --store /tmp/synth_1000000.db [--polls 1000]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path

from bench.synthetic import T_END, build
from jobmedic.app import load_remediations, load_rules, load_taxonomy
from jobmedic.knowledge.advice import ranked_fixes
from jobmedic.knowledge.outcomes import infer_outcomes
from jobmedic.knowledge.store import Store
from jobmedic.live.poller import SACCT_FIELDS, SacctPoller, run_sacct
from jobmedic.live.rules import RuleSet
from jobmedic.live.sinks import Dispatcher, JsonlSink
from jobmedic.live.watch import Watcher

OUT = Path(__file__).resolve().parent / "out"


def _ts(epoch: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch))


def sacct_text(n: int, first_id: int, end: int, workdir: Path, header: bool = True) -> str:
    """`n` finished jobs in sacct --parsable2 form; every fifth fails (five of them under one
    name), with an output file holding a real error line."""
    fields = SACCT_FIELDS.split(",")
    lines = ["|".join(fields)] if header else []
    errors = ["slurmstepd: error: StepId={j}.batch exceeded memory limit (9 > 8), being killed",
              "ModuleNotFoundError: No module named 'torch'",
              "OSError: [Errno 122] Disk quota exceeded: '/scratch/out.h5'",
              "RuntimeError: NCCL error: unhandled system error"]
    for i in range(n):
        jid = first_id + i
        failed = i % 5 == 0
        name = "train-big" if failed and i < 25 else f"job{i % 37}"
        state, code = ("FAILED", "1:0") if failed else ("COMPLETED", "0:0")
        if failed:
            (workdir / f"slurm-{jid}.out").write_text(
                "epoch 1 loss 0.9\n" * 200 + errors[i % 4].format(j=jid) + "\n")
        row = {"JobID": str(jid), "JobIDRaw": str(jid), "JobName": name,
               "User": f"user{i % 50:03d}",
               "Account": "proj01" if name == "train-big" else f"proj{i % 30:02d}",
               "Partition": "batch",
               "QOS": "normal", "State": state, "ExitCode": code, "Reason": "None",
               "Submit": _ts(end - 4000), "Start": _ts(end - 3600), "End": _ts(end - i),
               "Elapsed": "01:00:00", "ElapsedRaw": "3600", "Timelimit": "02:00:00",
               "TimelimitRaw": "120", "ReqCPUS": "4", "NCPUS": "4", "ReqMem": "8G",
               "MaxRSS": "", "NNodes": "1", "NodeList": f"node{(i * 7) % 2000:04d}",
               "ReqTRES": "cpu=4,mem=8G,node=1", "AllocTRES": "cpu=4,mem=8G,node=1",
               "WorkDir": str(workdir), "SubmitLine": f"sbatch -J {name} run.sh",
               "Cluster": "synth", "Comment": ""}
        lines.append("|".join(row[f] for f in fields))
        lines.append("|".join({**row, "JobID": f"{jid}.batch", "JobIDRaw": f"{jid}.batch",
                               "JobName": "batch", "MaxRSS": "7000000K"}[f] for f in fields))
    return "\n".join(lines) + "\n"


def say(msg: str) -> None:
    import sys

    print(f"{time.strftime('%H:%M:%S')} {msg}", file=sys.stderr, flush=True)


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def pct(xs: list[float], q: float) -> float:
    """The q-quantile (0-1) by linear interpolation."""
    xs = sorted(xs)
    k = (len(xs) - 1) * q
    lo = int(k)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def changepoint_sim(runs: int = 500, seed: int = 1) -> dict:
    """The change-point rule's detector (default settings, 48 hourly buckets) on simulated
    series: false alerts on binomial and over-dispersed noise, detection of steps."""
    import numpy as np

    from jobmedic.live.changepoint import detect

    rng = np.random.default_rng(seed)
    out = {}
    for n, p in ((30, 0.10), (100, 0.05), (1400, 0.06), (5000, 0.02)):
        row = {}
        for name, over, factor, last in (("binomial noise", None, 1, 0),
                                         ("over-dispersed noise (beta, 20)", 20, 1, 0),
                                         ("x2.5 over the last 6 h", None, 2.5, 6),
                                         ("x3 in the last 2 h", None, 3, 2)):
            hits = 0
            for _ in range(runs):
                jobs = rng.poisson(n, 48)
                rate = rng.beta(p * over, (1 - p) * over, 48) if over else np.full(48, p)
                if last:
                    rate[48 - last:] *= factor
                hits += detect(jobs.tolist(), rng.binomial(jobs, rate).tolist()) is not None
            row[name] = f"{hits}/{runs}"
        out[f"{n} jobs/h at {p:.0%}"] = row
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--changepoint-sim", action="store_true",
                    help="only the change-point rule on simulated series")
    ap.add_argument("--jobs", type=int, default=1_000_000)
    ap.add_argument("--new", type=int, default=100)
    ap.add_argument("--new-polls", type=int, default=10)
    ap.add_argument("--polls", type=int, default=1000)
    ap.add_argument("--store", default=None, help="an existing synthetic store to copy")
    ap.add_argument("--skip-full", action="store_true",
                    help="skip the whole-store outcome inference (the 'before' figure)")
    a = ap.parse_args()
    if a.changepoint_sim:
        print(json.dumps(changepoint_sim(), indent=2))
        return
    src = Path(a.store or OUT / "data" / f"synth_{a.jobs}.db")
    if not src.exists():
        build(src, a.jobs)
    tmp = Path(tempfile.mkdtemp(prefix="bench-watch-", dir=str(src.parent)))
    db = tmp / "store.db"
    shutil.copy(src, db)
    tax = load_taxonomy()
    rules = load_rules(tax)
    assert load_remediations()
    res: dict = {"jobs": a.jobs, "new_jobs": a.new, "load_start": os.getloadavg()[:3],
                 "cores": os.cpu_count()}
    with Store(db) as store:
        n_jobs = store.conn.execute("SELECT COUNT(*) FROM jobs").fetchone()[0]
        res["store_jobs"] = n_jobs
        header = SACCT_FIELDS.replace(",", "|") + "\n"
        batches: list[str] = []

        def answer(k: int) -> str:
            """sacct's answer at poll k: batch k and, within the overlap, batch k - 1."""
            while len(batches) <= k:
                j = len(batches)
                batches.append(sacct_text(a.new, 90_000_000 + j * 1000, T_END + 300 + 60 * j,
                                          tmp, header=False))
            return header + (batches[k - 1] if k else "") + batches[k]

        state = {"k": -1}  # -1: the warm-up answer (nothing new)

        def runner(cmd: list[str]) -> str:
            return header if state["k"] < 0 else answer(state["k"])

        def fixes_for(ftype: str, project: str | None) -> list[dict]:
            out = ranked_fixes(store, rules, ftype, [project] if project else None)
            return sorted(out, key=lambda f: -(f.get("lower_bound") or 0))
        poller = SacctPoller(store, tax, "synth", runner=runner)
        sink = JsonlSink(str(tmp / "alerts.jsonl"))
        rs = RuleSet({"hotspot": {"enabled": False}}, fixes_for)  # every other default rule
        w = Watcher(store, tax, poller, rs, Dispatcher(store, [sink]), rulebase=rules,
                    resubmit_window_h=72, use_scontrol=False)
        now = T_END + 600
        # warm-up: the alerts the store's own history already raises are opened here (a
        # long-running watcher opened them long ago), so the timed polls are steady ones
        t0 = time.perf_counter()
        warm = w.step(now=now, since=T_END - 60)
        res["warmup_poll_s"] = round(time.perf_counter() - t0, 2)
        res["warmup_alerts_opened"] = warm.alerts.opened
        say(f"warm-up: {res['warmup_poll_s']}s, {warm.alerts.opened} alerts")
        walls, cpus, details = [], [], []
        for k in range(a.new_polls):
            state["k"] = k
            now = T_END + 600 + 60 * k
            t0, c0 = time.perf_counter(), time.process_time()
            r = w.step(now=now)
            walls.append(time.perf_counter() - t0)
            cpus.append(time.process_time() - c0)
            details.append({"read": r.poll.read, "new": len(r.poll.new_jobs),
                            "failed": len(r.poll.new_failures),
                            "with_output": r.evidence.get("with_output"),
                            "outcomes": r.outcomes, "alerts_opened": r.alerts.opened,
                            "ingest_s": round(r.poll.seconds, 3)})
            say(f"poll {k} with {len(r.poll.new_jobs)} new jobs: {walls[-1]:.3f}s wall, "
                f"{cpus[-1]:.3f}s CPU")
        res["poll_100_new_wall_s"] = {"median": round(pct(walls, 0.5), 3),
                                      "p95": round(pct(walls, 0.95), 3),
                                      "all": [round(x, 3) for x in walls]}
        res["poll_100_new_cpu_s"] = {"median": round(pct(cpus, 0.5), 3),
                                     "p95": round(pct(cpus, 0.95), 3),
                                     "all": [round(x, 3) for x in cpus]}
        res["poll_100_new"] = details
        # the change-point rule alone (it runs on every poll by default)
        cp = RuleSet({k: {"enabled": False} for k in ("repeat_failures", "node_users",
                                                      "hotspot", "known_fix", "memkill")})
        t0, c0 = time.perf_counter(), time.process_time()
        cp.evaluate(store, now)
        res["changepoint_rule_s"] = [round(time.perf_counter() - t0, 3),
                                     round(time.process_time() - c0, 3)]
        # the hotspot rule over 1 day of this store (it runs at most every 5 minutes)
        hs = RuleSet({k: {"enabled": False} for k in ("repeat_failures", "node_users",
                                                      "known_fix", "memkill", "changepoint")})
        t0, c0 = time.perf_counter(), time.process_time()
        hs.evaluate(store, T_END)
        res["hotspot_rule_1d_s"] = [round(time.perf_counter() - t0, 3),
                                    round(time.process_time() - c0, 3)]
        say(f"hotspot rule: {res['hotspot_rule_1d_s']} (wall, CPU)")
        # idle polls: the last answer again (nothing new)
        w.step(now=now)
        rss0 = rss_mb()
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(a.polls):
            w.step(now=now)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        res["idle_polls"] = a.polls
        res["idle_poll_mean_s"] = round(wall / a.polls, 4)
        res["idle_poll_cpu_mean_s"] = round(cpu / a.polls, 4)
        res["rss_mb_before_after"] = [round(rss0, 1), round(rss_mb(), 1)]
        say(f"idle polls: {res['idle_poll_mean_s']}s wall, {res['idle_poll_cpu_mean_s']}s CPU; "
            f"RSS {res['rss_mb_before_after']}")
        if not a.skip_full:
            # what the after-ingest step cost before: outcome inference over the whole store
            t0, c0 = time.perf_counter(), time.process_time()
            full = infer_outcomes(store, rules, 72)
            res["full_outcome_inference_s"] = [round(time.perf_counter() - t0, 2),
                                               round(time.process_time() - c0, 2)]
            res["full_outcome_inference_jobs"] = full.jobs_scanned
            say(f"full inference: {res['full_outcome_inference_s']}")
        res["max_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    if shutil.which("sacct"):
        cmd = SacctPoller(None, tax, "x").command(int(time.time()) - 3600)
        try:
            t0 = time.perf_counter()
            c0 = resource.getrusage(resource.RUSAGE_CHILDREN)
            for _ in range(10):
                run_sacct(cmd)
            c1 = resource.getrusage(resource.RUSAGE_CHILDREN)
            res["real_sacct_call_s"] = round((time.perf_counter() - t0) / 10, 4)
            res["real_sacct_call_cpu_s"] = round((c1.ru_utime + c1.ru_stime - c0.ru_utime
                                                  - c0.ru_stime) / 10, 4)
        except Exception as exc:  # noqa: BLE001 - no scheduler here: say so
            res["real_sacct_call_s"] = f"unavailable: {exc}"
    sacct = res.get("real_sacct_call_cpu_s")
    per = res["idle_poll_cpu_mean_s"] + (sacct if isinstance(sacct, float) else 0)
    res["idle_cpu_pct_at_30s"] = round(100 * per / 30, 3)
    # the hotspot rule's CPU spread over its schedule: every 300 s, or as often as keeps it
    # under max_cpu_share (0.5 %) of a core (live/rules.py)
    wait = max(300.0, res["hotspot_rule_1d_s"][1] / 0.005)
    res["hotspot_every_s"] = round(wait)
    res["idle_cpu_pct_at_30s_with_hotspot"] = round(
        res["idle_cpu_pct_at_30s"] + 100 * res["hotspot_rule_1d_s"][1] / wait, 3)
    res["load_end"] = os.getloadavg()[:3]
    shutil.rmtree(tmp, ignore_errors=True)
    OUT.mkdir(exist_ok=True)
    (OUT / f"watch_{a.jobs}.json").write_text(json.dumps(res, indent=2))
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
