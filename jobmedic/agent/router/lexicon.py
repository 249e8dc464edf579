"""Words the router knows: failure-type synonyms, stats dimensions, and common words that
must never be taken for a project, node or user name.

Data, kept apart from the rules that use it, so adding a synonym is one line.
"""
from __future__ import annotations

import re

#: Failure-type synonyms, tried in order; the first match (by position in the text) wins.
FAILURE_SYNONYMS: list[tuple[str, str]] = [
    ("gpu_error", r"\bxid\b|\becc\b|fell off the bus|fallen off the bus|gpu (?:errors?|faults?|failures?|"
                  r"hardware|died|crash(?:es|ed)?|problems?|issues?)|bad gpus?|dead gpus?|gpu_error"),
    ("oom", r"\bexit(?: code| status)?:? 137\b|\bcuda oom\b|\bgpu oom\b|\booms?\b|\boom[- ]?kill(?:ed|s|er)?\b|out[- _]of[- _]memory|"
            r"\bran out of (?:ram|memory|mem)\b|\bmemory ?errors?\b|\bmem(?:ory)? limit\b|"
            r"exceeded (?:job )?memory|\bmemoryerror\b|\bbad_alloc\b|\brunning out of (?:ram|memory)\b|"
            r"\bout of ram\b|\boomed\b"),
    ("timeout", r"\btime ?outs?\b|\btimed ?out\b|\btime[- ]?limits?\b|\bwall ?time\b|\bwall ?clock\b|"
                r"\bdeadline(?:exceeded)?\b|\bran out of time\b|\bout of time\b|\bhit the limit\b|"
                r"\bexceeded (?:the )?time\b"),
    ("node_failure", r"\bnode[_ ]?fail(?:ed|ures?|s)?\b|\bnode (?:died|crash(?:ed|es)?|down|lost|"
                     r"went down|reboot(?:ed|s)?)\b|\bdead nodes?\b|\bboot[_ ]?fail(?:ures?|ed)?\b|"
                     r"\bnodes? (?:dying|going down)\b"),
    ("nccl_error", r"\bnccl\b|\bcollective (?:timeouts?|errors?)\b|\ballreduce\b|\bmpi[_ ]abort\b"),
    ("image_pull", r"\bimage ?pull(?:backoff)?\b|\berrimagepull\b|\bpull (?:errors?|failures?|backoff)\b|"
                   r"(?:can'?t|cannot|could ?n[o']t|fail(?:ed|s)? to) pull\b"),
    ("crash_loop", r"\bcrash ?loop(?:backoff|ing|s)?\b|\bkeeps? restarting\b|\brestart loops?\b"),
    ("config_error", r"\bconfig(?:uration)? errors?\b|\bmisconfig\w*|\bbad config\w*|\bmissing (?:secret|"
                     r"env(?:ironment)? var\w*|configmap|volume)s?\b|\bcreatecontainerconfigerror\b"),
    ("dependency_error", r"\bdependency (?:errors?|issues?|problems?)\b|\bimport ?errors?\b|"
                         r"\bmodulenotfounderror\b|\bmissing (?:[\w.+-]+ ){0,2}(?:modules?|librar(?:y|ies)|packages?|"
                         r"dependenc(?:y|ies))\b|\bcommand not found\b|"
                         r"\blibcudnn\b|\bversion mismatch\b|\bno module named\b"),
    ("permission_denied", r"\bpermission(?:s| denied| errors?)\b|\baccess denied\b|\beacces\b"),
    ("disk_quota", r"\b(?:disk )?quota\b|\bdisk full\b|\bno space left\b|\bout of (?:disk|space)\b|"
                   r"\bfull disk\b|\bedquot\b"),
    ("filesystem_error", r"\bfile ?system (?:errors?|issues?|problems?)\b|\blustre\b|\bgpfs\b|"
                         r"\bi/?o errors?\b|\bstale (?:nfs )?file handles?\b|\bnfs (?:errors?|issues?)\b"),
    ("network_error", r"\bnetwork(?:ing)? (?:errors?|issues?|problems?|failures?)\b|\bconnection "
                      r"(?:refused|reset|timeouts?|errors?)\b|\bdns (?:errors?|failures?|issues?)\b"),
    ("segfault", r"\bexit(?: code| status)?:? 139\b|\bseg ?faults?\b|\bsegmentation faults?\b|\bsigsegv\b|\bcore ?dump(?:s|ed)?\b|"
                 r"\bsegfaulted\b"),
    ("preempted", r"\bpreempt(?:ed|ions?|s)?\b|\bevict(?:ed|ions?|s)?\b|\bbumped\b"),
    ("cancelled", r"\bcancel(?:l)?(?:ed|ations?|s)?\b|\bscancel(?:l?ed)?\b"),
    ("scheduling", r"\bscheduling (?:errors?|failures?|issues?|problems?)\b|\bunschedulable\b|"
                   r"\bfailedscheduling\b|(?:can'?t|cannot|won'?t) (?:be )?schedul\w*|"
                   r"\bstuck (?:in )?pending\b|\binsufficient (?:gpus?|cpus?|memory|resources)\b"),
    ("app_error", r"\bapp(?:lication)? errors?\b|\bnon[- ]?zero exit\w*|\bapp_error\b"),
    ("unknown", r"\bunknown (?:failures?|errors?|causes?)\b"),
]
FAILURE_RX = [(code, re.compile(rx, re.IGNORECASE)) for code, rx in FAILURE_SYNONYMS]

