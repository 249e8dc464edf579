"""CLI start-up (issue 16 item 6): wall and CPU time of whole `jobmedic` commands on a small
store, each a fresh child process reaped with os.wait4 (so its CPU time is its own), plus the
heavy modules each command imported (`python -X importtime`).

    python -m bench startup [--runs 7] [--src DIR] [--big /tmp/jm-1m.db]

--src runs the commands from another checkout (e.g. a `git worktree` of an older commit) with
this interpreter, so two trees can be compared side by side in one session. --big also times
`remediate --job-id` (a failed job) on a copy of that store (issue 16 item 5: <= 300 ms end to
end on a 1M store): the first call may build derived tables (the persisted graph) and is
reported apart as `first_call`; the medians are the steady state after it.

--bytecode says where the children find compiled bytecode: `env` (default) runs them in this
environment as it is - with PYTHONDONTWRITEBYTECODE=1 and no __pycache__ in the checkout (an
editable install in this sandbox) every jobmedic module is compiled from source in every
process; `cached` points them at a private PYTHONPYCACHEPREFIX that the first (untimed) call
fills, which is what a wheel install (pip compiles at install time) or a checkout that may write
__pycache__ runs with; `both` runs the two one after the other. Nothing is written into the
checkout either way.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("pandas", "numpy", "scipy", "sklearn", "xgboost", "torch", "networkx", "pyarrow",
         "sqlite_utils", "pydantic_settings")
#: The command-line framework: the fast path (jobmedic.cli.fast) runs without it.
FRAMEWORK = ("typer", "rich", "markdown_it")
COMMANDS = {
    "--help": ["--help"],
    "db info": ["db", "info"],
    "act stats": ["act", '{"action":"stats"}'],
    "act analyze": ["act", '{"action":"analyze"}'],
    "act remediate": ["act", '{"action":"remediate","failure_type":"oom"}'],
    "remediate --job-id": ["remediate", "--job-id", "1001"],
}


def _child(argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float, str]:
    """(wall s, CPU s of the child, stderr) of one command."""
    t0 = time.perf_counter()
    p = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                         text=True)
    err = p.stderr.read() if p.stderr else ""
    _, status, ru = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - t0
    if p.returncode not in (0, 1, 3):
        raise RuntimeError(f"{argv} exited {p.returncode}: {err[-500:]}")
    return wall, ru.ru_utime + ru.ru_stime, err


def heavy_imports(stderr: str, names: tuple[str, ...] = HEAVY) -> list[str]:
    """Top-level packages of `names` named in a `-X importtime` report."""
    seen = set()
    for line in stderr.splitlines():
        if line.startswith("import time:") and line.count("|") == 2:
            seen.add(line.split("|")[2].strip().split(".")[0])
    return sorted(seen & set(names))


def _big_store(big: Path, tmp: Path, src: Path, env: dict[str, str], runs: int) -> dict:
    """remediate --job-id on a copy of `big` (never the original): one first call (it may build
    derived tables), then `runs` timed calls."""
    db = tmp / "big.db"
    src_db = sqlite3.connect(f"file:{big}?mode=ro", uri=True)
    dst = sqlite3.connect(db)
    src_db.backup(dst)  # a consistent copy, WAL included
    dst.close()
    (job,) = src_db.execute("SELECT job_id FROM jobs WHERE state = 'failed' ORDER BY rowid "
                            "LIMIT 1").fetchone()
    src_db.close()
    models = big.with_name(big.name + ".models")
    if models.is_dir():
        shutil.copytree(models, tmp / "big.db.models")
    argv = [sys.executable, "-m", "jobmedic", "--db", str(db), "remediate", "--job-id", str(job)]
    first_wall, first_cpu, _ = _child(argv, src, env)
    walls, cpus = [], []
    for _ in range(runs):
        w, c, _ = _child(argv, src, env)
        walls.append(w)
        cpus.append(c)
    row = {"store": str(big), "job_id": str(job), "first_call_wall_s": round(first_wall, 3),
           "first_call_cpu_s": round(first_cpu, 3),
           "wall_median_s": round(statistics.median(walls), 3),
           "cpu_median_s": round(statistics.median(cpus), 3)}
    print(f"remediate --job-id {job} on a copy of {big.name}: first call wall {first_wall:.3f} s "
          f"CPU {first_cpu:.3f} s; then wall {row['wall_median_s']:.3f} s  CPU "
          f"{row['cpu_median_s']:.3f} s", flush=True)
    return row


def _env(src: Path, bytecode: str, tmp: Path) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(src)}
    if bytecode == "cached":
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(tmp / "pycache")
    return env


def bytecode_state(src: Path) -> str:
    """How the `env` mode finds jobmedic's bytecode in `src`."""
    cached = any((src / "jobmedic").rglob("__pycache__/*.pyc"))
    writes = not os.environ.get("PYTHONDONTWRITEBYTECODE")
    return ("jobmedic __pycache__ present" if cached else "no jobmedic __pycache__") + \
        ("" if writes else ", PYTHONDONTWRITEBYTECODE=1") + \
        (f", PYTHONPYCACHEPREFIX={os.environ['PYTHONPYCACHEPREFIX']}"
         if os.environ.get("PYTHONPYCACHEPREFIX") else "")


