"""Intent detection: which action a question (or one clause of it) asks for, pasted error
text, clause splitting for two-action questions, and input that is no question at all."""
from __future__ import annotations

import re

_Q = re.IGNORECASE
HELP = re.compile(r"^\s*(?:help|h|\?+|usage|commands|examples?|menu|what can (?:you|i) (?:do|ask)\w*|how "
                  r"(?:do i|to|can i) use (?:this|you|it|jobmedic)|what do you do|who are you|what are you|"
                  r"hi|hello|hey)\b[\s?!.]*$|\bwhat can you (?:do|ask)\b|\bwhat can i ask\b|\bwhat (?:questions|"
                  r"things) can i ask\b", _Q)
RECORD_FAILURE = re.compile(r"\b(?:record|log|register|save|store|add|file|track|report)\s+(?:a|an|this|that|"
                            r"the|one|new|my)\s+(?:new\s+)?(?:\w+\s+)?(?:failure|crash|incident|failure "
                            r"event|failed job|error)s?\b|\b(?:record|log|note)\s+(?:that|it)\b", _Q)
RECORD_OUTCOME_EXPLICIT = re.compile(r"\brecord (?:an? |the )?outcome\b|\bmark (?:the )?fix\b|"
                                     r"\bfyi\b|\bupdate:|\bfeedback\b", _Q)
FIX_ACT = re.compile(r"\b(?:tried|try|doubl\w+|increas\w+|rais\w+|bump\w*|add\w*|set(?:ting)?|chang\w+|"
                     r"switch\w*|upgrad\w+|downgrad\w+|reduc\w+|lower\w*|mov\w+|using|used|restart\w*|"
                     r"resubmit\w*|retr\w+|pin\w*|patch\w*|remov\w+|install\w*|rebuil\w+|fix\w*|solution|"
                     r"more|extra|less|gave|giving|request\w*|split\w*|excluded?|drain\w*|reboot\w*|"
                     r"solv\w*|help\w*|worked for|did the trick|load\w*|clean\w*|delet\w*|enabl\w*|"
                     r"disabl\w*|limit\w*|export\w*|purg\w*|free\w*)\b", _Q)
PREDICT = re.compile(r"\b(?:will|would|is it going to|gonna|going to|is .{1,40} likely to|could)\b.{0,80}\b(?:fail|"
                     r"crash|die|oom|run out|time ?out|succeed|work|finish|complete|make it|survive|fit|"
                     r"blow up|break)\w*|\b(?:chances?|odds|likel(?:y|ihood)|probability|risk\w*)\b|"
                     r"\bpredict\w*|\bestimat\w*|\bforecast\w*|\bhow long (?:will|would|does|do|should|might|"
                     r"is|to)\b|\bhow much (?:memory|mem|ram|time|walltime|wall time|gpu memory)\b(?! did)|"
                     r"\b(?:should|do|must) i (?:request|ask for|reserve|allocate|use)\b|\bwhat (?:should i|to)"
                     r" (?:request|ask for|set)\b|\bhow many (?:gpus|cores|cpus|nodes|hours)(?: should| do i)\b|"
                     r"\bright[- ]?siz\w*|\bbefore (?:i )?submit\w*|\bsafe to (?:submit|run)\b|"
                     r"\benough\b|\b(?:memory|mem|ram|time|walltime|runtime|gpus?|cores?) (?:needed|required)\b",
                     _Q)
DIAGNOSE = re.compile(r"\b(?:why|y|why|wy) (?:did|does|has|had|is|was|would|do|didn'?t|did'?nt)\b|\bwhy\b.{0,40}\b(?:fail|die|"
                      r"crash|break|oom|get killed|killed)\w*|\bwhat (?:happened|went wrong|killed|broke|caused|"
                      r"failed)\b|\bwhat(?:'s| is|s) (?:wrong with|up with|going on with)\b|\bdiagnos\w*|"
                      r"\broot[- ]?cause\b|\bwhat does\b.{0,60}\bmean\b|\bwhat(?:'s| is|s) (?:this|that|the) "
                      r"(?:error|message|log|exit code)\b|\bexplain\b|\bdebug\b|\binvestigat\w*|\blook "
                      r"(?:at|into)\b|\bwhat(?:'s| is) (?:exit code|signal)\b|\bmeaning of\b|\bhow come\b", _Q)
