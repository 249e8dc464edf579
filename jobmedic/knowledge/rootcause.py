"""Root-cause phrases: the specific thing an error text names (the missing environment
variable, the mistyped command, the unreachable host:port, the nodeSelector label nobody
matches, the insufficient resource, the missing module or library, the Xid code, ...).

Table-driven: each extractor is (failure types it explains, regex, formatter). The first
extractor for the diagnosed type that matches wins; its line is kept as evidence.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from jobmedic.core.units import UnitError, parse_mem_mb

XID_MEANING = {
    13: "graphics engine exception (often the application)", 31: "GPU memory page fault (often the application)",
    43: "GPU stopped processing", 45: "preemptive cleanup after another error",
    48: "double-bit ECC error", 61: "internal micro-controller breakpoint", 62: "internal micro-controller halt",
    63: "ECC page retirement or row remapping", 64: "ECC page retirement or row remapping failure",
    74: "NVLink error", 79: "GPU has fallen off the bus", 92: "high single-bit ECC error rate",
    94: "contained ECC error", 95: "uncontained ECC error", 119: "GSP RPC timeout", 120: "GSP error",
}
PULL_REASONS = (
    ("manifest unknown", "the tag does not exist"), ("not found", "the image or tag does not exist"),
    ("pull access denied", "the registry refused access (private image without credentials?)"),
    ("unauthorized", "the registry needs credentials (imagePullSecrets)"),
    ("toomanyrequests", "registry rate limit"), ("no such host", "the registry host does not resolve"),
    ("i/o timeout", "the registry is unreachable"),
)


@dataclass
class RootCause:
    phrase: str
    line: str
    fields: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"phrase": self.phrase, "line": self.line, **self.fields}


def _line(text: str, m: re.Match[str]) -> str:
    s = text.rfind("\n", 0, m.start()) + 1
    e = text.find("\n", m.end())
    return text[s: e if e != -1 else len(text)].strip()[:400]


def _env(m, text):
    return f"missing environment variable {m.group(1)}", {"env_var": m.group(1)}


def _secret(m, text):
    return f"missing {m.group(1)} {m.group(2)!r}", {"object": m.group(2)}


def _command(m, text):
    return f"missing command {m.group(1)!r} (not found in the image / PATH)", {"command": m.group(1)}


def _hostport(m, text):
    host, port = m.group("host"), m.group("port")
    target = f"{host}:{port}" if port else host
    return f"cannot reach {target}", {"host": host, "port": int(port) if port else None}


def _pg(m, text):
    return f"cannot reach {m.group(1)}:{m.group(2)}", {"host": m.group(1), "port": int(m.group(2))}


def _selector(m, text):
    sel = re.search(r"Node-Selectors:\s*(\S+=\S*)", text) or re.search(
        r"nodeSelector:?\s*\{?\s*['\"]?([\w./-]+)['\"]?\s*[:=]\s*['\"]?([\w./-]+)", text)
    if sel is None:
        return "no node matches the pod's nodeSelector / affinity", {}
    label = sel.group(1) if sel.lastindex == 1 else f"{sel.group(1)}={sel.group(2)}"
    return f"no node matches nodeSelector {label}", {"node_selector": label}


def _insufficient(m, text):
    res = m.group(2)
    req = re.search(rf"{re.escape(res)}:\s*(\d+)", text)
    extra = f" (the pod asks for {req.group(1)})" if req else ""
    return (f"insufficient {res}: {m.group(1)} node(s) lack it{extra}",
            {"resource": res, "requested": int(req.group(1)) if req else None})


def _module(m, text):
    return f"missing Python module {m.group(1)!r}", {"module": m.group(1)}


def _library(m, text):
    return f"missing shared library {m.group(1)}", {"library": m.group(1)}


def _xid(m, text):
    code = int(m.group("code"))
    where = f" on {m.group('pci')}" if m.group("pci") else ""
    return (f"Xid {code}{where}: {XID_MEANING.get(code, 'GPU or driver fault')}",
            {"xid": code, "pci": m.group("pci")})


def _cuda_oom(m, text):
    gpu = re.search(r"GPU (\d+)(?:; ([\d.]+ [GM]iB) total capacity)?", text)
    where = f" on GPU {gpu.group(1)}" if gpu else ""
    cap = f" ({gpu.group(2)} total)" if gpu and gpu.group(2) else ""
    return f"tried to allocate {m.group(1)}{where}{cap}", {"allocation": m.group(1)}


def _seff(m, text):
    used, unit, pct, of, of_unit = m.groups()
    return (f"MaxRSS {used} {unit} reached {float(pct):.0f}% of the {of} {of_unit} requested",
            {"max_rss": f"{used} {unit}", "requested": f"{of} {of_unit}"})


def _sacct_mem(m, text):
    return (f"MaxRSS {m.group('rss')} of ReqMem {m.group('req')}",
            {"max_rss": m.group("rss"), "requested": m.group("req")})


def _k8s_limit(m, text):
    lim = re.search(r"Limits:\s*\n(?:\s+[\w./-]+:\s*\S+\n)*?\s+memory:\s*(\S+)", text)
    where = f" of {lim.group(1)}" if lim else ""
    return f"container exceeded its memory limit{where} (OOMKilled, exit 137)", {
        "memory_limit": lim.group(1) if lim else None}


def _nccl(m, text):
    op, ms = m.group("op"), int(m.group("ms"))
    rank = re.search(r"\[Rank (\d+)\]", text)
    r = f" on rank {rank.group(1)}" if rank else ""
    return f"NCCL {op} timed out after {ms // 1000} s{r}", {"op": op, "timeout_s": ms // 1000}


def _pull(m, text):
    image = m.group(1)
    low = text.lower()
    why = next((w for k, w in PULL_REASONS if k in low), "the pull failed")
    return f"image {image}: {why}", {"image": image}


def _quota(m, text):
    path = m.group(1)
    return (f"disk quota exceeded{f' writing {path}' if path else ''}", {"path": path})


Extractor = tuple[frozenset[str], re.Pattern[str], Callable[[re.Match[str], str], tuple[str, dict]]]
_X: list[Extractor] = [
    (frozenset({"config_error", "crash_loop"}), re.compile(
        r"\b([A-Z][A-Z0-9_]{2,})\b(?:\s+environment variable)?\s+(?:is\s+)?(?:not set|missing|undefined|required)"), _env),
    (frozenset({"config_error", "crash_loop"}), re.compile(
        r"environment variable [\"']?([A-Za-z_][A-Za-z0-9_]*)[\"']? (?:is )?(?:not set|missing|undefined)"), _env),
    (frozenset({"config_error", "crash_loop"}), re.compile(r"KeyError: '([A-Z][A-Z0-9_]{2,})'"), _env),
    (frozenset({"config_error", "crash_loop"}), re.compile(r'(secret|configmap) "([^"]+)" not found'), _secret),
    (frozenset({"config_error", "crash_loop", "dependency_error"}), re.compile(
        r'exec: "([^"]+)": executable file not found'), _command),
    (frozenset({"config_error", "crash_loop", "dependency_error"}), re.compile(
        r"(?:^|[\s:])([\w./+-]+): (?:command )?not found\s*$", re.MULTILINE), _command),
    (frozenset({"network_error"}), re.compile(
        r'host "([\w.\-]+)"[^\n]*\n?[^\n]*?port (\d+)'), _pg),
    (frozenset({"network_error"}), re.compile(
        r"(?:dial tcp|connect to|connecting to|on|reach|to) '?(?P<host>[A-Za-z0-9][\w.\-]*):(?P<port>\d{2,5})'?"), _hostport),
    (frozenset({"network_error"}), re.compile(
        r"(?:could not translate host name|Could not resolve host:?|getaddrinfo \w+ for) \"?(?P<host>[\w.\-]+)\"?(?P<port>)"), _hostport),
    (frozenset({"scheduling"}), re.compile(r"didn't match (?:Pod's )?node (?:affinity|selector)"), _selector),
    (frozenset({"scheduling"}), re.compile(r"(\d+) Insufficient ([\w/-]+(?:\.[\w/-]+)*)"), _insufficient),
    (frozenset({"dependency_error"}), re.compile(r"No module named '?([\w.]+)'?"), _module),
    (frozenset({"dependency_error"}), re.compile(r"(lib[\w.+-]+\.so[\w.]*): cannot open shared object file"), _library),
    (frozenset({"gpu_error"}), re.compile(r"Xid (?:\((?P<pci>[^)]*)\))?:? ?(?P<code>\d+)"), _xid),
    (frozenset({"oom"}), re.compile(r"Tried to allocate ([\d.]+ ?[KMGT]iB)"), _cuda_oom),
    (frozenset({"oom"}), re.compile(
        r"Memory Utilized: ([\d.]+) ([KMGT]B)\s*\n\s*Memory Efficiency: ([\d.]+)% of ([\d.]+) ([KMGT]B)"), _seff),
    (frozenset({"oom"}), re.compile(r"MaxRSS[ =:]+(?P<rss>[\d.]+[KMGT]?)\b.*?ReqMem[ =:]+(?P<req>[\d.]+[KMGT]?)"), _sacct_mem),
    (frozenset({"oom"}), re.compile(r"Reason:\s+OOMKilled"), _k8s_limit),
    (frozenset({"nccl_error"}), re.compile(r"OpType=(?P<op>\w+).*?ran for (?P<ms>\d+) milliseconds"), _nccl),
    (frozenset({"image_pull"}), re.compile(r'(?:Back-off pulling|Failed to pull|pulling) image "([^"]+)"'), _pull),
    (frozenset({"disk_quota"}), re.compile(r"(?:Disk quota exceeded|No space left on device):? ?'?([/~][^'\s]*)?"), _quota),
]


def root_cause(failure_type: str, text: str | None) -> RootCause | None:
    """The most specific cause the text names for this failure type (None when it names none)."""
    if not text:
        return None
    if failure_type == "oom" and "MaxRSS" in text:
        table = sacct_table_memory(text)
        if table:
            rss, req = table[0], table[1]
            pct = 100 * (_mem_mb(rss) or 0) / (_mem_mb(req) or 1)
            return RootCause(f"MaxRSS {rss} reached {pct:.0f}% of the {req} requested (ReqMem)",
                             table[2], {"max_rss": rss, "requested": req})
    for codes, rx, fmt in _X:
        if failure_type not in codes:
            continue
        m = rx.search(text)
        if m:
            phrase, fields = fmt(m, text)
            return RootCause(phrase, _line(text, m), {k: v for k, v in fields.items() if v is not None})
    return None


def _mem_mb(v: str) -> float | None:
    """A pasted sacct size (ReqMem, MaxRSS: Slurm's binary units; bare numbers are bytes)."""
    try:
        return parse_mem_mb(v, "slurm", default_unit="B")
    except UnitError:
        return None


def _fixed_width(line: str, spans: list[tuple[int, int]]) -> list[str]:
    """Cells of a fixed-width row: per column, the token overlapping its span the most
    (tolerates values that spill over a column edge after copy and paste)."""
    toks = [(m.start(), m.end(), m.group()) for m in re.finditer(r"\S+", line)]
    out = []
    for a, b in spans:
        best = max(toks, key=lambda t: min(b, t[1]) - max(a, t[0]), default=None)
        out.append(best[2] if best and min(b, best[1]) - max(a, best[0]) > 0 else "")
    return out


def sacct_table_memory(text: str) -> tuple[str, str, str] | None:
    """(MaxRSS, ReqMem, header line) from a pasted sacct table ('|'-separated, or fixed width
    with its dashes line) that has both columns; MaxRSS is the largest over the steps."""
    lines = text.splitlines()
    for i, head in enumerate(lines[:200]):
        if "MaxRSS" not in head or "ReqMem" not in head:
            continue
        if "|" in head:
            cols = [c.strip() for c in head.split("|")]
            rows = [[c.strip() for c in ln.split("|")] for ln in lines[i + 1:] if "|" in ln]
        elif i + 1 < len(lines) and re.fullmatch(r"[- ]+", lines[i + 1].strip() or "x"):
            spans = [(m.start(), m.end()) for m in re.finditer(r"-+", lines[i + 1])]
            cols = [head[a:b].strip() for a, b in spans]
            rows = [_fixed_width(ln, spans) for ln in lines[i + 2:] if ln.strip()]
        else:
            continue
        if "MaxRSS" not in cols or "ReqMem" not in cols:
            continue
        ri, qi = cols.index("MaxRSS"), cols.index("ReqMem")
        rss = [r[ri] for r in rows if len(r) > ri and _mem_mb(r[ri]) is not None]
        req = [r[qi] for r in rows if len(r) > qi and _mem_mb(r[qi]) is not None]
        if rss and req:
            return max(rss, key=lambda v: _mem_mb(v) or 0), req[0], head.strip()
    return None


#: Codes that name a symptom rather than a cause: a more specific match in the text wins.
SYMPTOMS = frozenset({"crash_loop", "app_error", "unknown"})


def classify_deep(taxonomy: Any, text: str, state: str | None = None) -> tuple[Any, str | None, list[str]]:
    """Classify a failure's text like diagnose reads a paste (jobmedic.knowledge.readout: line
    rules, root cause before consequence, the classifier), with its state or reason first when
    that names a cause. Returns (classification, symptom code or None, evidence lines: the
    deciding line first)."""
    from jobmedic.knowledge.readout import read_text
    from jobmedic.knowledge.taxonomy import Classification

    by_state = taxonomy.classify(state, None, None, None) if state else None
    if by_state is not None and by_state.failure_type not in SYMPTOMS | {"cancelled"}:
        return by_state, None, [by_state.evidence] if by_state.evidence else []
    rd = read_text(taxonomy, text) if text else None
    if rd is None or rd.failure_type == "unknown":
        c = by_state or Classification("unknown", taxonomy.blame_of("unknown"), "none", None)
        return c, None, [c.evidence] if c.evidence else []
    c = Classification(rd.failure_type, taxonomy.blame_of(rd.failure_type), rd.rule,
                       rd.evidence[0] if rd.evidence else None)
    symptom = rd.symptom
    if by_state is not None and by_state.failure_type in SYMPTOMS and \
            by_state.failure_type != rd.failure_type:
        symptom = by_state.failure_type
    return c, symptom, list(rd.evidence)