def main(argv: list[str]) -> dict:
    ap = argparse.ArgumentParser(prog="bench startup")
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--src", default=str(ROOT), help="checkout whose jobmedic package runs")
    ap.add_argument("--big", default=None, help="a large store (e.g. /tmp/jm-1m.db): time "
                                                "remediate --job-id on a copy of it")
    ap.add_argument("--bytecode", choices=("env", "cached", "both"), default="env",
                    help="env: this environment as it is; cached: a private, pre-filled "
                         "PYTHONPYCACHEPREFIX (an installed wheel); both")
    a = ap.parse_args(argv)
    src = Path(a.src).resolve()
    modes = ("env", "cached") if a.bytecode == "both" else (a.bytecode,)
    out = {"src": str(src), "runs": a.runs, "env_bytecode": bytecode_state(src), "modes": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for mode in modes:
            print(f"-- bytecode: {mode}" + (f" ({out['env_bytecode']})" if mode == "env" else
                                            " (private PYTHONPYCACHEPREFIX, filled first)"),
                  flush=True)
            out["modes"][mode] = _measure(a, src, _env(src, mode, Path(tmp)), Path(tmp) / mode)
    load = os.getloadavg()
    print(f"load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} on {os.cpu_count()} CPUs")
    out["loadavg"] = load
    return out


def _measure(a: argparse.Namespace, src: Path, env: dict[str, str], tmp: Path) -> dict:
    tmp.mkdir()
    db = str(tmp / "small.db")
    base = [sys.executable, "-m", "jobmedic", "--db", db]
    _child([*base, "ingest", "slurm", str(ROOT / "tests/fixtures/sacct_states.txt")], src, env)
    rows = {}
    for name, args in COMMANDS.items():
        _, _, err = _child([sys.executable, "-X", "importtime", *base[1:], *args], src, env)
        walls, cpus = [], []
        for _ in range(a.runs):
            w, c, _ = _child([*base, *args], src, env)
            walls.append(w)
            cpus.append(c)
        rows[name] = {"wall_median_s": round(statistics.median(walls), 3),
                      "cpu_median_s": round(statistics.median(cpus), 3),
                      "heavy_imports": heavy_imports(err),
                      "framework": heavy_imports(err, FRAMEWORK)}
        print(f"{name:18s} wall {rows[name]['wall_median_s']:.3f} s  CPU "
              f"{rows[name]['cpu_median_s']:.3f} s  heavy: "
              f"{', '.join(rows[name]['heavy_imports']) or '-'}  cli: "
              f"{', '.join(rows[name]['framework']) or '-'}", flush=True)
    if a.big:
        rows["remediate --job-id (big store)"] = _big_store(Path(a.big), tmp, src, env,
                                                            a.runs)
    load = os.getloadavg()
    print(f"load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} on {os.cpu_count()} CPUs",
      flush=True)
    return {"loadavg": load, "commands": rows}
