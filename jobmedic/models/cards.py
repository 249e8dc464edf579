"""Model cards as markdown: the evaluation window, counts, the model's metrics and the
baselines measured on the same rows, so a reader can judge the model at a glance."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return "—" if v is None else str(v)


def _table(rows: Mapping[str, Mapping[str, Any]], cols: list[str]) -> list[str]:
    out = ["| | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for name, r in rows.items():
        out.append(f"| {name} | " + " | ".join(_fmt(r.get(c)) for c in cols) + " |")
    return out


def card_markdown(res: Mapping[str, Any]) -> str:
    m = res.get("metrics", {})
    lines = [f"## {res['kind']} model {res.get('version')}", "",
             f"Train window: {res.get('train_window')}", f"Test window: {res.get('test_window')}"]
    if res.get("warning"):
        lines.append(f"**Warning:** {res['warning']}")
    lines.append("")
    if res["kind"] in ("failure", "gnn"):
        rows = {k: v for k, v in m.items() if isinstance(v, dict)}
        lines += _table(rows, ["n", "positives", "base_rate", "auroc", "auprc", "brier", "ece",
                               "recall_at_1pct_fpr"])
        if m.get("auprc_over_best_baseline") is not None:
            lines += ["", f"AUPRC / best online-history baseline: {m['auprc_over_best_baseline']:.3f}"]
    elif res["kind"] == "runtime":
        rows = {k: v for k, v in m.items() if isinstance(v, dict) and "mae" in v}
        lines += _table(rows, ["mae", "median_ae"]) + ["", f"(hours; n = {m.get('n')})"]
        lines += ["", f"Coverage per quantile: {m['model'].get('coverage')}",
                  f"Walltime recommendation: {m.get('walltime_recommendation')}"]
    else:
        rows = {k: v for k, v in m.items() if isinstance(v, dict) and "under_allocated_share" in v}
        lines += _table(rows, ["n", "under_allocated_share", "over_allocated_gb_per_job",
                               "total_allocated_over_used", "asymmetric_cost_gb_per_job"])
        lines += ["", f"Median: {m['model']}"]
    return "\n".join(lines)
