"""`jobmedic demo` end to end on a small history (training left to its own tests)."""
from __future__ import annotations

from rich.console import Console
from typer.testing import CliRunner

from jobmedic.demo.run import run_demo
from jobmedic.main import app


def test_demo_runs_the_conversation_on_the_ingested_store(tmp_path, taxonomy):
    out = Console(record=True, width=100, file=open(tmp_path / "out.txt", "w"))  # noqa: SIM115
    res = run_demo(taxonomy, directory=str(tmp_path / "demo"), days=5, anchor="2025-11-23",
                   train=False, console=out)
    text = out.export_text()
    assert (tmp_path / "demo" / "sacct.txt").exists() and (tmp_path / "demo" / "pods.json").exists()
    assert res["answers"], res["missing"]
    assert len(res["answers"]) >= 6
    for a in res["answers"]:
        assert a["question"][:40] in text
        assert a["calls"], a
        assert "Actions run" in a["answer"]
    actions = [c["action"] for a in res["answers"] for c in a["calls"]]
    assert {"analyze", "remediate", "diagnose", "predict", "record_outcome"} <= set(actions)
    first = res["answers"][0]
    assert first["calls"][0]["status"] == "ok"
    assert "gpu07" in first["answer"]  # the failing node is found
    assert "jobmedic sync slurm" in text and "jobmedic ingest kubernetes" in text
    assert "chat" in text
    assert not [m for m in res["missing"] if "reader" in m or "assistant" in m]


def test_demo_command_help_and_bad_anchor(tmp_path):
    r = CliRunner().invoke(app, ["demo", "--dir", str(tmp_path), "--anchor", "not-a-date",
                                 "--no-train"])
    assert r.exit_code != 0
    assert "anchor" in (r.output + str(r.exception))