REMEDIATE = re.compile(r"\b(?:how (?:do|can|should|would|to|could|might)|how'?d)\s+(?:i|we|you|one|u|people)?"
                       r"\s*(?:\w+\s+)?(?:fix|solve|resolve|avoid|prevent|stop|handle|deal|get rid|get around|"
                       r"work ?around|recover|mitigate|sort|get past)\w*|\bfix(?:es|ing)?\b|\bsolutions?\b|"
                       r"\bremed\w*|\bwork ?arounds?\b|\bwhat (?:worked|works|helps|helped|fixed|fixes|to do)\b|"
                       r"\bhow to\b|\bsuggest\w*|\bwhat can (?:i|we) do\b|\bwhat (?:do|should|shall) (?:i|we) do\b|\bany (?:ideas|"
                       r"tips|advice)\b|\bmitigat\w*|\bprevent\w*|\bavoid\w*|\bcure\b|\bresolution\b|"
                       r"\bget rid of\b|\bsolv\w+", _Q)
STATS = re.compile(r"\bhow (?:many|mnay|manny|mny|meny)\b|\bnumber of\b|#\s*of\b|\bcount\w*|\bstat[sz]?\b|\bstatistics\b|\bbreak ?down\b|"
                   r"\btop(?: \d+)?\b|\bmost (?:common|frequent|failures|failing|affected)\b|\brates?\b|"
                   r"\bpercent\w*|%|\btrend\w*|\bdistribution\b|\bhistogram\b|\btotals?\b|\btally\b|"
                   r"\bhow often\b|\bfrequen\w+|\b(?:by|per) (?:node|user|project|image|queue|partition|day|"
                   r"hour|type|team|cluster|failure type|reason|host|account|namespace|state|blame)s?\b|"
                   r"\bdaily\b|\bhourly\b|\bover time\b|\bwhich (?:nodes?|users?|images?|projects?|"
                   r"partitions?|queues?|teams?|hosts?) (?:have|has|had|fail|are|is|with|caus|got|see)\w*|"
                   r"\bworst\b|\bnumbers\b|\bhow bad\b|\bcompare\b|\bsplit\b", _Q)
ANALYZE = re.compile(r"\banaly[sz]\w*|\bwhat(?:'s| is| are|s)? (?:been |have been |has been )?(?:failing|"
                     r"breaking|broken|wrong|going on|happening|up|burning)\b|\bproblems?\b|\bissues?\b|"
                     r"\bpatterns?\b|\bhot ?spots?\b|\bbad (?:nodes?|images?|hosts?)\b|\bflaky\b|\bunhealthy\b|"
                     r"\bhealth\w*\b|\boverview\b|\bsummar\w*|\breport\b|\banything (?:wrong|unusual|weird|odd|"
                     r"off)\b|\bwhy (?:are|do|have|were|did|is) (?:\w+ )?(?:jobs|things|runs|pods|workloads|"
                     r"stuff)\b|\bfailures?\b|\bfailing\b|\bbroken\b|\bbreaking\b|\bcheck\b|\bany (?:bad|"
                     r"broken|sick)\b|\bon fire\b|\bmeltdown\b|\bblame\b|\bwhose fault\b|\bcrash\w*|\bdying\b|"
                     r"\bsick\b|\bacting up\b|\bweird\b|\bwtf\b|\bwhat'?s up\b|\bgoing on\b|"
                     r"\bwhat (?:failed|broke|crashed|died)\b|"
                     r"\bhow(?:'s| is| are)\b.{0,30}\b(?:doing|going|looking)\b", _Q)
#: Running jobs at risk ("which running jobs are likely to fail?", "which jobs will run out of
#: memory?", "any running jobs at risk?"): `predict` with running: true. A plural "jobs" (or
#: running / active / live jobs) and a risk cue; a job id or a job's request is `predict`.
_RISK = (r"(?:(?:likely|going|gonna|about|expected)\s+to\s+(?:\w+\s+)?(?:fail|die|crash|oom|run out|"
         r"be (?:oom-?)?killed|get (?:oom-?)?killed|hit (?:the|their) (?:memory )?limit)|at risk|"
         r"risk\w*|in danger|in trouble|will (?:\w+\s+)?(?:fail|die|crash|oom|run out|be killed|get "
         r"(?:oom-?)?killed)|might (?:fail|die|crash|oom|run out|get (?:oom-?)?killed)|"
         r"running out of (?:memory|mem|ram)|close to (?:their|the) (?:memory )?limit)")
RUNNING_RISK = re.compile(
    r"\b(?:running|active|live|in[- ]flight|current(?:ly running)?)\s+(?:\w+\s+)?(?:jobs?|pods?|"
    r"workloads?|ones)\b.{0,60}?\b" + _RISK + r"|\b(?:which|what|any|list|show)\s+(?:\w+\s+){0,2}"
    r"(?:jobs|pods|workloads)\b.{0,40}?\b" + _RISK, _Q)
QUESTION_START = re.compile(r"^\s*(?:how|what|which|why|did|does|do|is|are|can|could|should|will|would|has|"
                            r"have|was|were|any)\b", _Q)
