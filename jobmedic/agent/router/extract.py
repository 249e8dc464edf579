"""Argument extraction: the window, the names (resolved against the store's vocabulary), the
failure type, job references, resource sizes, stats dimensions and a fix's outcome.

Names the store does not know, or that fit several known names, are reported rather than
guessed, so the router can ask back with the closest known names.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from jobmedic.agent.router import sizes
from jobmedic.agent.router.lexicon import COMMON, DOMAIN, FAILURE_RX, GROUP_LOOKUP
from jobmedic.agent.router.times import TimeSpec, parse_time
from jobmedic.agent.router.vocabulary import KINDS, Vocabulary

TOKEN = re.compile(r"[A-Za-z0-9][\w.\-/:@]*[A-Za-z0-9]|[A-Za-z0-9]")
STRONG_BEFORE = {"project": "project", "proj": "project", "account": "project", "acct": "project",
                 "namespace": "project", "ns": "project", "team": "project", "node": "node",
                 "host": "node", "hostname": "node", "machine": "node", "server": "node",
                 "user": "user", "username": "user", "partition": "queue", "queue": "queue",
                 "image": "image", "container": "image", "cluster": "cluster", "-a": "project",
                 "-p": "queue", "-u": "user", "-w": "node", "--account": "project",
                 "--partition": "queue", "--nodelist": "node"}
STRONG_AFTER = {"partition": "queue", "queue": "queue", "node": "node", "project": "project",
                "team": "project", "namespace": "project", "image": "image", "cluster": "cluster",
                "account": "project"}
WEAK_BEFORE = {"in", "on", "for", "at", "from", "of", "about", "with", "using"}
PRIORITY = {k: i for i, k in enumerate(("project", "user", "node", "queue", "image", "cluster"))}
RX_JOB = re.compile(r"(?:\bjob(?:\s*id)?|\bjobid|\bjob_id|\bid|\bpod|\bworkload|\bslurm job|#)\s*[:#=]?\s*#?"
                    r"([A-Za-z0-9][\w.\-]*[A-Za-z0-9]|\d)", re.IGNORECASE)
RX_BARE_ID = re.compile(r"(?<![\w.\-/:])(\d{3,}(?:_\d+)?(?:\.\w+)?)(?![\w\-/:]|\s*(?:%|gb?|mb?|gi|mi|"
                        r"tb?|cores?|cpus?|gpus?|nodes?|hours?|hrs?|h|days?|d|min|minutes?|jobs?|"
                        r"failures?|x)\b)", re.IGNORECASE)
RX_POS = re.compile(r"\b(?:fixed|fixes it|worked|works now|work(?:s|ed)? fine|solved|resolved|did the "
                    r"trick|helped|sorted (?:it|things)|was the fix|succeeded|successful(?:ly)?|runs "
                    r"(?:fine|ok) now|it runs now|passe[sd]|went through|completed fine|success)\b", re.IGNORECASE)
RX_NEG = re.compile(r"\b(?:didn'?t|did not|doesn'?t|does not|don'?t|wasn'?t|was not|hasn'?t|has not|"
                    r"won'?t|never) (?:work|help|fix|solve|do anything|change anything|the fix|the trick)"
                    r"\w*|\bno luck\b|\bstill (?:fail\w*|crash\w*|oom\w*|broken|dies|dying|dead|"
                    r"timing out|times out|getting)|\bnot fixed\b|\bfailed again\b|\bmade no difference\b|"
                    r"\bno (?:difference|improvement)\b|\buseless\b|\bsame (?:error|failure|problem)\b|"
                    r"\bnope\b|\bdid nothing\b|\bdidn'?t\b", re.IGNORECASE)
_GW = r"(failure types?|error types?|time of day|[a-z]+)"
RX_GROUP = re.compile(rf"\b(?:by|per|for each|each|group(?:ed)? by|split by|broken down by|break ?down "
                      rf"(?:by|of)|breakdown (?:by|of)|across)\s+(?:the\s+)?{_GW}(?:\s*(?:,|and|&)\s*{_GW})?"
                      rf"(?:\s*(?:,|and|&)\s*{_GW})?\b|\b(daily|hourly)\b|"
                      r"\b(?:top|worst|which|what|most)\s+(?:\d+\s+)?(?:common\s+|frequent\s+|failing\s+|"
                      r"affected\s+|problematic\s+|broken\s+)?(?:failure\s+|error\s+)?(nodes|users|images|"
                      r"projects|teams|partitions|queues|hosts|containers|clusters|namespaces|accounts|"
                      r"node|user|image|project|partition|queue|types|reasons|causes)\b|"
                      r"\bmost (?:common|frequent)\s+(errors?|failures?|problems?|issues?)\b",
                      re.IGNORECASE)
RX_TOP = re.compile(r"\btop[- ](\d{1,3})\b", re.IGNORECASE)
RX_FLAGS = re.compile(r"(?:^|\s)(-p|--partition|-A|--account|-w|--nodelist|-u|--user)[= ]\s*([\w.\-]+)")
FLAG_KIND = {"-p": "queue", "--partition": "queue", "-A": "project", "--account": "project",
             "-w": "node", "--nodelist": "node", "-u": "user", "--user": "user"}


@dataclass
class Entities:
    time: TimeSpec | None = None
    names: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    unknown: list[tuple[str, str | None, list[str]]] = field(default_factory=list)
    ambiguous: list[tuple[str, list[str]]] = field(default_factory=list)
    failure_type: str | None = None
    jobs: list[str] = field(default_factory=list)
    group_by: list[str] = field(default_factory=list)
    sizes: dict[str, Any] = field(default_factory=dict)
    success: bool | None = None
    top: int | None = None
    guessed: list[str] = field(default_factory=list)  # kinds read from a partial or typo match

    def any_filter(self) -> bool:
        return bool(self.names or self.time)


def failure_type_of(text: str) -> tuple[str | None, tuple[int, int] | None]:
    best: tuple[int, str, tuple[int, int]] | None = None
    for code, rx in FAILURE_RX:
        m = rx.search(text)
        if m and (best is None or m.start() < best[0]):
            best = (m.start(), code, m.span())
    return (best[1], best[2]) if best else (None, None)


def outcome_of(text: str) -> bool | None:
    if RX_NEG.search(text):
        return False
    return True if RX_POS.search(text) else None


def group_by_of(text: str) -> list[str]:
    out: list[str] = []
    for m in RX_GROUP.finditer(text):
        for word in (w for w in m.groups() if w):
            word = {"daily": "day", "hourly": "hour"}.get(word.lower(), word.lower())
            dim = GROUP_LOOKUP.get(word) or GROUP_LOOKUP.get(word.rstrip("s"))
            if dim and dim not in out:
                out.append(dim)
    return out[:3]


def extract(text: str, vocab: Vocabulary, now: int,
            find_jobs: Callable[[list[str]], dict[str, str]] | None = None) -> Entities:
    """Every argument the question carries, names resolved against `vocab`."""
    low = text.lower()
    ent = Entities(time=parse_time(low, now))
    ent.failure_type, fspan = failure_type_of(low)
    ent.success = outcome_of(low)
    ent.group_by = group_by_of(low)
    ent.sizes = {k: v for k, v in (("req_mem_mb", sizes.memory_mb(text)), ("req_gpus", sizes.gpus(low)),
                                   ("req_cpus", sizes.cpus(low)), ("n_nodes", sizes.nodes(low)))
                 if v is not None}
    m = RX_TOP.search(text)
    if m:
        ent.top = int(m[1])
    skip = [ent.time.span] if ent.time else []
    if fspan:
        skip.append(fspan)
    skip += [m.span() for m in sizes.RX_GPU.finditer(text)]
    flags = {m[2]: FLAG_KIND[m[1]] for m in RX_FLAGS.finditer(text)}
    toks = [(m.group(0), m.start(), m.end()) for m in TOKEN.finditer(text)]
    job_tokens = _job_refs(text, skip)
    leftovers: list[str] = []
    used_cues: set[int] = set()
    for i, (tok, s, e) in enumerate(toks):
        if any(a <= s < b for a, b in skip) or tok in job_tokens:
            continue
        prev = toks[i - 1][0].lower() if i and i - 1 not in used_cues and \
            not re.search(r"[?.,;!:()]", text[toks[i - 1][2]:s]) else ""
        nxt = toks[i + 1][0].lower() if i + 1 < len(toks) and \
            not re.search(r"[?.,;!:()]", text[e:toks[i + 1][1]]) else ""
        after_cue = bool(STRONG_AFTER.get(nxt) and not flags.get(tok) and not STRONG_BEFORE.get(prev))
        possessive = text[e:e + 2] in ("'s", "\u2019s")
        strong = flags.get(tok) or STRONG_BEFORE.get(prev) or STRONG_AFTER.get(nxt) or \
            ("user" if possessive else None)
        weak = prev in WEAK_BEFORE
        lowtok = tok.lower()
        if lowtok in COMMON and not strong and not (weak and lowtok in DOMAIN and nxt not in (
                "node", "nodes", "job", "jobs", "memory", "error", "errors")):
            continue
        if _is_size_or_number(tok):
            continue
        kinds = (strong,) if strong else KINDS
        if lowtok in COMMON:  # a common word after a cue ("node in ...") names only itself
            exact = vocab.exact(tok, kinds, normalise=False)
        else:
            exact = vocab.exact(tok, kinds)
        if after_cue and lowtok not in COMMON:
            used_cues.add(i + 1)  # "the dgx node healthy": "node" names dgx, not "healthy"
        if exact:
            exact.sort(key=lambda m: PRIORITY[m.kind])
            ent.names.setdefault(exact[0].kind, exact[0].name)
            continue
        if lowtok in COMMON:
            continue
        namelike = bool(re.search(r"[\d_\-./:]", tok)) or len(tok) >= 4
        if not (strong or weak or namelike):
            continue
        fz = vocab.fuzzy(tok, kinds, cutoff=0.6 if strong else 0.8,
                         min_prefix=2 if (strong or weak) else 3)
        if fz:
            best = fz[0]
            rivals = [m for m in fz[1:] if m.name != best.name and m.score >= best.score - 0.05]
            if rivals:
                ent.ambiguous.append((tok, [best.name] + [m.name for m in rivals][:4]))
            elif best.kind not in ent.names:
                ent.names[best.kind] = best.name
                ent.guessed.append(best.kind)
                ent.notes.append(f"I read '{tok}' as {best.kind} {best.name}.")
            continue
        leftovers.append(tok)
        if strong or (weak and (re.search(r"[\d_\-]", tok) or (tok[:1].isupper() and lowtok not in DOMAIN))) \
                or re.fullmatch(r"[a-z]+(?:[-_][a-z]+)+", lowtok):
            ent.unknown.append((tok, strong, vocab.closest(tok, (strong,) if strong else KINDS)))
    ent.jobs = list(job_tokens)
    refs = find_jobs([t for t in leftovers if not t.isdigit()]) if (find_jobs and leftovers) else {}
    for tok in leftovers:
        if tok in refs or (looks_like_job_name(tok) and not any(u[0] == tok and u[1] for u in ent.unknown)):
            if tok not in ent.jobs:
                ent.jobs.append(tok)
            ent.unknown = [u for u in ent.unknown if u[0] != tok]
    return ent


def looks_like_job_name(tok: str) -> bool:
    """A Kubernetes-style workload or pod name: lower-case words and numbers joined by '-'."""
    return bool(re.fullmatch(r"[a-z0-9]+(?:[-.][a-z0-9]+)+", tok) and re.search(r"\d", tok)
                and re.search(r"[a-z]", tok))


def _job_refs(text: str, skip: list[tuple[int, int]]) -> list[str]:
    out: list[str] = []
    for m in RX_JOB.finditer(text):
        tok = m[1]
        if any(a <= m.start(1) < b for a, b in skip) or tok.lower() in COMMON:
            continue
        if re.search(r"\d", tok) and not _is_size_or_number(tok, allow_int=True):
            out.append(tok)
    for m in RX_BARE_ID.finditer(text):
        if any(a <= m.start(1) < b for a, b in skip):
            continue
        before = text[max(0, m.start(1) - 6):m.start(1)].lower()
        if re.search(r"(last|past|top|exit|code|signal)\s*$", before):
            continue
        year_ctx = re.search(r"(?:\bin|since|year|until|before|after|jan\w*|feb\w*|mar\w*|apr\w*|may|jun\w*|jul\w*|"
                             r"aug\w*|sep\w*|oct\w*|nov\w*|dec\w*)[\s,]*$", before) and \
            re.fullmatch(r"(19|20)\d\d", m[1]) and not re.search(r"(?:job|id|#)\s*$", before)
        if m[1] not in out and not year_ctx:
            out.append(m[1])
    return out


def _is_size_or_number(tok: str, allow_int: bool = False) -> bool:
    if re.fullmatch(r"\d+(?:\.\d+)?(?:[kmgt]i?b?|gigs?|x|h|hrs?|d|min|s|%)?", tok, re.IGNORECASE):
        return not (allow_int and tok.isdigit())
    return False
