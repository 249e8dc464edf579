"""Blame states one conclusion per subject (issue 12, item 3). On the NREL Eagle sample the
same answer said "look at user user0014" (project account0003 explained by the user) and "fix
project account0003 rather than user user0014" (the attribution model); now each subject gets
one recommendation, the end of its drill-down path, and the conflict is explained."""
from __future__ import annotations

import pytest

from jobmedic.ingest import READERS, IngestContext, run_ingest
from jobmedic.knowledge.templates import Templates
from jobmedic.tools import run_action
from jobmedic.tools.base import ToolContext


@pytest.fixture
def eagle(store, taxonomy, shared_data):
    path = shared_data / "eagle_sample" / "sample_eagle_data.csv"
    if not path.exists():
        pytest.skip(f"{path} absent (the shared real-data folder)")
    ctx = IngestContext(taxonomy, Templates(store.load_templates()), cluster="eagle")
    run_ingest(store, READERS["eagle"], str(path), ctx)
    return ToolContext(store=store, taxonomy=taxonomy)


def test_one_conclusion_per_subject_on_eagle(eagle):
    res = run_action({"action": "analyze", "as_of": "2019-01-07"}, eagle)
    assert res.status == "ok", res.error
    findings = res.data["findings"]
    recs: dict[str, set[str]] = {}
    for f in findings:
        if f.get("recommendation") and f["kind"] in ("explained", "blame", "hotspot"):
            recs.setdefault(f["subject"], set()).add(f["recommendation"])
    assert "user:user0014" in recs and "project:account0003" in recs
    for subject, texts in recs.items():
        assert len(texts) == 1, (subject, texts)  # one conclusion per subject
    text = res.text
    assert "rather than user user0014" not in text  # the contradiction is gone
    blame = {f["subject"]: f for f in findings if f["kind"] == "blame"}
    u = blame["user:user0014"]
    assert u["evidence"]["attributed_to"] == "name:name00003748"
    assert u["evidence"]["conflict"] == "project:account0003"  # stated, not silently dropped
    assert "drill-down" in u["summary"] and "account0003" in u["summary"]
    assert blame["project:account0003"]["evidence"]["path"] == [
        "project:account0003", "user:user0014", "name:name00003748"]