SPLIT = re.compile(r"\s*(?:;|\?\s+|\.\s+|,?\s+(?:and then|and also|and|then|also|plus|but)\s+|,\s+)"
                   r"(?=(?:how|what|why|show|give|list|analy[sz]e|stats|break|count|tell|fix|predict|"
                   r"will|which|who|record|log|diagnose|where|any|is|are)\b)", _Q)
PASTE_HINT = re.compile(r"traceback \(most recent call last\)|^\s*\w*(?:error|exception)\b:|slurmstepd:|"
                        r"srun: error|\bkernel: |NVRM: Xid|\bE\d{4} \d\d:\d\d|^\[?\d{4}-\d\d-\d\d[ T]\d\d:|"
                        r"\bat [\w.$]+\([\w.]+:\d+\)|^\s*File \"|\bcore dumped\b|\bOOMKilled\b|Back-off|"
                        r"^\s*(?:Warning|Normal)\s+\w+|^\s*(?:RuntimeError|torch\.|CUDA error|NCCL|"
                        r"ImportError|ModuleNotFoundError|OSError|KeyError|ValueError)|oom-kill|"
                        r"\bexit code:? \d+|DUE TO TIME LIMIT|CANCELLED AT|\bsignal \d+\b|"
                        r"Failed to pull image|ErrImagePull|CrashLoopBackOff|rpc error: code|\[Errno \d+\]|"
                        r"\bexit ?code:? ?\d+|(?-i:\b(?:OUT_OF_MEMORY|NODE_FAIL|BOOT_FAIL|TIMEOUT|"
                        r"PREEMPTED|DEADLINE)\b)|^\s*(?:State|Reason|Exit ?Code|Last State|Status):\s*\S",
                        _Q | re.MULTILINE)
#: A pasted line that begins with a job reference is prose about that job ("job 2001 got
#: OOMKilled, why"): the job is diagnosed, not the sentence.
JOB_FIRST = re.compile(r"\s*(?:(?:my|the|our)\s+)?(?:job|pod|workload)\s*(?:id\s*)?#?\s*[\w.\-]*\d", _Q)
#: A short question closing a paste ("why?", "what does this mean?"): not part of the paste.
TRAILING_ASK = re.compile(r"^\s*(?:why|how come|what|wh?y|huh|\?|any idea|ideas|help|explain|"
                          r"what does|what happened|what went wrong|what's|whats|is this|can you)\b.{0,60}$|"
                          r"^\s*\?+\s*$", _Q)
ASKING = re.compile(r"\b(?:how|what|which|why|number|count|show|list|give|analy[sz]e|stats?|many|"
                    r"top|fix|top)\b", _Q)
QUOTED = re.compile(r"[\"“`']([^\"”`']{8,})[\"”`']")


def pasted_text(q: str) -> str | None:
    """The pasted error / log part of a question, or None when it is ordinary prose."""
    if RECORD_FAILURE.search(q.splitlines()[0] if q.strip() else q):
        return None
    lines = [ln for ln in q.splitlines() if ln.strip()]
    if len(lines) == 1 and len(q) < 60 and (q.rstrip().endswith("?") or REMEDIATE.search(q)):
        return None
    if len(lines) >= 2:
        first_prose = not PASTE_HINT.search(lines[0]) and len(lines[0]) < 160
        body_lines = lines[1:] if first_prose else lines
        if len(body_lines) >= 2 and len(body_lines[-1]) <= 80 and TRAILING_ASK.search(body_lines[-1]) \
                and not PASTE_HINT.search(body_lines[-1]):
            body_lines = body_lines[:-1]
        body = "\n".join(body_lines)
        if PASTE_HINT.search(body) or len(lines) >= 4:
            return body.strip()
    hint = PASTE_HINT.search(q)
    if hint and len(lines) == 1 and len(q) < 160 and JOB_FIRST.match(q):
        return None
    if hint and (len(q) > 100 or not QUESTION_START.search(q)) and \
            not ASKING.search(q[:hint.start()]) and not re.search(r"\b(?:last|past)\s+\d+", q, _Q):
        m = re.search(r"[:\-–]\s*(.{8,})$", q.strip()) if QUESTION_START.search(q) else None
        return (m[1] if m else q).strip()
    return None


def clauses(q: str) -> list[str]:
    """The question split before each part that starts like a new request."""
    parts = [p.strip(" ,.;") for p in SPLIT.split(q)]
    return [p for p in parts if p]


def is_question(q: str) -> bool:
    return bool(QUESTION_START.search(q)) or q.rstrip().endswith("?")


