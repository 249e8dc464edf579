"""Submitting real jobs to the testbed and waiting for them (helpers for the slurm tests)."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

FINAL = {"COMPLETED", "FAILED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL", "CANCELLED",
         "PREEMPTED", "BOOT_FAIL", "DEADLINE"}
ROOT = Path(__file__).resolve().parents[2]

GROW = """\
import time
blocks = []
print("loading the whole matrix into memory", flush=True)
while True:
    blocks.append(bytearray(20 * 1024 * 1024))
    time.sleep(0.05)
"""


def sbatch(workdir: Path, *args: str, wrap: str) -> str:
    out = subprocess.run(["sbatch", "--parsable", f"--chdir={workdir}", *args, "--wrap", wrap],
                         capture_output=True, text=True, check=True).stdout.strip()
    return out.split(";")[0]


def states(ids: list[str]) -> dict[str, str]:
    """JobID -> first word of the allocation's State (array tasks under their own ids)."""
    out = subprocess.run(["sacct", "-n", "-X", "-P", "-o", "JobID,State", "-j", ",".join(ids)],
                         capture_output=True, text=True, check=True).stdout
    res = {}
    for line in out.splitlines():
        if "|" in line:
            jid, st = line.split("|", 1)
            res[jid] = st.split()[0] if st else ""
    return res


def wait_final(ids: list[str], timeout: float, expect: int | None = None) -> dict[str, str]:
    """Poll sacct until every job (and array task) has a final state."""
    deadline = time.monotonic() + timeout
    while True:
        st = states(ids)
        done = [s for s in st.values() if s in FINAL]
        if st and len(done) == len(st) and (expect is None or len(st) >= expect):
            return st
        if time.monotonic() > deadline:
            raise TimeoutError(f"jobs not finished after {timeout}s: {st}")
        time.sleep(1)


def wait_state(jid: str, want: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while states([jid]).get(jid) != want:
        if time.monotonic() > deadline:
            raise TimeoutError(f"job {jid} not {want} after {timeout}s: {states([jid])}")
        time.sleep(0.5)


def jobmedic(db: Path, *args: str, timeout: float = 180, check: bool = True,
             **kw) -> subprocess.CompletedProcess:
    env = {**os.environ, "JOBMEDIC_DB": str(db)}
    exe = Path(sys.executable).with_name("jobmedic")  # the installed entry point
    proc = subprocess.run([str(exe), *args], check=False, capture_output=True,
                          text=True, env=env, timeout=timeout, cwd=ROOT, **kw)
    if check and proc.returncode != 0:
        raise AssertionError(f"jobmedic {' '.join(args)} -> {proc.returncode}\n{proc.stdout}\n"
                             f"{proc.stderr}")
    return proc


def resume(node: str, timeout: float = 60) -> None:
    """Bring a node set DOWN back (slurmd re-registering may already have done it)."""
    deadline = time.monotonic() + timeout
    while True:
        st = subprocess.run(["sinfo", "-h", "-N", "-n", node, "-o", "%T"], check=False,
                            capture_output=True,
                            text=True).stdout.strip()
        if st.startswith(("idle", "mixed", "allocated")):
            return
        if "down" in st or "drain" in st or "fail" in st:
            subprocess.run(["scontrol", "update", f"nodename={node}", "state=resume"], check=False,
                           capture_output=True)
        if time.monotonic() > deadline:
            raise TimeoutError(f"node {node} still {st!r} after {timeout}s")
        time.sleep(0.5)
