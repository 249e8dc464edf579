"""The periodic report (`jobmedic report`) as self-contained HTML or Markdown.

It renders the envelopes the actions return (stats with its daily trend, analyze, remediate
for the leading failure types) and the open alerts, so every number in the report is a number
an action answered. Charts are drawn by matplotlib into inline SVG: the page needs no network
and no script to view.
"""
from __future__ import annotations

import html
import io
from typing import Any

TOP = 8


def _rows(env: dict[str, Any], by: str) -> list[dict[str, Any]]:
    """The rows of one grouping from whichever stats envelope holds it (stats takes at most
    three groupings per request, so the report asks twice)."""
    for key in ("stats", "stats_more"):
        for g in env.get(key, {}).get("data", {}).get("groups", []):
            if g.get("by") == by:
                return g.get("rows", [])[:TOP]
    return []


def _key(k: Any) -> str:
    return "(not set)" if k is None else str(k)  # e.g. the image of a batch job


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def sections(env: dict[str, Any]) -> list[tuple[str, list[str], list[list[str]]]]:
    """(title, header, rows) of every table, shared by the HTML and Markdown renderings."""
    stats, analyze = env["stats"], env["analyze"]
    out = []
    t = stats.get("data", {}).get("totals", {})
    out.append(("Summary", ["jobs", "failures", "failure rate", "users affected",
                            "GPU hours lost", "core hours lost"],
                [[f"{t.get('jobs', 0):,}", f"{t.get('failures', 0):,}",
                  _pct(t.get("failure_rate")), f"{t.get('users_affected', 0):,}",
                  f"{t.get('gpu_h_lost', 0):,}", f"{t.get('core_h_lost', 0):,}"]]))
    out.append(("Failure rate by day", ["day", "jobs", "failures", "rate"],
                [[d["day"], f"{d['jobs']:,}", f"{d['failures']:,}", _pct(d.get("rate"))]
                 for d in stats.get("data", {}).get("trend", [])]))
    for by, title in (("failure_type", "Failures by type"), ("user", "Top failing users"),
                      ("project", "Top failing projects"), ("image", "Top failing images"),
                      ("node", "Top failing nodes")):
        rows = _rows(env, by)
        if rows:
            out.append((title, [by.replace("_", " "), "failures", "jobs", "failure rate"],
                        [[_key(r["key"]), f"{r['failures']:,}", f"{r.get('jobs', 0):,}",
                          _pct(r.get("rate"))] for r in rows]))
    hot = [f for f in analyze.get("data", {}).get("findings", [])
           if f.get("kind") == "hotspot" or f.get("analyzer") == "hotspots"]
    out.append(("Hotspots", ["subject", "severity", "failure rate (95% interval)", "summary"],
                [[f["subject"], f["severity"], _interval(f.get("evidence", {})), f["summary"]]
                 for f in hot]))
    fixes = []
    for rem in env.get("remediate", []):
        d = rem.get("data", {})
        for fx in d.get("fixes", []):
            if fx.get("attempts"):
                fixes.append([d.get("failure_type", ""), fx.get("title", ""),
                              f"{fx.get('successes', 0)}/{fx['attempts']}",
                              _pct(fx.get("success_rate"))])
    out.append(("Fixes that worked", ["failure type", "fix", "worked / tried", "success rate"],
                fixes))
    out.append(("Open alerts", ["id", "severity", "rule", "subject", "text"],
                [[str(a["id"]), a["severity"], a["rule"], a["subject"], a["text"]]
                 for a in env.get("alerts", [])]))
    return out


def _interval(ev: dict[str, Any]) -> str:
    rate = ev.get("rate")
    lo, hi = ev.get("ci_low", ev.get("rate_low")), ev.get("ci_high", ev.get("rate_high"))
    if rate is None:
        return "-"
    return f"{_pct(rate)} ({_pct(lo)}-{_pct(hi)})" if lo is not None and hi is not None \
        else _pct(rate)


