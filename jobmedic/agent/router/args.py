"""Arguments of each action from the extracted entities (only what the question says; every
other field keeps the action's own default), and the free-text parts: the fix of an
outcome, the error text of a failure to record."""
from __future__ import annotations

import re
from typing import Any

from jobmedic.agent.router.extract import RX_NEG, RX_POS, Entities
from jobmedic.agent.router.intents import QUOTED
from jobmedic.agent.router.lexicon import FAILURE_RX
from jobmedic.tools import WINDOWED_ACTIONS

LEADING_FILLER = {"i", "we", "so", "ok", "okay", "well", "just", "btw", "also", "then", "and",
                  "tried", "trying", "try", "have", "had", "it", "that", ",", ""}
TRAILING_FILLER = {"and", "but", "so", "it", "that", "this", "which", "for", "on", "in", "of",
                   "with", "then", "also", "just", "the", ",", ""}
FILTER_KINDS = ("project", "node", "image", "user", "queue", "cluster")


def window_args(ent: Entities) -> dict[str, Any]:
    return ent.time.args() if ent.time else {}


def build(action: str, ent: Entities, text: str, paste: str | None = None) -> dict[str, Any]:
    """The request arguments (without 'action') for one action."""
    a: dict[str, Any] = {}
    if action in WINDOWED_ACTIONS:
        for k in FILTER_KINDS:
            if k in ent.names:
                a[k] = ent.names[k]
        a.update(window_args(ent))
        if action == "stats":
            if ent.failure_type:
                a["failure_type"] = ent.failure_type
            if ent.group_by:
                a["group_by"] = list(ent.group_by)
            if ent.top:
                a["top"] = ent.top
    elif action == "remediate":
        if ent.failure_type:
            a["failure_type"] = ent.failure_type
        elif ent.jobs:
            a["job_id"] = ent.jobs[0]
        if "project" in ent.names:
            a["project"] = ent.names["project"]
    elif action == "diagnose":
        if paste is not None:
            a["text"] = paste
        elif ent.jobs:
            a["job_id"] = ent.jobs[0]
        else:
            m = QUOTED.search(text)
            a["text"] = m[1] if m else text.strip()
        if "cluster" in ent.names and "job_id" in a:
            a["cluster"] = ent.names["cluster"]
    elif action == "predict":
        if ent.jobs:
            job = ent.jobs[0]
            a["job_id" if re.fullmatch(r"\d+(?:_\d+)?(?:\.\w+)?", job) else "name"] = job
        for k in ("user", "project", "queue", "image", "cluster"):
            if k in ent.names:
                a[k] = ent.names[k]
        a.update(ent.sizes)
        from jobmedic.agent.router.sizes import walltime_s

        rest = text
        if ent.time and not ent.time.bare:
            s, e = ent.time.span
            rest = text[:s] + " " + text[e:]
        wall = walltime_s(rest)
        if wall:
            a["req_walltime_s"] = wall
    elif action == "record_outcome":
        if ent.jobs:
            a["job_id"] = ent.jobs[0]
        elif ent.failure_type:
            a["failure_type"] = ent.failure_type
        a["solution"] = solution_text(text, ent)
        a["success"] = bool(ent.success) if ent.success is not None else True
    elif action == "record_failure":
        a.update(failure_fields(text, ent))
    return a


def running_args(ent: Entities) -> dict[str, Any]:
    """`predict` listing the running jobs at risk, filtered by what the question names."""
    a: dict[str, Any] = {"running": True}
    for k in ("project", "user", "queue", "cluster"):
        if k in ent.names:
            a[k] = ent.names[k]
    if ent.top:
        a["top"] = ent.top
    return a


def solution_text(text: str, ent: Entities) -> str:
    """The fix in the user's words: the sentence without the job, the outcome and filler."""
    s = text
    for j in ent.jobs:
        s = re.sub(rf"\b(?:(?:for|on|in|of|with|to)\s+)?(?:the\s+)?(?:job|pod|jobid)?\s*(?:id\s*)?#?"
                   rf"{re.escape(j)}\b", " ", s, flags=re.IGNORECASE)
    s = RX_NEG.sub(" ", s)
    s = RX_POS.sub(" ", s)
    for _code, rx in FAILURE_RX:  # "... fixed the OOM": the failure is not part of the fix
        s = re.sub(rf"\b(?:(?:for|of|on|with)\s+)?(?:the|those|these|my|our|all)\s+(?:{rx.pattern})s?"
                   rf"(?:\s+(?:errors?|issues?|problems?|failures?))?\s*(?:\W*$|(?=\s+(?:and|but)\b))",
                   " ", s, flags=re.IGNORECASE)
    s = re.sub(r"\b(?:record|note|log|fyi|update|outcome|feedback|thanks|thank you|thx|cheers|ty)\b:?",
               " ", s, flags=re.IGNORECASE)
    words = re.sub(r"\s+", " ", s).strip(" ,.;:!-()").split(" ")
    while words and words[0].lower().strip(",.;:") in LEADING_FILLER:
        words.pop(0)
    while words and words[-1].lower().strip(",.;:()") in TRAILING_FILLER:
        words.pop()
    s = " ".join(words).strip(" ,.;:!-()")
    return "" if s.lower() in ("it", "that", "this") else s


def failure_fields(text: str, ent: Entities) -> dict[str, Any]:
    """Fields of a failure to record: the job, where it ran and the error text."""
    a: dict[str, Any] = {}
    if ent.jobs:
        a["job_name"] = ent.jobs[0]
    else:
        m = re.search(r"\b(?:job|pod|workload|run)\s+(?:named\s+|called\s+)?['\"]?([\w.\-]+)", text, re.IGNORECASE)
        if m and m[1].lower() not in ("failed", "in", "on", "with", "that", "the", "a"):
            a["job_name"] = m[1]
    for k, field in (("project", "project"), ("user", "user"), ("node", "node_name"),
                     ("image", "container_image"), ("cluster", "cluster")):
        if k in ent.names:
            a[field] = ent.names[k]
    for tok, kind, _close in ent.unknown:  # new names are fine when recording
        field = {"project": "project", "user": "user", "node": "node_name", "image": "container_image",
                 "cluster": "cluster"}.get(kind or "")
        if field and field not in a:
            a[field] = tok
    m = QUOTED.search(text) or re.search(r"(?:\bwith|error|message|msg|reason)\s*[:=]?\s*(.{3,})$", text, re.IGNORECASE)
    if m:
        msg = m[1].strip(" .\"'")
        for field in ("node_name", "project", "container_image", "user"):  # "... on gpu01"
            if a.get(field):
                msg = re.sub(rf"[\s,]+(?:on|in|at|with|for|by)\s+(?:node\s+|project\s+|user\s+|image\s+)?"
                             rf"{re.escape(str(a[field]))}\s*$", "", msg, flags=re.IGNORECASE)
        a["error_message"] = msg
    if ent.sizes.get("req_gpus"):
        a["gpu_count"] = ent.sizes["req_gpus"]
    return a