def intent_of(q: str, has_job: bool, has_outcome: bool, has_failure: bool) -> str | None:
    """The action one clause asks for (None when it names none)."""
    pronoun = re.search(r"\b(?:it|that|this)\b", q, _Q)
    if has_outcome and not is_question(q) and (FIX_ACT.search(q) or RECORD_OUTCOME_EXPLICIT.search(q)
                                               or pronoun) \
            and (has_job or has_failure or RECORD_OUTCOME_EXPLICIT.search(q) or pronoun):
        return "record_outcome"
    if RECORD_FAILURE.search(q) and not is_question(q):
        return "record_failure"
    if not has_job and RUNNING_RISK.search(q):
        return "running_risk"
    if PREDICT.search(q):
        return "predict"
    if DIAGNOSE.search(q) and (has_job or re.search(r"\b(?:it|(?:this|that)(?! (?:week|month|morning|"
                                                    r"afternoon|evening|year|quarter|weekend))|error|message|exit code|"
                                                    r"signal|mean)\b", q, _Q)) \
            and (has_job or not re.search(r"\b(?:jobs|failures|things|pods|workloads)\b", q, _Q)):
        return "diagnose"
    if REMEDIATE.search(q) or (has_failure and re.search(r"\b(?:help|halp|ideas?)\W*$", q, _Q)):
        return "remediate"
    if STATS.search(q):
        return "stats"
    if ANALYZE.search(q):
        return "analyze"
    return None


def is_garbage(q: str) -> str | None:
    """Why a question cannot be read at all (binary data, another language), or None."""
    if not q.strip():
        return "empty"
    bad = sum(1 for ch in q if (ord(ch) < 32 and ch not in "\t\n\r") or ch == "\ufffd")
    if bad > max(2, len(q) // 50):
        return "binary"
    letters = [ch for ch in q if ch.isalpha()]
    if letters and sum(1 for ch in letters if ord(ch) > 0x24F) > len(letters) * 0.5:
        return "language"
    return None


#: Requests about something else altogether (a poem, the weather, a translation): refused
#: with examples, even when they mention a word of the domain ("a poem about GPUs").
OFF_TOPIC = re.compile(r"\b(?:poems?|haikus?|limericks?|song|lyrics|jokes?|riddles?|weather|translat\w*|"
                       r"recipes?|capital of|president of|football|soccer|basketball|cricket|movies?|"
                       r"films?|bitcoin|crypto\w*|share price|price of|meeting room|book (?:a|me)|restaurants?|"
                       r"horoscope|essay|girlfriend|boyfriend|birthday|vacation|holiday plans?)\b", _Q)
#: Words of this domain: a question with none of them (and no name, job, failure type or
#: size the router recognised) is about nothing jobmedic knows.
DOMAIN_TOPIC = re.compile(r"\b(?:jobs?|fail\w*|errors?|crash\w*|nodes?|gpus?|cpus?|mem\w*|ram|oom\w*|"
                          r"slurm\w*|sacct|squeue|sbatch|srun|scontrol|seff|pods?|kube\w*|k8s|clusters?|queues?|"
                          r"partitions?|kill\w*|logs?|workloads?|images?|containers?|exit|walltime|"
                          r"time ?limit|timeouts?|runs?|running|train\w*|cuda|nccl|mpi|analy[sz]\w*|stat\w*|"
                          r"diagnos\w*|fix\w*|remed\w*|predict\w*|projects?|users?|teams?|accounts?|"
                          r"preempt\w*|evict\w*|broke\w*|break\w*|die|died|dying|dead|problems?|issues?|"
                          r"wrong|happen\w*|health\w*|flaky|blame|segfault\w*|core|disk|quota|storage|"
                          r"network\w*|outcomes?|submit\w*|resources?|cores?|tasks?|steps?|scheduler|"
                          r"namespace|deploy\w*|restarts?|backoff|signal|traceback|exceptions?|python|torch)\b",
                          _Q)


def off_topic(q: str, recognised: bool, followup: bool) -> bool:
    """True for a question about nothing jobmedic knows: refused with examples.

    `recognised`: the router found a job, a failure type, a known name (exactly), a size or a
    dimension; `followup`: an earlier turn exists, or the question has a time phrase or a
    follow-up cue, so a bare "what about last month?" is not off topic.
    """
    if recognised:
        return False
    if OFF_TOPIC.search(q):
        return True
    if followup or DOMAIN_TOPIC.search(q) or intent_of(q, False, False, False):
        return False
    if any(ord(ch) > 127 for ch in q if ch.isalpha()):  # another language: the help answer says so
        return False
    asks = is_question(q) or re.match(r"\s*(?:who|whom|where|when|tell|write|give|show|make|find|"
                                      r"recommend|suggest|book|play|sing|compose|create|draw|"
                                      r"please|can|could)\b", q, _Q)
    return bool(asks) and len(re.findall(r"[^\W\d_]{2,}", q)) >= 3