#: "by node", "per user", "top images" -> stats group_by.
GROUP_WORDS = {
    "failure_type": ("type", "types", "failure type", "failure types", "error", "errors", "problem",
                     "problems", "issue", "issues", "reason", "reasons", "cause",
                     "causes", "category", "categories", "kind", "kinds", "error type", "error types",
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
DOMAIN = frozenset(["gpu", "gpus", "cpu", "cpus", "debug", "test", "normal", "default", "main", "batch", "long", "short", "low", "high", "standard", "small", "large", "big", "memory", "mem", "ram", "node", "nodes", "host", "image", "images", "compute", "interactive", "express", "preempt", "scavenger"])
#: Words that never name a project, node, user, queue or image unless a cue says so.
COMMON = frozenset(["re-run", "rerun", "re-submit", "resubmit", "non-zero", "time-out", "follow-up", "built-in", "up-to-date", "e-mail", "walltime", "wall-time", "sbatch", "srun", "squeue", "sacct", "kubectl", "slurm", "kubernetes", "runai", "k8s", "pls", "plz", "thx", "gimme", "wanna", "gonna", "lemme", "dunno", "tho", "btw", "fyi", "asap", "wtf", "lol", "ok", "okay", "ya", "yeah", "nope", "yep", "usually", "normally", "often", "always", "sometimes", "again", "anymore", "a", "about", "above", "after", "again", "against", "all", "am", "an", "and", "any", "anything", "are", "aren", "arent", "around", "as", "ask", "at", "back", "be", "because", "been", "before", "being", "below", "between", "both", "but", "by", "can", "cant", "could", "couldnt", "did", "didnt", "do", "does", "doesnt", "doing", "done", "dont", "down", "during", "each", "else", "even", "ever", "every", "few", "for", "from", "further", "get", "gets", "getting", "give", "go", "going", "gone", "got", "had", "has", "hasnt", "have", "havent", "having", "he", "her", "here", "hers", "him", "his", "how", "i", "if", "im", "in", "into", "is", "isnt", "it", "its", "itself", "ive", "just", "last", "least", "let", "lets", "like", "likely", "look", "lot", "lots", "made", "make", "many", "may", "me", "might", "mine", "more", "most", "much", "must", "my", "myself", "need", "needs", "new", "next", "no", "nor", "not", "now", "of", "off", "on", "once", "one", "only", "or", "other", "our", "ours", "out", "over", "own", "past", "per", "please", "pls", "plz", "really", "same", "see", "seem", "seems", "she", "should", "show", "shown", "since", "so", "some", "something", "still", "such", "sure", "than", "thank", "thanks", "that", "thats", "the", "their", "them", "then", "there", "these", "they", "thing", "things", "think", "this", "those", "though", "through", "thx", "to", "today", "too", "tried", "try", "trying", "under", "until", "up", "upon", "us", "use", "used", "using", "very", "want", "was", "wasnt", "way", "we", "well", "were", "werent", "what", "whats", "when", "where", "which", "while", "who", "whom", "whose", "why", "will", "with", "within", "without", "wont", "would", "wouldnt", "yes", "yet", "you", "your", "yours", "yesterday", "tomorrow", "week", "weeks", "month", "months", "day", "days", "hour", "hours", "year", "years", "fortnight", "morning", "night", "tonight", "ago", "recent", "recently", "lately", "now", "current", "currently", "week's", "job", "jobs", "task", "tasks", "pod", "pods", "run", "runs", "running", "ran", "workload", "workloads", "fail", "fails", "failed", "failing", "failure", "failures", "error", "errors", "crash", "crashes", "crashed", "crashing", "broke", "broken", "breaking", "break", "died", "dying", "dead", "issue", "issues", "problem", "problems", "wrong", "bad", "flaky", "hot", "spot", "spots", "pattern", "patterns", "analyze", "analyse", "analysis", "analyzing", "stats", "stat", "statistics", "count", "counts", "number", "numbers", "rate", "rates", "top", "most", "common", "frequent", "breakdown", "trend", "trends", "table", "list", "fix", "fixes", "fixed", "fixing", "solution", "solutions", "solve", "solved", "resolve", "resolved", "remedy", "workaround", "help", "helped", "work", "worked", "works", "memory", "mem", "ram", "gpu", "gpus", "cpu", "cpus", "core", "cores", "node", "nodes", "host", "hosts", "machine", "machines", "image", "images", "container", "containers", "user", "users", "project", "projects", "team", "teams", "queue", "queues", "partition", "partitions", "cluster", "clusters", "account", "namespace", "type", "types", "cause", "causes", "reason", "reasons", "kind", "happened", "happen", "going", "on", "overall", "total", "everything", "anyone", "everyone", "someone", "people", "person", "group", "groups", "status", "state", "states", "debug", "test", "normal", "default", "main", "batch", "long", "short", "low", "high", "standard", "small", "large", "big", "request", "requests", "requested", "submit", "submitting", "submitted", "predict", "prediction", "risk", "chance", "odds", "estimate", "long", "how", "much", "many", "what", "why", "who", "whats", "hows", "record", "log", "report", "store", "save", "note", "noted", "add", "diagnose", "explain", "mean", "means", "meaning", "think", "thanks", "ok", "okay", "hi", "hello", "hey", "also", "plus", "then", "again", "same", "instead", "about", "last", "previous"])
COMMON = COMMON | frozenset(
    "check show list tell give find see look compare display print fetch pull explain know "
    "health healthy doing looking fine anything everything something".split())

#: Phrases that mark a follow-up which reuses the previous question's actions.
FOLLOWUP_RX = re.compile(
    r"^\s*(?:and|what about|how about|same (?:for|but|with|thing for)|now|ok(?:ay)?,? (?:now|and|what)|"
    r"then|also|for|what if|but|just|only)\b", re.IGNORECASE)
PRONOUN_RX = re.compile(r"\b(?:it|that|this|those|these|them|they|same|that one|this one)\b",
                        re.IGNORECASE)
