"""`jobmedic watch` costs on a large synthetic store (bench/synthetic.py):

* one poll that brings 100 new jobs (20 failed, with output files to read) end to end:
  sacct text -> new jobs -> job output -> incremental outcome inference -> alert rules ->
  sinks; against the whole-store outcome inference the after-ingest step used to run;
* an idle poll (nothing new) and what it means for CPU at a 30 s interval;
* resident memory over 1,000 idle polls;
* a real `sacct` call on the testbed when one answers.

The sacct text is generated in sacct's own --parsable2 format (the scheduler is not part of a
poll's cost here; the real call is timed separately).

    python -m bench.bench_watch --jobs 1000000 [--polls 1000]
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
from jobmedic.knowledge.outcomes import infer_outcomes
from jobmedic.knowledge.store import Store
from jobmedic.live.poller import SACCT_FIELDS, SacctPoller, run_sacct
from jobmedic.live.rules import RuleSet
from jobmedic.live.sinks import Dispatcher, JsonlSink
from jobmedic.live.watch import Watcher

OUT = Path(__file__).resolve().parent / "out"


def _ts(epoch: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch))


def sacct_text(n: int, first_id: int, end: int, workdir: Path) -> str:
    """`n` finished jobs in sacct --parsable2 form; every fifth fails (five of them under one
    name), with an output file holding a real error line."""
    fields = SACCT_FIELDS.split(",")
    lines = ["|".join(fields)]
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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=1_000_000)
    ap.add_argument("--new", type=int, default=100)
    ap.add_argument("--polls", type=int, default=1000)
    ap.add_argument("--store", default=None, help="an existing synthetic store to copy")
    a = ap.parse_args()
    src = Path(a.store or OUT / "data" / f"synth_{a.jobs}.db")
    if not src.exists():
        build(src, a.jobs)
    tmp = Path(tempfile.mkdtemp(prefix="bench-watch-"))
    db = tmp / "store.db"
    shutil.copy(src, db)
    tax = load_taxonomy()
    rules = load_rules(tax)
    assert load_remediations()
    res: dict = {"jobs": a.jobs, "new_jobs": a.new}
    with Store(db) as store:
        n_jobs = store.conn.execute("SELECT COUNT(*) FROM jobs").fetchone()[0]
        res["store_jobs"] = n_jobs
        now = T_END + 600
        text = sacct_text(a.new, 90_000_000, T_END + 300, tmp)
        header = SACCT_FIELDS.replace(",", "|") + "\n"
        answers = [header, text]  # a warm-up poll (nothing new), then the 100 new jobs

        def runner(cmd: list[str]) -> str:
            return answers.pop(0) if answers else text
        poller = SacctPoller(store, tax, "synth", runner=runner)
        sink = JsonlSink(str(tmp / "alerts.jsonl"))
        rs = RuleSet({"hotspot": {"enabled": False}}, None)
        w = Watcher(store, tax, poller, rs, Dispatcher(store, [sink]), rulebase=rules,
                    resubmit_window_h=72, use_scontrol=False)
        # warm-up: the alerts the store's own history already raises are opened here (a
        # long-running watcher opened them long ago), so the timed poll is a steady one
        t0 = time.perf_counter()
        warm = w.step(now=now, since=T_END - 60)
        res["warmup_poll_s"] = round(time.perf_counter() - t0, 2)
        res["warmup_alerts_opened"] = warm.alerts.opened
        say(f"warm-up: {res['warmup_poll_s']}s, {warm.alerts.opened} alerts")
        t0, c0 = time.perf_counter(), time.process_time()
        r = w.step(now=now)
        res["poll_100_new_s"] = round(time.perf_counter() - t0, 3)
        say(f"poll with new jobs: {res['poll_100_new_s']}s")
        res["poll_100_new_cpu_s"] = round(time.process_time() - c0, 3)
        res["poll_100_new"] = {"read": r.poll.read, "new": len(r.poll.new_jobs),
                               "failed": len(r.poll.new_failures),
                               "with_output": r.evidence.get("with_output"),
                               "outcomes": r.outcomes, "alerts_opened": r.alerts.opened,
                               "ingest_s": round(r.poll.seconds, 3)}
        # the hotspot rule over one day of this store (it runs at most every 5 minutes)
        hs = RuleSet({"repeat_failures": {"enabled": False}, "node_users": {"enabled": False}})
        t0 = time.perf_counter()
        hs.evaluate(store, T_END)
        res["hotspot_rule_1d_s"] = round(time.perf_counter() - t0, 3)
        say(f"hotspot rule: {res['hotspot_rule_1d_s']}s")
        # what the after-ingest step cost before: outcome inference over the whole store
        t0 = time.perf_counter()
        full = infer_outcomes(store, rules, 72)
        res["full_outcome_inference_s"] = round(time.perf_counter() - t0, 2)
        res["full_outcome_inference_jobs"] = full.jobs_scanned
        say(f"full inference: {res['full_outcome_inference_s']}s")
        # idle polls: nothing new
        t0, c0 = time.perf_counter(), time.process_time()
        w.step(now=now)
        res["idle_poll_s"] = round(time.perf_counter() - t0, 4)
        say(f"idle poll: {res['idle_poll_s']}s")
        rss0 = rss_mb()
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(a.polls):
            w.step(now=now)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        res["idle_polls"] = a.polls
        res["idle_poll_mean_s"] = round(wall / a.polls, 4)
        res["idle_poll_cpu_mean_s"] = round(cpu / a.polls, 4)
        res["rss_mb_before_after"] = [round(rss0, 1), round(rss_mb(), 1)]
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
    shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
