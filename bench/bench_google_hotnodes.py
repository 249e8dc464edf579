"""Do jobmedic's hot-machine flags predict? On the real Google 2011 task events (first ~8.5 h):
flag machines from the first half, then measure how often the flagged machines' task attempts
fail in the second half relative to the whole cluster (the lift), for jobmedic's flags
(exposure-normalised exact tests + BH + blame) and for the naive "three or more failures" rule
side by side. `python -m bench google_hotnodes [--data DIR]` (needs ../shared/data)."""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from bench.google_tasks import EPOCH_OFFSET, load
from jobmedic.analyzers import build, run_all
from jobmedic.analyzers.stats_utils import wilson
from jobmedic.core.timeutil import Window
from jobmedic.knowledge.store import Store

OUT = Path(__file__).resolve().parent / "out"
DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "google_clusterdata_2011"
TRACE_END_S = 30_667  # the six task-event parts cover trace seconds 0 - 30,666


def lift(nodes: set[str], h2: dict[str, dict], base: float) -> dict:
    jobs = sum(h2[n]["jobs"] for n in nodes if n in h2)
    fails = sum(h2[n]["failures"] for n in nodes if n in h2)
    rate = fails / jobs if jobs else float("nan")
    lo, hi = wilson(fails, jobs)
    worse = [n for n in nodes if n in h2 and h2[n]["jobs"] >= 10]
    above = sum(h2[n]["failures"] / h2[n]["jobs"] > base for n in worse)
    return {"machines": len(nodes), "h2_attempts": jobs, "h2_failures": fails,
            "h2_rate": round(rate, 4), "h2_rate_ci": [round(float(lo), 4), round(float(hi), 4)],
            "lift": round(rate / base, 2) if base and jobs else None,
            "share_above_cluster": round(above / len(worse), 3) if worse else None,
            "machines_with_10_h2_attempts": len(worse)}


def main(argv: list[str]) -> dict:
    ap = argparse.ArgumentParser(prog="python -m bench google_hotnodes")
    ap.add_argument("--data", default=str(DATA))
    ap.add_argument("--db", default=str(OUT / "google_tasks.db"))
    args = ap.parse_args(argv)
    OUT.mkdir(exist_ok=True)
    t0 = time.perf_counter()
    with Store(args.db) as store:
        facts = {}
        if store.table_counts()["jobs"] == 0:
            facts = load(store, Path(args.data))
            store.conn.execute("ANALYZE")
        load_s = time.perf_counter() - t0
        mid = EPOCH_OFFSET + TRACE_END_S // 2
        h1, h2w = Window(EPOCH_OFFSET, mid), Window(mid, EPOCH_OFFSET + TRACE_END_S + 1)
        # jobmedic: the whole analyzer pipeline on the first half, every node hotspot kept
        t1 = time.perf_counter()
        findings, errors = run_all(build({"hotspots": {"max_per_dim": 100_000}}), store, h1, None)
        analyze_s = time.perf_counter() - t1
        hot = [f for f in findings if f.kind == "hotspot" and f.subject.startswith("node:")]
        tested = {f.evidence["entity"] for f in hot}
        kept = {f.evidence["entity"] for f in hot if f.evidence.get("attributed_to", f.subject) == f.subject}
        explained = {f.evidence["entity"] for f in findings
                     if f.kind == "explained" and f.subject.startswith("node:")}
        r1 = store.node_rates(h1, None)
        naive = {r["key"] for r in r1 if r["failures"] >= 3}
        by_count = sorted(r1, key=lambda r: -r["failures"])
        top_k = {r["key"] for r in by_count[: max(len(kept), 1)]}
        top_k_tested = {r["key"] for r in by_count[: max(len(tested), 1)]}
        h2 = {r["key"]: r for r in store.node_rates(h2w, None)}
        tot = store.window_totals(h2w, None)
        base = tot["failures"] / tot["jobs"]
        h1_tot = store.window_totals(h1, None)
        result = {
            "data": str(args.data), "load": facts, "load_s": round(load_s, 1),
            "analyze_first_half_s": round(analyze_s, 2), "analyzer_errors": errors,
            "first_half": {"attempts": h1_tot["jobs"], "failures": h1_tot["failures"],
                           "machines": len(r1)},
            "second_half": {"attempts": tot["jobs"], "failures": tot["failures"],
                            "cluster_rate": round(base, 4), "machines": len(h2)},
            "jobmedic": lift(kept, h2, base),
            "jobmedic_before_blame": lift(tested, h2, base),
            "jobmedic_explained_by_one_user": lift(explained, h2, base),
            "naive_3_failures": lift(naive, h2, base),
            "naive_top_k_by_failures": lift(top_k, h2, base),
            "naive_top_k_by_failures_before_blame_size": lift(top_k_tested, h2, base),
            "naive_minus_jobmedic": lift(naive - kept, h2, base),
        }
    for k in ("jobmedic", "jobmedic_before_blame", "jobmedic_explained_by_one_user",
              "naive_3_failures", "naive_top_k_by_failures",
              "naive_top_k_by_failures_before_blame_size", "naive_minus_jobmedic"):
        v = result[k]
        print(f"{k:42s} machines {v['machines']:5d}  H2 {v['h2_failures']:6d}/{v['h2_attempts']:7d} "
              f"rate {v['h2_rate']:.3f} {v['h2_rate_ci']}  lift {v['lift']}  above {v['share_above_cluster']}")
    print(f"cluster H2 rate {base:.4f}; first half {result['first_half']}; analyze {analyze_s:.2f} s")
    return result


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
