"""docs/cli.md is generated from the commands' help and must be current."""
from __future__ import annotations

from pathlib import Path

from jobmedic.docgen import main, render
from jobmedic.main import build

DOC = Path(__file__).resolve().parents[2] / "docs" / "cli.md"


def test_reference_lists_every_command_and_option():
    text = render()
    root = build()
    for name, cmd in root.commands.items():
        assert f"## `jobmedic {name}`" in text
        for p in cmd.params:
            for opt in getattr(p, "opts", []):
                if opt.startswith("--") and not getattr(p, "hidden", False):
                    assert opt in text, f"{name} {opt}"
    assert "`--hash-token TOKEN`" in text


def test_check_mode(tmp_path):
    target = tmp_path / "cli.md"
    assert main([str(target)]) == 0
    assert main([str(target), "--check"]) == 0
    target.write_text("stale", encoding="utf-8")
    assert main([str(target), "--check"]) == 1


def test_committed_reference_is_current():
    """The committed docs/cli.md is exactly what the commands generate (`make docs`)."""
    assert DOC.read_text(encoding="utf-8") == render(), "docs/cli.md is out of date: run `make docs`"
    assert main([str(DOC), "--check"]) == 0
