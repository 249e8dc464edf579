"""Reading pasted error output: which line decides, and what type it names.

The text is cleaned (ANSI colour codes, Windows line endings, binary bytes), then every line is
matched against the taxonomy's `readout` rules, its `patterns` and the exit codes / signals it
mentions. Each hit is a candidate (line, code, strength). The root cause is the strongest
candidate and, among equally strong ones, the EARLIEST line: a cause comes before its
consequences (an OOM kill before the step cancellation, a transport error before the fault it
caused). Symptoms (a restart loop, a cancellation, a bare non-zero exit) only decide when
nothing else does; then the learned classifier (textclf) may name a cause instead. The text is
data: nothing in it is ever followed as an instruction.
"""
from __future__ import annotations

import re
import re._constants as _C
import re._parser as _P
from bisect import bisect_right
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

SYMPTOMS = frozenset({"crash_loop", "app_error", "cancelled"})
CONFIDENCE = {3: 0.95, 2: 0.8, 1: 0.6}
CLASSIFIER_MIN = 0.5  # probability the classifier needs to decide alone
CLASSIFIER_OVER_SYMPTOM = 0.7  # ... to name a cause behind a symptom the rules found
CLASSIFIER_MIN_WORDS = 8
MAX_SHOWN = 400
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]")
_CTRL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_EXIT = re.compile(
    r"(?:exit(?:ed|s)?[ _]?(?:with )?(?:return |run |exit )?(?:code|status)|exitcode|\"exitCode\"|"
    r"Exit Code|ExitCode=|return code|错误码|"
    r"was sent code|status code|WTERMSIG|(?:on|by|with) signal)[\s:=`'\"]*(-?\d{1,3})(?::(\d{1,3}))?",
    re.IGNORECASE)
_EXIT_LITS = ("code", "exit", "signal", "status", "wtermsig", "错误码")
_ERRORISH = re.compile(r"error|fail|fatal|exception|killed|abort|denied|refused|traceback|panic|"
                       r"warn|cannot|unable|invalid|terminated|错误|失败|报错", re.IGNORECASE)
_INJECTION = re.compile(r"ignore (?:all |any )?(?:the )?(?:previous|prior|above) instructions|"
                        r"you are now|system prompt|disregard (?:all|the) (?:rules|instructions)",
                        re.IGNORECASE)


@dataclass
class Candidate:
    line_no: int
    code: str
    strength: int
    order: int
    line: str
    rule: str
    span: tuple[int, int] = (0, 0)


@dataclass
class Reading:
    """What a pasted text says: the type, the deciding line and how sure we are."""

    failure_type: str
    decided_by: str  # rules | classifier | none (the tool adds: template, stored)
    rule: str
    confidence: float
    evidence: list[str] = field(default_factory=list)  # deciding line first, then supporting
    symptom: str | None = None
    considered: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    line_no: int | None = None
    span: tuple[int, int] = (0, 0)
    alternatives: list[tuple[str, float]] = field(default_factory=list)


def clean(text: str) -> tuple[str, list[str]]:
    """Text without ANSI codes, CR line ends or binary bytes, and notes saying what was done."""
    notes: list[str] = []
    ctrl = len(_CTRL.findall(text[:20_000]))
    if "\x1b" in text:
        text = _ANSI.sub("", text)
        notes.append("ANSI colour codes were removed")
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if ctrl:
        if ctrl > 0.05 * min(len(text), 20_000):
            notes.append("the paste looks binary; its non-text bytes were dropped and only the "
                         "readable lines were read")
        text = _CTRL.sub(" ", text)
    return text, notes


