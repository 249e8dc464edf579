"""What a failed job printed: find its output and error files, read a bounded tail, redact
secrets, and pick the deciding lines with the diagnose reader.

Where the files are, in order of trust: sacct's StdOut/StdErr (Slurm >= 23.02), `scontrol show
job` while the controller still knows the job, the `-o`/`-e`/`--chdir` of SubmitLine (or the
script's #SBATCH lines) relative to WorkDir, and last Slurm's default `slurm-%j.out` /
`slurm-%A_%a.out`. A file that is huge (only the tail is read), binary, unreadable or gone gives
a note, never an exception.
"""
from __future__ import annotations

import os
import re
import shlex
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TAIL_BYTES = 64 * 1024  # read at most this much from the end of each file
SNIPPET_CHARS = 4000  # what is stored in failure_events.logs_snippet
_SCRIPT_BYTES = 64 * 1024

_SECRETS = [
    (re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(-----END [A-Z ]*PRIVATE KEY-----|\Z)",
                re.DOTALL), "<redacted private key>"),
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}"), r"\1 <redacted>"),
    (re.compile(r"(?i)((?:[a-z0-9_]*?)(?:password|passwd|pwd|secret|token|api[_-]?key|"
                r"access[_-]?key|private[_-]?key|credentials?|auth)[a-z0-9_]*"
                r"[\"']?\s*[:=]\s*)[\"']?[^\s\"',;]+"), r"\1<redacted>"),
    (re.compile(r"(://[^/\s:@]+:)[^@\s/]+@"), r"\1<redacted>@"),
    (re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b"), "<redacted aws key>"),
    (re.compile(r"\b(sk|pk|rk)-[A-Za-z0-9_-]{16,}\b"), "<redacted key>"),
    (re.compile(r"\b(ghp|gho|ghs|ghu|github_pat|glpat|hf)_[A-Za-z0-9_]{16,}\b"), "<redacted token>"),
    (re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}\b"), "<redacted token>"),
    (re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\b"), "<redacted jwt>"),
]


def redact(text: str) -> str:
    """The text with passwords, tokens, keys and credentials in URLs replaced."""
    for rx, repl in _SECRETS:
        text = rx.sub(repl, text)
    return text


@dataclass
class Tail:
    path: str
    text: str = ""
    size: int = 0
    truncated: bool = False
    note: str | None = None


@dataclass
class JobOutput:
    """The files found for one job, their redacted tails and the reading of them."""

    files: list[Tail] = field(default_factory=list)
    text: str = ""
    failure_type: str | None = None
    evidence: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def snippet(self) -> str:
        return self.text[-SNIPPET_CHARS:]


def read_tail(path: str | Path, limit: int = TAIL_BYTES) -> Tail:
    """The last `limit` bytes of a regular file as text; binary content is reduced to its
    printable lines. Never raises for a missing, unreadable or odd file."""
    p = str(path)
    t = Tail(p)
    try:
        st = os.stat(p)
        if not stat.S_ISREG(st.st_mode):
            t.note = f"{p}: not a regular file"
            return t
        t.size = st.st_size
        with open(p, "rb") as f:
            if st.st_size > limit:
                f.seek(st.st_size - limit)
                t.truncated = True
            raw = f.read(limit)
    except FileNotFoundError:
        t.note = f"{p}: gone (the job's output file no longer exists)"
        return t
    except PermissionError:
        t.note = f"{p}: not readable (permission denied)"
        return t
    except OSError as exc:
        t.note = f"{p}: cannot be read ({exc.strerror or exc})"
        return t
    if t.truncated:
        raw = raw.split(b"\n", 1)[-1]  # drop the partial first line
    if raw.count(b"\0") > len(raw) // 100:
        lines = [ln for ln in raw.split(b"\n") if b"\0" not in ln]
        text = "\n".join(ln.decode("utf-8", "replace") for ln in lines)
        text = "\n".join(ln for ln in text.splitlines()
                         if ln and sum(c.isprintable() for c in ln) >= 0.9 * len(ln))
        t.note = f"{p}: binary content; only its text lines were read"
    else:
        text = raw.decode("utf-8", "replace")
    t.text = redact(text.replace("\r", "\n"))
    return t


# -- where the files are -------------------------------------------------------------------
_PAT = re.compile(r"%(\d*)([%AajuxNnst])")


def expand(pattern: str, job: dict[str, Any], node: str | None = None) -> str:
    """Slurm's filename pattern expanded for `job` (%j %A %a %u %x %N %n %t %s %%)."""
    jid = str(job.get("job_id") or "")
    arr, _, task = jid.partition("_")
    raw = str(job.get("job_id_raw") or (jid if not task else ""))
    values = {"%": "%", "A": arr if task else jid, "a": task, "j": raw or "*",
              "u": job.get("user") or "*", "x": job.get("name") or "*", "N": node or "*",
              "n": "0", "t": "0", "s": "batch"}

    def sub(m: re.Match[str]) -> str:
        width, key = m.groups()
        v = values[key]
        return v.zfill(int(width)) if width and v.isdigit() else v
    return _PAT.sub(sub, pattern)


def submit_options(submit_line: str | None, script_text: str | None = None) -> dict[str, str]:
    """-o/--output, -e/--error, -D/--chdir from an sbatch command line (and #SBATCH lines of the
    script, which the command line overrides)."""
    opts: dict[str, str] = {}
    if script_text:
        for line in script_text.splitlines():
            s = line.strip()
            if s.startswith("#SBATCH"):
                _scan(_split(s[len("#SBATCH"):]), opts, stop_at_args=False)
            elif s and not s.startswith("#"):
                break
    if submit_line:
        words = _split(submit_line)
        if words and os.path.basename(words[0]) == "sbatch":
            words = words[1:]
        _scan(words, opts, stop_at_args=True)
    return opts


_LONG = {"--output": "output", "--error": "error", "--chdir": "chdir"}
_SHORT = {"-o": "output", "-e": "error", "-D": "chdir"}
# sbatch options that take no value (all others do, as the next word or after '=')
_FLAGS = {"-H", "-I", "-O", "-Q", "-V", "-W", "-h", "-k", "-s", "-v", "--parsable", "--wait",
          "--exclusive", "--hold", "--test-only", "--requeue", "--no-requeue", "--quiet",
          "--contiguous", "--overcommit", "--oversubscribe", "--spread-job", "--use-min-nodes",
          "--ignore-pbs", "--no-kill", "--verbose", "--version", "--help", "--usage"}


def _split(s: str) -> list[str]:
    try:
        return shlex.split(s)
    except ValueError:  # an unbalanced quote in a --wrap command
        return s.split()


def _scan(words: list[str], opts: dict[str, str], stop_at_args: bool) -> None:
    i = 0
    while i < len(words):
        w = words[i]
        if w == "--wrap" or (stop_at_args and not w.startswith("-")):
            if not w.startswith("-"):
                opts.setdefault("script", w)
            return
        key, val = None, None
        if "=" in w and w.split("=", 1)[0] in _LONG:
            key, val = _LONG[w.split("=", 1)[0]], w.split("=", 1)[1]
        elif w in _LONG or w in _SHORT:
            key = _LONG.get(w) or _SHORT[w]
            val = words[i + 1] if i + 1 < len(words) else None
            i += 1
        elif w[:2] in _SHORT and len(w) > 2:
            key, val = _SHORT[w[:2]], w[2:]
        elif w.startswith("-") and w not in _FLAGS and "=" not in w and \
                (w.startswith("--") or len(w) == 2):
            i += 1  # another option's value
        if key and val:
            opts[key] = val
        i += 1


def scontrol_paths(text: str | None) -> dict[str, str]:
    """StdOut / StdErr / WorkDir from `scontrol show job` output."""
    out: dict[str, str] = {}
    for key in ("StdOut", "StdErr", "WorkDir"):
        m = re.search(rf"\b{key}=(\S+)", text or "")
        if m and m.group(1) not in ("(null)", ""):
            out[key] = m.group(1)
    return out


def candidate_files(job: dict[str, Any], scontrol_text: str | None = None) -> list[str]:
    """The paths where this job's output and error went, best first, without duplicates."""
    node = (job.get("node_list") or "").split(",")[0] or None
    if node and "[" in node:
        node = None
    workdir = job.get("work_dir") or ""
    paths: list[str] = []
    for key in ("std_out", "std_err"):  # sacct >= 23.02
        if job.get(key):
            paths.append(expand(job[key], job, node))
    sc = scontrol_paths(scontrol_text)
    paths += [sc[k] for k in ("StdOut", "StdErr") if k in sc]
    workdir = sc.get("WorkDir") or workdir
    script_text = None
    opts = submit_options(job.get("script"))
    if opts.get("script") and workdir:
        script_text = _read_script(os.path.join(workdir, opts["script"]))
        if script_text:
            opts = submit_options(job.get("script"), script_text)
    base = opts.get("chdir") or workdir
    if base and workdir and not os.path.isabs(base):
        base = os.path.join(workdir, base)
    for key in ("output", "error"):
        if opts.get(key):
            p = expand(opts[key], job, node)
            paths.append(p if os.path.isabs(p) or not base else os.path.join(base, p))
    if base and not opts.get("output"):
        jid = str(job.get("job_id") or "")
        name = "slurm-%A_%a.out" if "_" in jid else "slurm-%j.out"
        if "_" not in jid:
            name = f"slurm-{jid}.out"
        paths.append(os.path.join(base, expand(name, job, node)))
    seen: set[str] = set()
    return [p for p in paths if not (p in seen or seen.add(p))]


def _read_script(path: str) -> str | None:
    try:
        if not os.path.isfile(path):
            return None
        with open(path, "rb") as f:
            return f.read(_SCRIPT_BYTES).decode("utf-8", "replace")
    except OSError:
        return None


def resolve_globs(paths: list[str]) -> list[str]:
    """A path with an unknown field (`*`) becomes the newest file it matches, if any."""
    import glob

    out = []
    for p in paths:
        if "*" in p:
            hits = sorted(glob.glob(p), key=lambda h: os.path.getmtime(h) if os.path.exists(h)
                          else 0)
            if hits:
                out.append(hits[-1])
        else:
            out.append(p)
    return out


def read_job_output(job: dict[str, Any], taxonomy: Any, scontrol_text: str | None = None,
                    limit: int = TAIL_BYTES) -> JobOutput:
    """Find, read (tails), redact and classify the output of one job."""
    res = JobOutput()
    paths = resolve_globs(candidate_files(job, scontrol_text))
    if not paths:
        res.notes.append("no output file known for this job (no WorkDir)")
    for p in paths:
        t = read_tail(p, limit)
        if t.note and "gone" in t.note and not t.text:
            res.notes.append(t.note)
            continue
        res.files.append(t)
        if t.note:
            res.notes.append(t.note)
    res.text = "\n".join(t.text for t in res.files if t.text).strip()
    if res.text:
        classify(res, taxonomy)
    return res


def classify(res: JobOutput, taxonomy: Any) -> None:
    """The diagnose reader's failure type and deciding lines for the text read."""
    from jobmedic.knowledge.readout import read_text

    r = read_text(taxonomy, res.text[-200_000:])
    res.failure_type = r.failure_type
    res.evidence = [e for e in r.evidence if e][:4]
