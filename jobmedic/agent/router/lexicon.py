"""Words the router knows: failure-type synonyms, stats dimensions, and common words that
must never be taken for a project, node or user name.

Data, kept apart from the rules that use it, so adding a synonym is one line. The two word
lists are package data (`domain_words.txt`, `common_words.txt`: one word a line, `#` comments).
"""
from __future__ import annotations

import re
from importlib import resources


def _words(name: str) -> frozenset[str]:
    text = resources.files(__package__).joinpath(name).read_text(encoding="utf-8")
    return frozenset(w for line in text.splitlines() if (w := line.split("#", 1)[0].strip()))


#: Failure-type synonyms, tried in order; the first match (by position in the text) wins.
#: Each is a regular expression written as its alternatives, one a line.
FAILURE_SYNONYMS: list[tuple[str, tuple[str, ...]]] = [
    ("gpu_error", (
        r"\bxid\b",
        r"\becc\b",
        r"fell off the bus",
        r"fallen off the bus",
        r"gpu (?:errors?|faults?|failures?|hardware|died|crash(?:es|ed)?|problems?|issues?)",
        r"bad gpus?",
        r"dead gpus?",
        r"gpu_error",
    )),
    ("oom", (
        r"\bexit(?: code| status)?:? 137\b",
        r"\bcuda oom\b",
        r"\bgpu oom\b",
        r"\booms?\b",
        r"\boom[- ]?kill(?:ed|s|er)?\b",
        r"out[- _]of[- _]memory",
        r"\bran out of (?:ram|memory|mem)\b",
        r"\bmemory ?errors?\b",
        r"\bmem(?:ory)? limit\b",
        r"exceeded (?:job )?memory",
        r"\bmemoryerror\b",
        r"\bbad_alloc\b",
        r"\brunning out of (?:ram|memory)\b",
        r"\bout of ram\b",
        r"\boomed\b",
    )),
    ("timeout", (
        r"\btime ?outs?\b",
        r"\btimed ?out\b",
        r"\btime[- ]?limits?\b",
        r"\bwall ?time\b",
        r"\bwall ?clock\b",
        r"\bdeadline(?:exceeded)?\b",
        r"\bran out of time\b",
        r"\bout of time\b",
        r"\bhit the limit\b",
        r"\bexceeded (?:the )?time\b",
    )),
    ("node_failure", (
        r"\bnode[_ ]?fail(?:ed|ures?|s)?\b",
        r"\bnode (?:died|crash(?:ed|es)?|down|lost|went down|reboot(?:ed|s)?)\b",
        r"\bdead nodes?\b",
        r"\bboot[_ ]?fail(?:ures?|ed)?\b",
        r"\bnodes? (?:dying|going down)\b",
    )),
    ("nccl_error", (
        r"\bnccl\b",
        r"\bcollective (?:timeouts?|errors?)\b",
        r"\ballreduce\b",
        r"\bmpi[_ ]abort\b",
    )),
    ("image_pull", (
        r"\bimage ?pull(?:backoff)?\b",
        r"\berrimagepull\b",
        r"\bpull (?:errors?|failures?|backoff)\b",
        r"(?:can'?t|cannot|could ?n[o']t|fail(?:ed|s)? to) pull\b",
    )),
    ("crash_loop", (
        r"\bcrash ?loop(?:backoff|ing|s)?\b",
        r"\bkeeps? restarting\b",
        r"\brestart loops?\b",
    )),
    ("config_error", (
        r"\bconfig(?:uration)? errors?\b",
        r"\bmisconfig\w*",
        r"\bbad config\w*",
        r"\bmissing (?:secret|env(?:ironment)? var\w*|configmap|volume)s?\b",
        r"\bcreatecontainerconfigerror\b",
    )),
    ("dependency_error", (
        r"\bdependency (?:errors?|issues?|problems?)\b",
        r"\bimport ?errors?\b",
        r"\bmodulenotfounderror\b",
        r"\bmissing (?:[\w.+-]+ ){0,2}(?:modules?|librar(?:y|ies)|packages?|dependenc(?:y|ies))\b",
        r"\bcommand not found\b",
        r"\blibcudnn\b",
        r"\bversion mismatch\b",
        r"\bno module named\b",
    )),
    ("permission_denied", (
        r"\bpermission(?:s| denied| errors?)\b",
        r"\baccess denied\b",
        r"\beacces\b",
    )),
    ("disk_quota", (
        r"\b(?:disk )?quota\b",
        r"\bdisk full\b",
        r"\bno space left\b",
        r"\bout of (?:disk|space)\b",
        r"\bfull disk\b",
        r"\bedquot\b",
    )),
    ("filesystem_error", (
        r"\bfile ?system (?:errors?|issues?|problems?)\b",
        r"\blustre\b",
        r"\bgpfs\b",
        r"\bi/?o errors?\b",
        r"\bstale (?:nfs )?file handles?\b",
        r"\bnfs (?:errors?|issues?)\b",
    )),
    ("network_error", (
        r"\bnetwork(?:ing)? (?:errors?|issues?|problems?|failures?)\b",
        r"\bconnection (?:refused|reset|timeouts?|errors?)\b",
        r"\bdns (?:errors?|failures?|issues?)\b",
    )),
    ("segfault", (
        r"\bexit(?: code| status)?:? 139\b",
        r"\bseg ?faults?\b",
        r"\bsegmentation faults?\b",
        r"\bsigsegv\b",
        r"\bcore ?dump(?:s|ed)?\b",
        r"\bsegfaulted\b",
    )),
    ("preempted", (
        r"\bpreempt(?:ed|ions?|s)?\b",
        r"\bevict(?:ed|ions?|s)?\b",
        r"\bbumped\b",
    )),
    ("cancelled", (
        r"\bcancel(?:l)?(?:ed|ations?|s)?\b",
        r"\bscancel(?:l?ed)?\b",
    )),
    ("scheduling", (
        r"\bscheduling (?:errors?|failures?|issues?|problems?)\b",
        r"\bunschedulable\b",
        r"\bfailedscheduling\b",
        r"(?:can'?t|cannot|won'?t) (?:be )?schedul\w*",
        r"\bstuck (?:in )?pending\b",
        r"\binsufficient (?:gpus?|cpus?|memory|resources)\b",
    )),
    ("app_error", (
        r"\bapp(?:lication)? errors?\b",
        r"\bnon[- ]?zero exit\w*",
        r"\bapp_error\b",
    )),
    ("unknown", (
        r"\bunknown (?:failures?|errors?|causes?)\b",
    )),
]
FAILURE_RX = [(code, re.compile("|".join(alts), re.IGNORECASE)) for code, alts in FAILURE_SYNONYMS]

