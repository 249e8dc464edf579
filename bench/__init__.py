"""jobmedic benchmarks: `python -m bench NAME [options]` or `python -m bench all`.

Each benchmark is a module bench/bench_<name>.py with `main(argv) -> dict` that prints its
figures and returns them; results go to bench/out/<name>.json and the figures are quoted in
docs/benchmarks.md with the command that reproduces them.
"""
