"""The MGnify loader's study proxy (issue 18, seventh pass): a run accession maps to its prefix
and number // K, and the validation selection rule picks as the card says."""
from __future__ import annotations

import pandas as pd
import pytest

from bench import eval_mgnify_study as study
from bench.eval_mgnify_memory import study_block


@pytest.mark.parametrize("runs, k, want", [
    (["ERR3589553", "ERR3589554", "SRR5720271"], 50_000, ["ERR:71", "ERR:71", "SRR:114"]),
    (["ERR3549999", "ERR3550000"], 50_000, ["ERR:70", "ERR:71"]),  # a block edge
    (["ERR100", "SRR100", "DRR100"], 1000, ["ERR:0", "SRR:0", "DRR:0"]),  # prefixes stay apart
    (["ERR3589553", "SRR5720271"], None, ["mgnify", "mgnify"]),  # the loader before this pass
])
def test_study_block(runs, k, want):
    assert study_block(pd.Series(runs), k).tolist() == want


def _row(k, under, cost, hindsight):
    return {"block": k, "served": {"under_%": under, "cost_gb": cost}, "hindsight": {"cost_gb": hindsight}}


@pytest.mark.parametrize("rows, chosen", [
    ([_row(None, 3.83, 90.3, 119.7), _row(1, 3.0, 80.0, 111.7), _row(2, 3.0, 79.0, 111.8)], 1),
    ([_row(1, 3.84, 70.0, 100.0), _row(2, 3.83, 85.0, 105.0), _row(3, 2.0, 84.0, 110.0)], 3),
    ([_row(None, 3.83, 90.3, 119.7), _row(1, 4.0, 70.0, 100.0)], None),  # nothing qualifies
])
def test_selection_rule(rows, chosen):
    got = study.select(rows)
    assert (got["block"] if got else None) == chosen
