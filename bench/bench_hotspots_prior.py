"""CPU of the hotspots analyzer alone by prior, on the Google 2011 store's first half (the
split and validated priors read the first half of the window again where two or more entities
of a dimension are flagged; docs/benchmarks.md "Hotspot ranking by the split prior").

`python -m bench.bench_hotspots_prior [--db bench/out/google_tasks.db] [--rounds 5]`: one
warm-up call each, then `rounds` rounds of one call per prior, interleaved; medians of CPU
(process time) and wall. Opens a copy of the store (the store is not written).
"""
from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from jobmedic.analyzers.hotspots import Hotspots

HERE = Path(__file__).resolve().parent
PRIORS = ("moments", "split", "validated")


def main(argv: list[str] | None = None) -> dict:
    from bench.bench_google_hotnodes import TRACE_END_S
    from bench.google_tasks import EPOCH_OFFSET
    from jobmedic.core.timeutil import Window
    from jobmedic.knowledge.store import Store

    ap = argparse.ArgumentParser(prog="python -m bench.bench_hotspots_prior")
    ap.add_argument("--db", default=str(HERE / "out" / "google_tasks.db"))
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args(argv)
    window = Window(EPOCH_OFFSET, EPOCH_OFFSET + TRACE_END_S // 2)
    times: dict[str, list[tuple[float, float]]] = {p: [] for p in PRIORS}
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "g.db"
        shutil.copy(args.db, db)
        with Store(str(db)) as store:
            for rnd in range(args.rounds + 1):
                for prior in PRIORS:
                    c, w = time.process_time(), time.perf_counter()
                    Hotspots(prior=prior).run(store, window, None)
                    if rnd:  # round 0 warms up
                        times[prior].append((time.process_time() - c, time.perf_counter() - w))
    out = {p: {"cpu_ms": round(1000 * statistics.median(t[0] for t in v)),
               "wall_ms": round(1000 * statistics.median(t[1] for t in v))} for p, v in times.items()}
    print(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main()
