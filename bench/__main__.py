"""Run benchmarks: `python -m bench list`, `python -m bench NAME [args]`, `python -m bench all
[--quick]`.

`all` runs every bench/bench_*.py (each with its defaults: the full figures of docs/benchmarks.md,
hours on a shared machine); `all --quick` runs each with the small arguments of QUICK (minutes).
A bench that fails is reported and the others still run; the exit status is 1 if any failed."""
from __future__ import annotations

import importlib
import json
import pkgutil
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent / "out"
#: Small arguments per bench for `all --quick` (a bench not listed runs with its defaults).
QUICK: dict[str, list[str]] = {
    "agent": ["--jobs", "100000", "--repeat", "3", "--starts", "1"],
    "analyze": ["--sizes", "100000", "--repeat", "3"],
    "dask": ["fresco", "30"],
    "diagnose": ["--repeat", "1"],
    "diagnose_warm": ["--repeat", "1", "--cold", "2", "--curl", "20"],
    "gnn_refresh": ["--jobs", "20000", "--polls", "100,1000"],
    "http": ["--jobs", "100000", "--requests", "500", "--mixed-requests", "100", "--seconds", "10"],
    "ingest": ["--quick", "--runs", "1"],
    "local_llm": ["--n", "3"],
    "predict": ["--jobs", "100000", "--calls", "200"],
    "remedies": ["--jobs", "100000", "--repeat", "5"],
    "rollups": ["--sizes", "100000", "--repeat", "3"],
    "running": ["--jobs", "1000", "--running", "10", "--reps", "3", "--before"],
    "scale": ["--sizes", "100000", "--runs", "3"],
    "startup": ["--runs", "3"],
    "watch": ["--jobs", "100000", "--polls", "50", "--new-polls", "3"],
}


def names() -> list[str]:
    here = Path(__file__).resolve().parent
    return sorted(m.name[len("bench_"):] for m in pkgutil.iter_modules([str(here)])
                  if m.name.startswith("bench_"))


def run(name: str, argv: list[str]) -> dict:
    mod = importlib.import_module(f"bench.bench_{name}")
    result = mod.main(argv)
    OUT.mkdir(exist_ok=True)
    (OUT / f"{name}.json").write_text(json.dumps(result, indent=2, default=str))
    return result


def main() -> None:
    args = sys.argv[1:]
    if not args or args[0] in ("-h", "--help", "list"):
        print("benchmarks:", ", ".join(names()) or "(none)")
        print("usage: python -m bench NAME [args] | all [--quick]")
        return
    if args[0] == "all":
        quick = "--quick" in args[1:]
        failed = []
        for n in names():
            argv = QUICK.get(n, []) if quick else []
            print(f"== {n} {' '.join(argv)}".rstrip(), flush=True)
            try:
                run(n, argv)
            except Exception as exc:  # noqa: BLE001 - one bench's failure must not stop the rest
                print(f"!! {n} failed: {type(exc).__name__}: {exc}", flush=True)
                failed.append(n)
        if failed:
            print(f"failed: {', '.join(failed)}")
            sys.exit(1)
        return
    run(args[0], args[1:])


if __name__ == "__main__":
    main()