def _requirement(items: Any) -> list[str] | None:
    """Literal strings one of which every match of a parsed (sub)pattern contains, or None.
    It lets a rule skip every line holding none of them (a str.find, not a regex scan)."""
    best: list[str] | None = None
    runs, run = [], ""

    def better(req: list[str] | None) -> None:
        nonlocal best
        if req and (best is None or min(map(len, req)) > min(map(len, best))):
            best = req

    for op, av in items:
        if op is _C.LITERAL:
            run += chr(av)
            continue
        runs.append(run)
        run = ""
        if op is _C.SUBPATTERN:
            better(_requirement(av[3]))
        elif op is _C.BRANCH:
            alts = [_requirement(a) for a in av[1]]
            if all(alts):
                better([x for a in alts for x in a])  # type: ignore[union-attr]
        elif op in (_C.MAX_REPEAT, _C.MIN_REPEAT) and av[0] >= 1:
            better(_requirement(av[2]))
    longest = max([*runs, run], key=len)
    if longest and (best is None or len(longest) >= min(map(len, best))):
        return [longest]
    return best


@lru_cache(maxsize=8)
def _rules(tax: Any) -> list[tuple[str, int, re.Pattern[str], str, tuple[str, ...] | None]]:
    pairs = [(code, strength, rx, f"readout:{code}:{i}")
             for i, (code, strength, rx) in enumerate(tax.readout)]
    pairs += [(code, 1 if code in SYMPTOMS else 2,
               re.compile(rx.pattern, re.IGNORECASE | re.MULTILINE), f"text:{code}")
              for code, rx in tax.patterns]
    out = []
    for code, strength, rx, rule in pairs:
        req = _requirement(_P.parse(rx.pattern, rx.flags))
        out.append((code, strength, rx, rule,
                    tuple(sorted({x.lower() for x in req})) if req else None))
    return out


def _exit_candidate(tax: Any, m: re.Match[str], line: str, line_no: int,
                    span: tuple[int, int]) -> Candidate | None:
    code, sig = int(m.group(1)), int(m.group(2) or 0)
    if "WTERMSIG" in m.group(0).upper() or "SIGNAL" in m.group(0).upper():
        code, sig = 0, code
    if code < 0:
        code, sig = 0, -code
    if code >= 128 and not sig:
        sig = code - 128
    ftype = tax.signals.get(sig) if sig else tax.exit_codes.get(code)
    if ftype is None and code != 0:
        ftype = "app_error"
    if ftype is None:
        return None
    strength = 3 if ftype == "segfault" else 1 if ftype in SYMPTOMS else 2
    return Candidate(line_no, ftype, strength, 999, line, f"exit:{m.group(1)}"
                     + (f":{m.group(2)}" if m.group(2) else ""), span)


def _lines_with(low: str, lits: tuple[str, ...], starts: list[int]) -> set[int]:
    hit: set[int] = set()
    for lit in lits:
        i = low.find(lit)
        while i != -1:
            no = bisect_right(starts, i) - 1
            hit.add(no)
            nxt = starts[no + 1] if no + 1 < len(starts) else len(low)
            i = low.find(lit, nxt)
    return hit


def candidates(tax: Any, lines: list[str]) -> list[Candidate]:
    """Every (line, code) hit, the strongest rule per code and line. A rule's regex runs only on
    the lines that hold one of its literals (found with str.find on the lower-cased text)."""
    text = "\n".join(lines)
    low = text.lower()
    if len(low) != len(text):  # a case mapping that changes lengths: no literal gate
        low = ""
    starts = [0]
    for ln in lines[:-1]:
        starts.append(starts[-1] + len(ln) + 1)
    seen: dict[tuple[int, str], Candidate] = {}
    exit_rule = ("", 0, _EXIT, "exit", _EXIT_LITS)
    for order, (code, strength, rx, rule, lits) in enumerate([*_rules(tax), exit_rule]):
        todo = sorted(_lines_with(low, lits, starts)) if lits and low else range(len(lines))
        for no in todo:
            m = rx.search(lines[no])
            if m is None:
                continue
            if rule == "exit":
                cand = _exit_candidate(tax, m, lines[no], no, m.span())
            else:
                cand = Candidate(no, code, strength, order, lines[no], rule, m.span())
            # per line and code: the strongest rule, the first in order among equals
            if cand is not None and ((no, cand.code) not in seen
                                     or cand.strength > seen[no, cand.code].strength):
                seen[no, cand.code] = cand
    return list(seen.values())


