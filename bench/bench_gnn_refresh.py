"""Cost of the gnn serving state's incremental refresh (models/gnn_refresh.py) against the load
it follows, and against a from-scratch state build over the whole store.

A synthetic store (models/synthetic.py) as a poll saw it at t0 (later jobs absent, jobs ending
after t0 still running), the failure and gnn models trained there; then polls of growing size
are ingested one after another, each followed by `app.after_ingest`, timing the gnn step (CPU
and wall). Last, the same state is rebuilt from scratch (features, graph, forward) for scale.

    .venv/bin/python -m bench.bench_gnn_refresh [--jobs 60000] [--polls 100,1000,5000]
    .venv/bin/python -m bench.bench_gnn_refresh --google [--polls 100,1000,5000]

(`--google`: on a copy of the Google 21-day store and its gnn state, after
`bench.eval_google_gnn`; see `google`.)
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parent / "out" / "gnn_refresh.json"


def main(argv: list[str]) -> dict:
    from jobmedic.app import App, after_ingest
    from jobmedic.knowledge import gnn_state
    from jobmedic.knowledge.migrations import JOB_COLUMNS
    from jobmedic.knowledge.store import Store
    from jobmedic.models import gnn_serving, registry, training
    from jobmedic.models.synthetic import seen_at, synthetic_jobs
    from jobmedic.settings import load_settings

    n = int(argv[argv.index("--jobs") + 1]) if "--jobs" in argv else 60000
    polls = [int(x) for x in (argv[argv.index("--polls") + 1] if "--polls" in argv
                              else "100,1000,5000").split(",")]
    if "--google" in argv:
        res = google(polls)
        OUT.with_name("gnn_refresh_google.json").write_text(json.dumps(res, indent=1, default=str))
        return res
    rows = synthetic_jobs(n, seed=3)
    c = {name: i for i, name in enumerate(JOB_COLUMNS)}
    sub = np.sort(np.array([r[c["submit_time"]] for r in rows]))
    idx = len(sub) - sum(polls) - 1 + np.cumsum([0, *polls])
    cuts = [int(sub[min(i, len(sub) - 1)]) for i in idx]  # poll i brings ~polls[i] new jobs
    tmp = Path(tempfile.mkdtemp())
    s = Store(tmp / "jm.db")
    s.upsert_jobs(seen_at(rows, cuts[0]))
    models = str(tmp / "m")
    t = time.process_time()
    training.train(s, "failure", models, params={"num_boost_round": 50, "nthread": 1})
    card = training.train(s, "gnn", models, params={"epochs": 5, "threads": 1})
    out: dict = {"jobs": n, "train_cpu_s": round(time.process_time() - t, 1),
                 "state": card["serving_state"], "polls": []}
    app = App(load_settings(db=str(tmp / "jm.db")), store=s)
    for p, t1 in zip(polls, cuts[1:]):
        seen = seen_at(rows, t1)
        s.upsert_jobs(seen)
        res = after_ingest(app, s)
        out["polls"].append({"poll_jobs": p, "loadavg": os.getloadavg()[0]} | (res.gnn or {}))
        print(json.dumps(out["polls"][-1]), flush=True)
    model, _ = registry.load(models, "gnn")
    model.version_ = gnn_state.header(s)[0]
    t, w = time.process_time(), time.perf_counter()
    frame = training.load(s)
    gnn_serving.build_state(s, model, frame)
    out["full_build"] = {"cpu_s": round(time.process_time() - t, 2), "wall_s": round(time.perf_counter() - w, 2),
                         "loadavg": os.getloadavg()[0]}
    print(json.dumps(out["full_build"]))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(out, indent=1, default=str))
    return out


def google(polls: list[int]) -> dict:
    """The same on a copy of the Google 21-day store (bench/out/data/google.db, with the gnn
    state `bench.eval_google_gnn` left there): each poll re-submits the next of the trace's last
    jobs under new ids, moved after everything in the store (ended, so each one joins the
    state), then `after_ingest`."""
    import shutil
    import sqlite3

    from jobmedic.app import App, after_ingest
    from jobmedic.knowledge.migrations import JOB_COLUMNS
    from jobmedic.knowledge.store import Store
    from jobmedic.models.synthetic import replayed
    from jobmedic.settings import load_settings

    src = Path(__file__).resolve().parent / "out" / "data" / "google.db"
    tmp = Path(tempfile.mkdtemp())
    shutil.copyfile(src, tmp / "g.db")
    con = sqlite3.connect(tmp / "g.db")
    cols = ", ".join(JOB_COLUMNS)
    last = con.execute(f"SELECT {cols} FROM jobs WHERE end_time IS NOT NULL ORDER BY submit_time DESC "
                       f"LIMIT {sum(polls)}").fetchall()[::-1]
    top = con.execute("SELECT MAX(end_time) FROM jobs").fetchone()[0]
    con.close()
    c = {name: i for i, name in enumerate(JOB_COLUMNS)}
    s = Store(tmp / "g.db")
    app = App(load_settings(db=str(tmp / "g.db")), store=s)
    out: dict = {"store": "google 21 days", "polls": []}
    done = 0
    for k, p in enumerate(polls):
        # after everything already in the store: a poll holds no job ended before the last one's
        batch = replayed(last[done:done + p], top, f"r{k}")
        done += p
        top = max(float(top), *(r[c["end_time"]] for r in batch))
        s.upsert_jobs(batch)
        res = after_ingest(app, s)
        out["polls"].append({"poll_jobs": p, "loadavg": os.getloadavg()[0]} | (res.gnn or {}))
        print(json.dumps(out["polls"][-1]), flush=True)
    shutil.rmtree(tmp)
    return out



if __name__ == "__main__":
    main(sys.argv[1:])
