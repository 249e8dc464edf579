"""The memory-kill warning on the real Slurm testbed (OverMemoryKill kills a step past --mem):
a battery of real jobs sampled with sstat every ~1 s while they run; the figures (precision,
recall, median lead time before the kill) are printed and checked against floors.

Run alone: `.venv/bin/python -m pytest -q -s tests/live/test_memkill_slurm.py` (~2-3 min; the
node has 2 CPUs, so the battery runs two jobs at a time)."""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import time

import pytest

from jobmedic.ingest.sstat import parse_sstat, sstat_command
from jobmedic.models.memkill import job_estimate
from tests.live.slurmjobs import FINAL, sbatch

pytestmark = pytest.mark.slurm
LIMIT_MB = 400
# name -> (python body, killed expected); every allocation is touched (bytearray zero-fills)
BATTERY = {
    "linear_fast": ("b=[]\nwhile True:\n b.append(bytearray(8<<20)); time.sleep(1)", True),
    "linear_slow": ("b=[]\nwhile True:\n b.append(bytearray(5<<20)); time.sleep(1)", True),
    "steps": ("b=[]\nwhile True:\n b.append(bytearray(40<<20)); time.sleep(4)", True),
    "sawtooth_rising": (("b=[]\nk=0\nwhile True:\n k+=1\n b.append(bytearray(7<<20))\n"
                         " g=bytearray((k%4)*20<<20); time.sleep(1); del g"), True),
    "plateau": (("b=[]\nfor _ in range(20):\n b.append(bytearray(15<<20)); time.sleep(0.7)\n"
                 "time.sleep(22)"), False),
    "spikes": (("base=bytearray(100<<20)\nfor i in range(36):\n"
                " s=bytearray(200<<20) if i%6==0 else None; time.sleep(1); del s"), False),
    "sawtooth_flat": ("for i in range(36):\n g=bytearray(((i%5)+1)*50<<20); time.sleep(1); del g",
                      False),
}


def _sacct(ids):
    env = {**os.environ, "SLURM_TIME_FORMAT": "%s"}
    out = subprocess.run(["sacct", "-n", "-X", "-P", "-o", "JobID,State,End,ExitCode", "-j",
                          ",".join(ids)], capture_output=True, text=True, check=True,
                         env=env).stdout
    res = {}
    for line in out.splitlines():
        jid, st, end, code = (line.split("|") + ["", "", ""])[:4]
        state = st.split()[0] if st else ""
        if state == "FAILED" and code.endswith(":9"):  # OverMemoryKill: SIGKILL, FAILED 0:9
            state = "OUT_OF_MEMORY"
        res[jid] = (state, int(end) if end.isdigit() else None)
    return res


def test_memkill_battery_on_the_testbed(slurm_testbed, store, tmp_path):
    cluster = slurm_testbed["cluster"]
    ids = {}
    for name, (body, _) in BATTERY.items():
        script = tmp_path / f"{name}.py"
        script.write_text("import time\n" + body + "\n")
        ids[name] = sbatch(tmp_path, "-J", f"jm-mk-{name}", f"--mem={LIMIT_MB}M",
                           "--time=3", "-c", "1", wrap=f"python3 {script}")
    store.upsert_jobs([(cluster, j, n, "root", "physics", "running", LIMIT_MB, "slurm")
                       for n, j in ids.items()],
                      columns=("cluster", "job_id", "name", "user", "project", "state",
                               "req_mem_mb", "source"))
    first_alarm: dict[str, dict] = {}
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        st = _sacct(list(ids.values()))
        live = [j for j in ids.values() if st.get(j, ("",))[0] not in FINAL]
        if not live:
            break
        now = int(time.time())
        out = subprocess.run(sstat_command(live), capture_output=True, text=True,
                             check=False).stdout
        if out.strip():
            samples, _rej = parse_sstat(out.splitlines(), now, cluster)
            store.add_samples(samples)
        for j in live:
            if j in first_alarm:
                continue
            e = job_estimate(store.job_samples(j, cluster), LIMIT_MB, now)
            if e["alarm"]:
                first_alarm[j] = {"t": now, "eta_s": e["eta_s"], "interval": e["eta_interval_s"]}
        time.sleep(max(0.0, 1.0 - (time.time() - now)))
    st = _sacct(list(ids.values()))
    rows = {}
    for name, j in ids.items():
        state, end = st.get(j, ("", None))
        a = first_alarm.get(j)
        rows[name] = {"job": j, "state": state, "expected_kill": BATTERY[name][1],
                      "alarm": a is not None, "samples": len(store.job_samples(j, cluster)),
                      "lead_s": (end - a["t"]) if a and end and state == "OUT_OF_MEMORY"
                      else None, "eta_at_alarm_s": a and a["eta_s"]}
    killed = [r for r in rows.values() if r["state"] == "OUT_OF_MEMORY"]
    alarmed = [r for r in rows.values() if r["alarm"]]
    tp = [r for r in alarmed if r["state"] == "OUT_OF_MEMORY"]
    leads = [r["lead_s"] for r in tp if r["lead_s"] is not None]
    fig = {"jobs": len(rows), "killed": len(killed), "alarmed": len(alarmed),
           "precision": len(tp) / len(alarmed) if alarmed else None,
           "recall": len(tp) / len(killed) if killed else None,
           "median_lead_s": statistics.median(leads) if leads else None, "rows": rows}
    print(json.dumps(fig, indent=1))
    assert all(r["state"] in FINAL for r in rows.values()), rows
    # the battery behaves as designed: the growing jobs are killed, the others complete
    assert {n for n, r in rows.items() if r["state"] == "OUT_OF_MEMORY"} == \
        {n for n, (_, k) in BATTERY.items() if k}, rows
    assert not any(rows[n]["alarm"] for n in ("plateau", "spikes", "sawtooth_flat")), rows
    assert fig["recall"] >= 0.75 and fig["median_lead_s"] >= 5, fig