def _show(line: str, span: tuple[int, int] = (0, 0)) -> str:
    """The line as pasted (stripped); a long one cut to MAX_SHOWN characters around the match."""
    if len(line) <= MAX_SHOWN:
        return line.strip()
    start = max(0, min(span[0] - MAX_SHOWN // 4, len(line) - MAX_SHOWN))
    return line[start:start + MAX_SHOWN].strip()


def considered_lines(lines: list[str], limit: int = 8) -> list[str]:
    """Lines that look like errors (else the last lines): what was read when nothing decided."""
    hits = [_show(ln) for ln in lines if ln.strip() and _ERRORISH.search(ln)]
    if not hits:
        hits = [_show(ln) for ln in lines if ln.strip()][-5:]
    return list(dict.fromkeys(hits))[:limit]


def read_text(tax: Any, text: str, use_classifier: bool = True) -> Reading:
    """Classify a pasted text: rules first, then the classifier; `unknown` only when neither
    supports a type (with the lines considered)."""
    text, notes = clean(text)
    if _INJECTION.search(text):
        notes.append("the text contains instructions addressed to an assistant; they were read "
                     "as log data and not followed")
    lines = text.split("\n")
    cands = candidates(tax, lines)
    best = max(cands, key=lambda c: (c.strength, -c.line_no, c.code not in SYMPTOMS, -c.order),
               default=None)
    reading: Reading | None = None
    if best is not None and best.strength >= 2:
        reading = Reading(best.code, "rules", best.rule, CONFIDENCE[best.strength],
                          line_no=best.line_no, span=best.span)
    elif use_classifier:
        reading = _classified(lines, text, best)
    if reading is None and best is not None:
        reading = Reading(best.code, "rules", best.rule, CONFIDENCE[1], line_no=best.line_no,
                          span=best.span)
    if reading is None:
        if sum(ord(ch) > 127 for ch in text) > 0.3 * max(len(text.strip()), 1):
            notes.append("most of the text is not in English; only error lines in English or "
                         "code were matched")
        return Reading("unknown", "none", "none", 0.0, considered=considered_lines(lines),
                       notes=notes)
    reading.notes = notes + reading.notes
    _attach_evidence(reading, cands, lines)
    return reading


def _classified(lines: list[str], text: str, best: Candidate | None) -> Reading | None:
    from jobmedic.knowledge import textclf

    model = textclf.load()
    if model is None:
        return None
    if len(textclf.tokens(text)) < 2 * CLASSIFIER_MIN_WORDS:  # words and bigrams
        return None  # too little text for a learned guess
    ranked = model.predict(text)
    code, prob = ranked[0]
    floor = CLASSIFIER_OVER_SYMPTOM if best is not None else CLASSIFIER_MIN
    if prob < floor or code in SYMPTOMS and best is not None:
        return None
    line = model.best_line(lines, code)
    if line is None:
        return None
    no = next(i for i, ln in enumerate(lines) if ln.strip() == line)
    return Reading(code, "classifier", f"classifier:{code}", round(prob, 2), line_no=no,
                   alternatives=[(c, round(p, 2)) for c, p in ranked[1:3]])


def _attach_evidence(r: Reading, cands: list[Candidate], lines: list[str]) -> None:
    """Deciding line first, then up to two supporting lines of the same type (in text order),
    and the symptom line when a symptom was looked past."""
    ev = [_show(lines[r.line_no], r.span)] if r.line_no is not None else []
    for c in sorted(cands, key=lambda c: c.line_no):
        if len(ev) >= 3:
            break
        s = _show(c.line, c.span)
        if c.code == r.failure_type and s not in ev:
            ev.append(s)
    if r.failure_type not in SYMPTOMS:
        sym = [c for c in cands if c.code in SYMPTOMS and c.strength == 1]
        if sym:
            first = min(sym, key=lambda c: (c.code != "crash_loop", c.line_no))
            r.symptom = first.code
            s = _show(first.line, first.span)
            if s not in ev:
                ev.append(s)
    r.evidence = ev