def _svg(fig: Any) -> str:
    buf = io.StringIO()
    # no <metadata> block (its RDF namespace URLs and the matplotlib.org link): the page
    # names nothing outside itself
    fig.savefig(buf, format="svg", bbox_inches="tight",
                metadata={"Creator": None, "Date": None, "Format": None, "Type": None})
    import matplotlib.pyplot as plt

    plt.close(fig)
    text = buf.getvalue()
    svg = text[text.index("<svg"):]
    # inline SVG in HTML needs no namespace declarations (the HTML parser knows svg and xlink)
    for decl in (' xmlns:xlink="http://www.w3.org/1999/xlink"',
                 ' xmlns="http://www.w3.org/2000/svg"'):
        svg = svg.replace(decl, "", 1)
    return svg


def charts(env: dict[str, Any]) -> dict[str, str]:
    """Inline SVG charts: failure rate over time, failures by type, top users and projects."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return {}
    plt.rcParams["svg.hashsalt"] = "jobmedic"  # the same data draws the same SVG
    out = {}
    trend = env["stats"].get("data", {}).get("trend", [])
    if trend:
        fig, ax = plt.subplots(figsize=(7, 2.6))
        ax.plot([d["day"][5:] for d in trend], [float("nan") if d.get("rate") is None else 100 * d["rate"] for d in trend],
                marker="o", color="#c0392b")
        ax.set_ylabel("failure rate (%)")
        rates = [100 * d["rate"] for d in trend if d.get("rate") is not None]
        ax.set_ylim(0, max(rates, default=0) * 1.15 + 1)  # room above the highest point
        ax.tick_params(axis="x", labelrotation=45, labelsize=8)
        ax.grid(alpha=0.3)
        out["Failure rate by day"] = _svg(fig)
    for by, title in (("failure_type", "Failures by type"), ("user", "Top failing users"),
                      ("project", "Top failing projects")):
        rows = _rows(env, by)
        if not rows:
            continue
        fig, ax = plt.subplots(figsize=(7, 0.35 * len(rows) + 0.8))
        ax.barh([_key(r["key"]) for r in rows][::-1], [r["failures"] for r in rows][::-1],
                color="#2e86c1")
        ax.set_xlabel("failures")
        out[title] = _svg(fig)
    return out


def render_markdown(env: dict[str, Any]) -> str:
    w = env["stats"].get("data", {}).get("window", {})
    lines = [f"# jobmedic report: {w.get('start', '?')} to {w.get('end', '?')}", ""]
    if env.get("scope"):
        lines += [f"Projects: {', '.join(env['scope'])}", ""]
    for title, head, rows in sections(env):
        lines += [f"## {title}", ""]
        if not rows:
            lines += ["(none)", ""]
            continue
        lines.append("| " + " | ".join(head) + " |")
        lines.append("|" + "---|" * len(head))
        lines += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows]
        lines.append("")
    return "\n".join(lines)


_CSS = """body{font-family:system-ui,sans-serif;margin:2em auto;max-width:960px;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:.25em .6em;
text-align:left;font-size:.9em}th{background:#f3f3f3}h1{font-size:1.5em}h2{font-size:1.15em;
margin-top:1.6em}.chart svg{max-width:100%;height:auto}.none{color:#888}"""


def render_html(env: dict[str, Any]) -> str:
    w = env["stats"].get("data", {}).get("window", {})
    e = html.escape
    svgs = charts(env)
    parts = ["<!doctype html><html><head><meta charset='utf-8'>",
             "<link rel='icon' href='data:,'>",  # no favicon request either
             f"<title>jobmedic report {e(str(w.get('start', '')))}</title>",
             f"<style>{_CSS}</style></head><body>",
             (f"<h1>jobmedic report: {e(str(w.get('start', '?')))} to "
              f"{e(str(w.get('end', '?')))}</h1>")]
    if env.get("scope"):
        parts.append(f"<p>Projects: {e(', '.join(env['scope']))}</p>")
    for title, head, rows in sections(env):
        parts.append(f"<h2>{e(title)}</h2>")
        if title in svgs:
            parts.append(f"<div class='chart'>{svgs[title]}</div>")
        if not rows:
            parts.append("<p class='none'>(none)</p>")
            continue
        parts.append("<table><tr>" + "".join(f"<th>{e(h)}</th>" for h in head) + "</tr>")
        parts += ["<tr>" + "".join(f"<td>{e(c)}</td>" for c in r) + "</tr>" for r in rows]
        parts.append("</table>")
    parts.append("<p class='none'>Generated by jobmedic from the stats, analyze and remediate "
                 "actions; the numbers are theirs.</p></body></html>")
    return "\n".join(parts)
