"""Ingest before / after, side by side (issue 16 part 1):
`python -m bench ingest_ab --before DIR [--after DIR] [--runs N] [--slurm-lines N]`.

DIR is a source tree of jobmedic (a baseline: `git archive <commit> | tar -x -C DIR`); the
after tree defaults to this checkout. Each round runs the whole CLI command, as users run it,
once from each tree, alternately, so both see the same machine load:

* `jobmedic --db NEW ingest google2011 google2011_jobs.csv.gz` (490,845 jobs, fresh store);
* `jobmedic --db NEW ingest slurm FILE` (a generated `sacct --parsable2` file, bench_ingest's
  generator; 1M lines by default), fresh store.

Each figure: wall and CPU (user + system, wait4) of the child, with the 1-minute load average
taken just before it; medians over the rounds. Then the after-ingest outcome inference on the
last after-tree slurm store (about 1M lines): the whole-store run (`infer_outcomes`, what the
baseline's after-ingest step did) against the incremental one after a further small load of
new jobs (`infer_new_outcomes`, the new after-ingest step), CPU and wall, and how many jobs
each read.
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GOOGLE = Path("/work/shared/data/google_clusterdata_2011/google2011_jobs.csv.gz")
if not GOOGLE.exists():
    GOOGLE = ROOT.parent / "shared" / "data" / "google_clusterdata_2011" / "google2011_jobs.csv.gz"


def _cli(tree: Path, db: str, source: str, path: str, learn: bool = True) -> dict:
    load = os.getloadavg()[0]
    argv = [sys.executable, "-m", "jobmedic", "--db", db, "ingest", source, path, "--json",
            "--no-progress"] + ([] if learn else ["--no-learn"])
    env = {**os.environ, "PYTHONPATH": str(tree)}
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tree, env=env)
    out, err = proc.communicate()
    wall = time.perf_counter() - t0
    if proc.returncode:
        raise RuntimeError(f"{tree}: ingest {source} failed: {err.decode()[-800:]}")
    text = out.decode()
    summary = json.loads(text[text.index("{"):text.rindex("}") + 1])
    return {"wall_s": round(wall, 2), "load1": round(load, 2), "read": summary["read"],
            "inserted": summary["inserted"], "learned": err.decode().strip()[-200:]}


def _timed_cli(tree: Path, db: str, source: str, path: str, learn: bool = True) -> dict:
    """`_cli` with the child's CPU time: resource usage of children, before and after."""
    import resource

    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = _cli(tree, db, source, path, learn)
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    out["cpu_s"] = round(r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime, 2)
    return out


def _med(runs: list[dict], key: str) -> float:
    return round(statistics.median(r[key] for r in runs), 2)


def _summary(runs: list[dict], unit: str) -> dict:
    n = runs[0]["read"]
    return {unit: n, "wall_s_median": _med(runs, "wall_s"), "cpu_s_median": _med(runs, "cpu_s"),
            f"{unit}_per_s_wall": round(n / _med(runs, "wall_s")),
            f"{unit}_per_cpu_s": round(n / _med(runs, "cpu_s")),
            "load1_median": _med(runs, "load1"), "runs": runs}


def child_infer(db: str, extra: str) -> None:
    """In the after tree: whole-store inference, then a small load and the incremental step."""
    import resource

    from jobmedic.app import App
    from jobmedic.ingest import READERS, IngestContext, run_ingest
    from jobmedic.knowledge.outcomes import infer_new_outcomes, infer_outcomes
    from jobmedic.knowledge.templates import Templates

    def clock() -> float:
        r = resource.getrusage(resource.RUSAGE_SELF)
        return r.ru_utime + r.ru_stime

    app = App.open(None, db=db)
    st = app.store
    res: dict = {"jobs_in_store": st.table_counts()["jobs"]}
    c0, w0 = clock(), time.perf_counter()
    full = infer_outcomes(st, app.rules, app.settings.ingest.resubmit_window_h)
    res["whole_store"] = {"cpu_s": round(clock() - c0, 2), "wall_s": round(time.perf_counter() - w0, 2),
                          "jobs_read": full.jobs_scanned, "pairs": full.pairs}
    ctx = IngestContext(app.taxonomy, Templates(st.load_templates()), cluster="extra")
    s = run_ingest(st, READERS["slurm"], extra, ctx)
    res["new_load"] = {"read": s.read, "inserted": s.inserted, "updated": s.updated}
    c0, w0 = clock(), time.perf_counter()
    inc = infer_new_outcomes(st, app.rules, app.settings.ingest.resubmit_window_h)
    res["incremental"] = {"cpu_s": round(clock() - c0, 2), "wall_s": round(time.perf_counter() - w0, 2),
                          "jobs_read": inc.jobs_scanned, "pairs": inc.pairs}
    print(json.dumps(res))


