"""Run benchmarks: `python -m bench list`, `python -m bench NAME [args]`, `python -m bench all`."""
from __future__ import annotations

import importlib
import json
import pkgutil
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent / "out"


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
        print("usage: python -m bench NAME [args] | all")
        return
    if args[0] == "all":
        for n in names():
            print(f"== {n}")
            run(n, [])
        return
    run(args[0], args[1:])


if __name__ == "__main__":
    main()
