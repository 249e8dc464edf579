"""Model cards as markdown: the evaluation window, counts, the model's metrics and the
baselines measured on the same rows, so a reader can judge the model at a glance."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jobmedic.models import registry


def card_markdown(res: Mapping[str, Any]) -> str:
    m = res.get("metrics", {})
    lines = [f"## {res['kind']} model {res.get('version')}", "",
             f"Train window: {res.get('train_window')}", f"Test window: {res.get('test_window')}"]
    on = res.get("trained_on") or {}
    if on.get("clusters"):
        lines.append("Trained on: " + ", ".join(
            f"{c} ({v['jobs']} jobs" + (f", {v['positives']} failed)" if "positives" in v else ")")
            for c, v in on["clusters"].items()))
    if res.get("warning"):
        lines.append(f"**Warning:** {res['warning']}")
    lines.append("")
    lines += registry.kind(res["kind"]).card_lines(m)
    return "\n".join(lines)
