"""analyzers/rows.py and the plain-row code built on it give what the pandas code they replaced
gave (issue 16: analyze without pandas): sorted groups with missing keys last, pandas' float
group sums, `sort_values(ascending=False)`'s order with ties, the hotspot ordering of a tested
table, and the per-entity sums of the (project, user, image, queue) combinations."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from jobmedic.analyzers.hotspots import Hotspots, order, per_entity
from jobmedic.analyzers.rows import desc_order, group, ksum

RNG = np.random.default_rng(16)


@pytest.mark.parametrize("n", [5, 17, 300, 5000])
def test_desc_order_is_sort_values_order_with_ties(n: int) -> None:
    for values in (RNG.integers(0, 6, n).tolist(), (RNG.integers(0, 40, n) / 8).tolist()):
        want = pd.Series(values).sort_values(ascending=False).index.tolist()
        assert desc_order(values) == want
        want = pd.Series(values).sort_values(ascending=False, kind="stable").index.tolist()
        assert desc_order(values, kind="stable") == want
    with_nan = [3.0, None, 1.0, 3.0, None, 2.0]
    assert desc_order(with_nan) == pd.Series(with_nan, dtype=float).sort_values(
        ascending=False).index.tolist()


def test_group_sums_are_pandas_group_by_sums() -> None:
    keys = [None, "b", "a", "c", None, "a"] * 400
    vals = (RNG.random(len(keys)) * 1e3).tolist()
    vals[7] = None
    rows = [{"k": k, "v": v} for k, v in zip(keys, vals)]
    got = {k: ksum(r["v"] for r in g) for k, g in group(rows, "k", dropna=False).items()}
    want = pd.DataFrame(rows).groupby("k", dropna=False)["v"].sum()
    assert list(got) == ["a", "b", "c", None]  # sorted, the missing key last
    for k, v in want.items():
        assert got[None if pd.isna(k) else k] == v  # to the bit
    assert list(group(rows, "k")) == ["a", "b", "c"]  # dropna: no missing group


def _combos(n: int) -> list[dict]:
    pick = lambda xs: [xs[i] for i in RNG.integers(0, len(xs), n)]
    return [{"project": p, "user": u, "image": i, "queue": q, "jobs": int(j), "failures": int(f),
             "gpu_h": float(g), "core_h": float(c)}
            for p, u, i, q, j, f, g, c in zip(
                pick(["p1", "p2", None]), pick(["u1", "u2", "u3", None]), pick(["img", None]),
                pick(["q1", "q2"]), RNG.integers(1, 50, n), RNG.integers(0, 5, n),
                RNG.random(n) * 10, RNG.random(n) * 100)]


def _per_entity_pandas(combos: pd.DataFrame, dim: str) -> list[dict]:
    """The pandas implementation per_entity replaced (as it was before issue 16 item 2)."""
    sums = ["jobs", "failures", "gpu_h", "core_h"]
    g = combos.groupby(dim, dropna=False)[sums].sum()
    failing = combos[combos["failures"] > 0]
    users = failing.groupby(dim, dropna=False)["user"].nunique() if dim != "user" else \
        (failing.groupby(dim, dropna=False)["failures"].sum() > 0).astype(int)
    g["users"] = users.reindex(g.index).fillna(0).astype(int)
    g = g.reset_index().rename(columns={dim: "key"})
    g["key"] = g["key"].astype(object).where(g["key"].notna(), None)
    return g.to_dict("records")


@pytest.mark.parametrize("dim", ["project", "user", "image", "queue"])
def test_per_entity_equals_the_pandas_sums(dim: str) -> None:
    combos = _combos(600)
    assert per_entity(combos, dim) == _per_entity_pandas(pd.DataFrame(combos), dim)


@pytest.mark.parametrize("rank_by", ["shrunk_mean", "shrunk_low", "q"])
def test_table_order_is_the_dataframe_order(rank_by: str) -> None:
    rows = [{"key": f"n{i:03d}", "jobs": int(j), "failures": int(f), "wfailures": float(f)}
            for i, (j, f) in enumerate(zip(RNG.integers(10, 60, 200), RNG.integers(0, 12, 200)))]
    rows += [dict(rows[3], key="dup-a"), dict(rows[3], key="dup-b")]  # exact ties
    hs = Hotspots(min_exposure=5, rank_by=rank_by, prior="moments")
    table, everyone = hs.tested(rows, "node")
    table = hs.rescore(table, "node", None, everyone)
    assert list(order(table, rank_by)["key"]) == list(order(table.to_frame(), rank_by)["key"])
    table["by_count"] = np.full(len(table), True)  # the validated prior's count order
    assert list(order(table, rank_by)["key"]) == list(order(table.to_frame(), rank_by)["key"])