#: "by node", "per user", "top images" -> stats group_by.
GROUP_WORDS = {
    "failure_type": ("type", "types", "failure type", "failure types", "error", "errors", "problem",
                     "problems", "issue", "issues", "reason", "reasons", "cause", "causes",
                     "category", "categories", "kind", "kinds", "error type", "error types",
                     "failure_type"),
    "project": ("project", "projects", "team", "teams", "account", "accounts", "namespace",
                "namespaces", "group", "groups"),
    "node": ("node", "nodes", "host", "hosts", "machine", "machines", "server", "servers"),
    "image": ("image", "images", "container", "containers"),
    "user": ("user", "users", "person", "people", "owner", "owners", "submitter", "submitters"),
    "queue": ("queue", "queues", "partition", "partitions"),
    "cluster": ("cluster", "clusters"),
    "blame": ("blame", "fault", "whose fault"),
    "state": ("state", "states", "status"),
    "day": ("day", "days", "daily", "date", "dates"),
    "hour": ("hour", "hours", "hourly", "time of day"),
}
GROUP_LOOKUP = {w: dim for dim, words in GROUP_WORDS.items() for w in words}

#: Words of the domain that may also be names (a "gpu" or "debug" partition): taken as a name
#: only after a cue ("the debug partition", "on debug", "-p long").
DOMAIN = _words("domain_words.txt")
#: Words that never name a project, node, user, queue or image unless a cue says so.
COMMON = _words("common_words.txt")

#: Phrases that mark a follow-up which reuses the previous question's actions.
FOLLOWUP_RX = re.compile(
    r"^\s*(?:and|what about|how about|same (?:for|but|with|thing for)|now|"
    r"ok(?:ay)?,? (?:now|and|what)|then|also|for|what if|but|just|only)\b", re.IGNORECASE)
PRONOUN_RX = re.compile(r"\b(?:it|that|this|those|these|them|they|same|that one|this one)\b",
                        re.IGNORECASE)
