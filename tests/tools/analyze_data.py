"""A small file store with planted trouble across two projects, shared by the analyze / stats
action tests and the scope test."""
from __future__ import annotations

from pathlib import Path

from jobmedic.knowledge.store import Store
from jobmedic.knowledge.taxonomy import Taxonomy
from jobmedic.settings import config_path
from jobmedic.tools import ToolContext
from tests.analyzers.planted import T0, Planted

NODES = [f"gpu-{i:02d}" for i in range(1, 9)]
AS_OF = "2023-11-22"  # the end of the planted week
END = T0 + 7 * 86400


def fill(store: Store) -> None:
    """ml-team: a bad node gpu-03 (gpu_error across users); research: an OOM-prone user on
    their own queue; ops-secret: a third project with its own bad image (never in scope)."""
    p = Planted(store, seed=11)
    for nd in NODES:
        p.add(120, nodes=nd, user=["alice", "bob", "carol"], project="ml-team", image="ml:v1",
              fail=0.03, gpus=2)
    p.add(40, nodes="gpu-03", user=["alice", "bob", "carol", "dave"], project="ml-team",
          image="ml:v1", fail=0.6, ftype="gpu_error", gpus=4)
    p.add(200, nodes=NODES[:4], user=["erin", "frank"], project="research", image="sci:2",
          queue="cpu", fail=0.03)
    p.add(50, nodes="gpu-05", user="mallory", project="research", image="sci:2", queue="cpu",
          fail=0.6, ftype="oom")
    p.add(300, nodes=NODES[4:], user=["zed", "yan"], project="ops-secret", image="secret:img",
          queue="ops", fail=0.02)
    p.add(77, nodes=NODES[4:], user=["zed", "yan"], project="ops-secret", image="secret:bad",
          queue="ops", fail=0.7, ftype="crash_loop")
    p.write()


def context(store: Store, scope: list[str] | None = None) -> ToolContext:
    return ToolContext(store, Taxonomy.from_yaml(config_path("taxonomy.yaml")), scope=scope,
                       now=END)


def file_db(tmp: Path) -> Path:
    path = tmp / "jm.db"
    with Store(path) as s:
        fill(s)
    return path