def child_phases(db: str, path: str, source: str = "google2011") -> None:
    """CPU per phase of one ingest (google2011 unless SOURCE) and its after-ingest step, in
    this process (`python -m bench.bench_ingest_ab phases DB PATH [SOURCE]`, run from the tree
    to measure)."""
    import resource

    def cpu() -> float:
        r = resource.getrusage(resource.RUSAGE_SELF)
        return r.ru_utime + r.ru_stime

    t_start = cpu()
    import numpy  # noqa: F401 - the reader's imports count as start-up
    import pandas  # noqa: F401

    from jobmedic.app import App, after_ingest
    from jobmedic.ingest import READERS, IngestContext, run_ingest
    from jobmedic.knowledge.store import Store
    from jobmedic.knowledge.templates import Templates

    acc: dict[str, float] = {"start-up (imports)": cpu() - t_start}

    def wrap(name: str, key: str, owner: type = Store) -> None:
        fn = getattr(owner, name)

        def timed(*a, **k):
            c0 = cpu()
            try:
                return fn(*a, **k)
            finally:
                acc[key] = acc.get(key, 0.0) + cpu() - c0
        setattr(owner, name, timed)

    from jobmedic.knowledge.graphstore import PersistedGraph

    wrap("rebuild_indexes", "index rebuild")
    wrap("upsert_jobs", "jobs upsert (SQLite)")
    wrap("add_failure_events", "events, nodes, links (SQLite)")
    wrap("add_job_nodes", "events, nodes, links (SQLite)")
    wrap("link_events_to_jobs", "events, nodes, links (SQLite)")
    wrap("refresh", "graph and rollups refresh", PersistedGraph)
    wrap("refresh_rollups", "graph and rollups refresh")
    def child_cpu() -> float:
        r = resource.getrusage(resource.RUSAGE_CHILDREN)
        return r.ru_utime + r.ru_stime

    app = App.open(None, db=db)
    st = app.store
    templates = Templates(st.load_templates())
    try:  # as `jobmedic ingest` runs it (a tree without parse-ahead reads in-process)
        ctx = IngestContext(app.taxonomy, templates, parse_ahead=True)
    except TypeError:
        ctx = IngestContext(app.taxonomy, templates)
    c0, k0 = cpu(), child_cpu()
    run_ingest(st, READERS[source], path, ctx)
    acc["read + parse + rows"] = cpu() - c0 - sum(v for k, v in acc.items()
                                                  if k != "start-up (imports)")
    if child_cpu() > k0:
        acc["parse-ahead child (read + parse + rows)"] = child_cpu() - k0
    c0 = cpu()
    a = after_ingest(app)
    acc["after-ingest"] = cpu() - c0
    acc["total"] = cpu() - t_start + child_cpu() - k0
    print(json.dumps({k: round(v, 2) for k, v in acc.items()} | {"pairs": a.pairs}))


def main(argv: list[str]) -> dict:
    from bench.bench_ingest import write_sacct

    def opt(name: str, default: str | None) -> str | None:
        return argv[argv.index(name) + 1] if name in argv else default

    before = opt("--before", None)
    if before is None:
        raise SystemExit("usage: python -m bench ingest_ab --before DIR [--after DIR] [--runs N] "
                         "[--slurm-lines N] [--skip-google] [--skip-slurm]")
    trees = {"before": Path(before).resolve(), "after": Path(opt("--after", str(ROOT))).resolve()}
    runs = int(opt("--runs", "3"))
    lines = int(opt("--slurm-lines", "1000000"))
    result: dict = {"machine": f"{os.cpu_count()} cpus, shared", "runs": runs,
                    "trees": {k: str(v) for k, v in trees.items()}}
    with tempfile.TemporaryDirectory(prefix="jm-ab-") as tmp:
        jobs = []
        if "--skip-google" not in argv:
            jobs.append(("google2011", str(GOOGLE), "jobs"))
        if "--skip-slurm" not in argv:
            sacct = os.path.join(tmp, "sacct.txt")
            write_sacct(sacct, lines)
            jobs.append(("slurm", sacct, "lines"))
        for source, path, unit in jobs:
            got: dict[str, list[dict]] = {k: [] for k in trees}
            for i in range(runs):
                for tag, tree in trees.items():
                    db = os.path.join(tmp, f"{source}-{tag}-{i}.db")
                    r = _timed_cli(tree, db, source, path)
                    got[tag].append(r)
                    print(source, tag, i, json.dumps(r), flush=True)
                    keep = source == "slurm" and tag == "after" and i == runs - 1
                    if not keep:
                        for suffix in ("", "-wal", "-shm"):
                            Path(db + suffix).unlink(missing_ok=True)
            result[source] = {tag: _summary(v, unit) for tag, v in got.items()}
        if "--skip-slurm" not in argv:
            extra = os.path.join(tmp, "sacct-extra.txt")
            write_sacct(extra, 20_000, seed=11, first_id=50_000_000, t0=1714521600 + 4_000_000)
            db = os.path.join(tmp, f"slurm-after-{runs - 1}.db")
            proc = subprocess.run(
                [sys.executable, "-m", "bench.bench_ingest_ab", "child-infer", db, extra],
                cwd=trees["after"], env={**os.environ, "PYTHONPATH": str(trees["after"])},
                capture_output=True, text=True, check=False)
            if proc.returncode:
                raise RuntimeError(proc.stderr[-800:])
            result["inference"] = json.loads(proc.stdout.strip().splitlines()[-1])
            print("inference", json.dumps(result["inference"]), flush=True)
    return result


if __name__ == "__main__":
    if sys.argv[1:2] == ["child-infer"]:
        child_infer(sys.argv[2], sys.argv[3])
    elif sys.argv[1:2] == ["phases"]:
        child_phases(*sys.argv[2:5])
    else:
        print(json.dumps(main(sys.argv[1:]), indent=2))
