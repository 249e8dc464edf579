"""sstat --parsable2 polls: the parser the live poller calls (units, steps, array tasks,
poll times) and `jobmedic ingest sstat` on saved polls, with rejects and refusals."""
from __future__ import annotations

import pytest

from jobmedic.ingest import READERS, IngestContext, run_ingest
from jobmedic.ingest.sstat import SSTAT_FIELDS, parse_sstat, split_job_step, sstat_command
from jobmedic.knowledge.errors import InputError
from jobmedic.knowledge.templates import Templates
from tests.conftest import FIXTURES

POLLS = FIXTURES / "telemetry" / "sstat_polls.txt"
T0, T1 = 1772445600, 1772445630  # 2026-03-02T10:00:00Z and 10:00:30Z


def ingest(store, taxonomy, path, **kw):
    ctx = IngestContext(taxonomy, Templates(store.load_templates()), **kw)
    return run_ingest(store, READERS["sstat"], str(path), ctx)


def by_key(samples):
    return {(s[1], s[3], s[4], s[5]): s for s in samples}


def test_parse_one_poll():
    text = POLLS.read_text().splitlines()[1:6]  # the header and 4 rows of the first poll
    samples, rejects = parse_sstat(text, 1234, "c")
    assert rejects == []
    k = by_key(samples)
    batch = k[("4211", "batch", "mem_max_rss_bytes", 1234)]
    assert batch == ("c", "4211", "c101", "batch", "mem_max_rss_bytes", 1234, 2113468 * 1024.0,
                     "sstat")
    assert k[("4211", "0", "mem_ave_rss_bytes", 1234)][6] == 4178142 * 1024.0
    assert k[("4211", "0", "mem_max_rss_bytes", 1234)][2] == "c102"  # MaxRSSNode
    assert k[("4211", "0", "cpu_time_ave_s", 1234)][6] == 602.0
    assert k[("4211", "batch", "disk_read_max_bytes", 1234)][6] == pytest.approx(10.52 * 2**20)
    assert k[("4211", "extern", "disk_read_max_bytes", 1234)][6] == 2012.0  # bare = bytes
    assert k[("4213_7", "batch", "mem_max_rss_bytes", 1234)][6] == 512 * 2**20
    assert k[("4213_7", "batch", "cpu_time_ave_s", 1234)][6] == 3723.0
    assert k[("4213_7", "batch", "vmem_max_bytes", 1234)][6] == 2**30


def test_parse_noheader_and_refusal():
    rows = POLLS.read_text().splitlines()[3:5]
    samples, _ = parse_sstat(rows, 5, "c")  # 13 columns: the default format
    assert {s[1] for s in samples} == {"4211"}
    samples, _ = parse_sstat(["4215.0|1024K"], 5, "c", fields=["JobID", "MaxRSS"])
    assert samples == [("c", "4215", "", "0", "mem_max_rss_bytes", 5, 1024 * 1024.0, "sstat")]
    with pytest.raises(InputError, match="not sstat"):
        parse_sstat(["JobID,MaxRSS", "1,2"], 5, "c")
    with pytest.raises(InputError, match="not sstat"):
        parse_sstat(["# nothing here"], 5, "c")


def test_command_and_ids():
    cmd = sstat_command(["4211", "4213_7"])
    assert cmd[:5] == ["sstat", "--parsable2", "-a", "-j", "4211,4213_7"]
    assert cmd[5] == "--format=" + ",".join(SSTAT_FIELDS)
    assert split_job_step("4213_7.batch") == ("4213_7", "batch")
    assert split_job_step("4211") == ("4211", "")


def test_ingest_saved_polls(store, taxonomy):
    s = ingest(store, taxonomy, POLLS, cluster="c")
    assert (s.samples, s.rejected, s.status) == (2 * 3 * 11 + 11, 2, "partial")  # 11 metrics a row
    rss = store.job_samples("4211", metric="mem_max_rss_bytes")
    assert [(r["node"], r["device"], r["t"]) for r in rss] == [  # by node, step, time
        ("c101", "batch", T0), ("c101", "batch", T1), ("c101", "extern", T0),
        ("c101", "extern", T1), ("c102", "0", T0), ("c102", "0", T1)]
    assert rss[5]["value"] == 9404860 * 1024.0
    cpu = store.job_samples("4211", metric="cpu_time_ave_s")
    assert [r["value"] for r in cpu if r["device"] == "batch"] == [83.0, 113.0]
    rej = {r["line"]: r["reason"] for r in store.recent_rejects()}
    assert "MaxRSS" in rej[12] and "expected 13" in rej[13]
    # the unreadable second poll of 4213_7 wrote nothing for that poll
    assert {r["t"] for r in store.job_samples("4213_7")} == {T0}
    assert ingest(store, taxonomy, POLLS, cluster="c").samples == 0  # idempotent


def test_ingest_refuses_other_text(store, taxonomy):
    with pytest.raises(InputError, match="not sstat"):
        ingest(store, taxonomy, FIXTURES / "eagle_excerpt.csv")
