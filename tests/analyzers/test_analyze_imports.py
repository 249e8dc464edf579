"""The analyze action imports neither pandas nor scipy (issue 16: ~1 s of CPU in every analyze
process before). A subprocess (a fresh interpreter, like the CLI's) runs the whole analyze
action on a small planted store whose findings reach every analyzer's path (hotspots with an
explained entity, blame's attribution model, patterns, temporal), then lists the modules."""
from __future__ import annotations

import json
import subprocess
import sys

from jobmedic.core.timeutil import iso
from jobmedic.knowledge.store import Store
from tests.analyzers.planted import Planted

NODES = [f"n{i:02d}" for i in range(1, 11)]
USERS = ["a", "b", "c", "d", "e", "f"]

CHILD = """
import json, sys
from jobmedic.app import build_tool_context, load_taxonomy, open_store
from jobmedic.settings import Settings
from jobmedic.tools import run_action

s = Settings(db=sys.argv[1])
store = open_store(s)
ctx = build_tool_context(s, store, load_taxonomy(), None)
res = run_action({"action": "analyze", "lookback_days": 7, "as_of": sys.argv[2]}, ctx)
print(json.dumps({"status": res.status, "error": res.error,
                  "kinds": sorted({f["kind"] for f in (res.data or {}).get("findings", [])}),
                  "errors": (res.data or {}).get("errors"),
                  "heavy": sorted(m for m in sys.modules
                                  if m.split(".")[0] in ("pandas", "scipy", "pyarrow"))}))
"""


def test_analyze_imports_neither_pandas_nor_scipy(tmp_path) -> None:
    db = tmp_path / "small.db"
    with Store(db) as store:
        p = Planted(store, seed=3)
        p.add(1000, nodes="n01", user=USERS, fail=0.05)
        for nd in NODES[1:]:  # a bad node (cluster failures, many users)
            p.add(100, nodes=nd, user=USERS, fail=0.3 if nd == "n07" else 0.05,
                  ftype="node_failure" if nd == "n07" else "app_error")
        p.add(60, nodes="n03", user=USERS, image="img:bad", fail=0.7, ftype="crash_loop")
        p.add(60, nodes="n02", user="oomer", fail=0.6, ftype="oom", name="same-job")
        window = p.write()
    out = subprocess.run([sys.executable, "-c", CHILD, str(db), iso(window.end)],
                         capture_output=True, text=True, timeout=120, check=True)
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["status"] == "ok", got["error"]
    assert got["errors"] == []
    assert {"hotspot", "explained", "blame", "pattern", "repeat"} <= set(got["kinds"]), got["kinds"]
    assert got["heavy"] == []
