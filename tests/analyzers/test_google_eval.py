"""Real data (slow): machines jobmedic flags in the first half of the Google 2011 task events
fail more often in the second half than the cluster does, and more so than the machines the
naive "three or more failures" rule flags. Figures: docs/analyzers.md."""
from __future__ import annotations

import pytest

from jobmedic.knowledge.store import Store


@pytest.mark.slow
def test_flagged_machines_keep_failing(shared_data, tmp_path):
    from bench.bench_google_hotnodes import main

    res = main(["--data", str(shared_data / "google_clusterdata_2011"),
                "--db", str(tmp_path / "g.db")])
    assert res["analyzer_errors"] == []
    jm, naive = res["jobmedic"], res["naive_3_failures"]
    assert jm["machines"] >= 5
    assert jm["lift"] > 1.3 and jm["h2_rate_ci"][0] > res["second_half"]["cluster_rate"]
    assert jm["lift"] > naive["lift"]
    with Store(tmp_path / "g.db") as s:
        assert s.table_counts()["jobs"] == res["load"]["attempts"]
