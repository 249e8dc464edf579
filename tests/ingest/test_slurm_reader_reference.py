"""The sacct reader reads allocation lines by position with cached conversions (issue 16); this
compares its stores with those of the reading it replaced (`_reference_set_alloc` below, the
former `_Folder._set_alloc`, which read every line through a dict of the header names), on a
generated file with malformed and unusual lines mixed in, header-less input, a repeated
header name, and the slurm2sql fixtures: the same jobs, nodes, failure events, templates,
rejects (with their messages and line numbers) and run counts."""
from __future__ import annotations

import random
from pathlib import Path

import pytest

from bench.bench_ingest import FIELDS, write_sacct
from jobmedic.core import validate as v
from jobmedic.core.validate import MAX_DURATION_S, MAX_GPUS, MAX_MEM_MB
from jobmedic.ingest import READERS, IngestContext, run_ingest
from jobmedic.ingest import slurm as slurm_mod
from jobmedic.ingest.slurm_fields import (
    array_range,
    expand_nodelist,
    gpus_from_tres,
    parse_duration,
    parse_mem_mb,
    parse_time,
)
from jobmedic.knowledge.store import Store
from jobmedic.knowledge.templates import Templates

FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "data" / "slurm_sacct_fixtures"
_int, _exit = slurm_mod._int, slurm_mod._exit


def _reference_set_alloc(self, job, parts, base, from_step=False):
    """The former `_Folder._set_alloc`, verbatim but for taking the line's fields."""
    get = {name: parts[i] for name, i in self.idx.items()}.get
    ctx = self.ctx
    raw_state = (get("State") or "").strip()
    exit_code, sig = _exit(get("ExitCode"))
    cpus = (_int(get("ReqCPUS"), "ReqCPUS", v.MAX_CPUS) or _int(get("NCPUS"), "NCPUS", v.MAX_CPUS)
            or _int(get("AllocCPUS"), "AllocCPUS", v.MAX_CPUS))
    nnodes = (_int(get("NNodes"), "NNodes", v.MAX_NODES)
              or _int(get("AllocNodes"), "AllocNodes", v.MAX_NODES)
              or _int(get("ReqNodes"), "ReqNodes", v.MAX_NODES))
    array_id = base.split("_", 1)[0] if "_" in base else None
    tasks = array_range(base)[1] if "_[" in base else None
    timelimit = get("TimelimitRaw")
    timelimit_s = (int(timelimit) * 60 if timelimit and timelimit.isdigit()
                   else parse_duration(get("Timelimit"), "Timelimit"))
    elapsed_raw = get("ElapsedRaw")
    elapsed = (int(elapsed_raw) if elapsed_raw and elapsed_raw.isdigit()
               else parse_duration(get("Elapsed"), "Elapsed"))
    submit, start, end = (parse_time(get("Submit"), "Submit"),
                          parse_time(get("Start"), "Start"), parse_time(get("End"), "End"))
    top = self.top
    if submit is not None and not 0 <= submit <= top:
        v.epoch(submit, "Submit")
    if start is not None and not 0 <= start <= top:
        v.epoch(start, "Start")
    if end is not None and not 0 <= end <= top:
        v.epoch(end, "End")
    if timelimit_s is not None and not 0 <= timelimit_s <= MAX_DURATION_S:
        v.duration(timelimit_s, "Timelimit")
    if elapsed is not None and not 0 <= elapsed <= MAX_DURATION_S:
        v.duration(elapsed, "Elapsed")
    gpus = gpus_from_tres(get("ReqTRES"), get("AllocTRES"), get("ReqGRES"))
    if gpus is not None and gpus > MAX_GPUS:
        v.count(gpus, "ReqTRES gpus", MAX_GPUS)
    mem = parse_mem_mb(get("ReqMem"), "ReqMem", cpus=cpus, nodes=nnodes)
    if mem is not None and not 0 <= mem <= MAX_MEM_MB:
        v.amount(mem, "ReqMem (MB)")
    nodes = expand_nodelist(get("NodeList"))
    job.update({
        "cluster": get("Cluster") or ctx.cluster, "job_id": base, "array_id": array_id,
        "name": get("JobName") or None, "user": get("User") or None,
        "project": get("Account") or None, "queue": get("Partition") or None,
        "qos": get("QOS") or None, "raw_state": raw_state,
        "state": ctx.taxonomy.normalise_state(raw_state),
        "exit_code": exit_code, "signal": sig, "reason": get("Reason") or None,
        "submit_time": submit, "start_time": start, "end_time": end,
        "elapsed_s": elapsed, "timelimit_s": timelimit_s, "req_cpus": cpus,
        "req_gpus": gpus, "req_mem_mb": mem,
        "n_nodes": nnodes, "node_list": get("NodeList") or None,
        "work_dir": get("WorkDir") or None, "script": get("SubmitLine") or None,
        "_comment": get("Comment") or None, "source": "slurm", "_line": self.lineno,
    })
    job["_nodes"], job["_tasks"] = nodes, tasks
    if job["n_nodes"] is None and nodes:
        job["n_nodes"] = len(nodes)
    job["_has_alloc"] = not from_step


COLS = FIELDS.split("|")
C = {n: i for i, n in enumerate(COLS)}


def _set(line: str, **fields: str) -> str:
    parts = line.split("|")
    for k, val in fields.items():
        parts[C[k]] = val
    return "|".join(parts)


#: what is done to every 37th line (allocation or step), in turn
MUTATIONS = [
    lambda s: s.rsplit("|", 1)[0],                                      # a field short
    lambda s: _set(s, JobID=""),                                        # no JobID
    lambda s: _set(s, Submit="2024-13-45T10:00:00"),                    # no such day
    lambda s: _set(s, Start="2024-05-01T25:00:00"),                     # no such hour
    lambda s: _set(s, ExitCode="x:y"),
    lambda s: _set(s, ReqMem="99999999999T"),                           # too much memory
    lambda s: _set(s, ElapsedRaw="-5", Elapsed="-1:00"),
    lambda s: _set(s, TimelimitRaw="", Timelimit="UNLIMITED"),
    lambda s: _set(s, JobID=s.split("|")[0].split(".")[0] + "_[1-3]"),  # a pending range
    lambda s: s + "\n   ",                                              # a blank line after
    lambda s: s + "\n" + s,                                             # the line twice
    lambda s: _set(s, NodeList="cn[5-2]"),                              # a reversed range
    lambda s: _set(s, ReqCPUS="inf", NCPUS="2K"),
    lambda s: _set(s, State="  FAILED  ", ExitCode="2:0", Reason="(null)",
                   Comment="error: disk quota exceeded on /scratch"),
    lambda s: _set(s, MaxRSS="abc"),
    lambda s: _set(s, End="None", Start="Unknown"),
    lambda s: _set(s, Submit="2024-05-01T\u0661\u0662:00:00"),          # other digits
    lambda s: _set(s, ReqCPUS="", NCPUS="0", NNodes="", NodeList="gpu[01-03],cn7"),
    lambda s: _set(s, NNodes="0", NodeList="cn[1-2]"),
    lambda s: _set(s, JobName="", SubmitLine="sbatch --exclude=cn5 run.sh"),
    lambda s: _set(s, ReqTRES="gres/gpu:a100=9999", AllocTRES=""),
    lambda s: _set(s, Cluster="", Timelimit="1-02:03:04", TimelimitRaw="x"),
    lambda s: _set(s, ExitCode="0:9", State="CANCELLED by 0"),
]


def sacct_with_bad_lines(path: Path, n: int = 5000, seed: int = 3) -> None:
    write_sacct(path, n, seed=seed)
    lines = path.read_text(encoding="utf-8").splitlines()
    rng = random.Random(seed)
    out = [lines[0]]
    for k, line in enumerate(lines[1:], 1):
        if k % 37 == 0:
            line = MUTATIONS[(k // 37) % len(MUTATIONS)](line)
        if k % 401 == 0 and out[-1].split("|")[0].count("."):  # a step before its job's line
            out.insert(len(out) - 1, line)
            continue
        out.append(line)
    rng.shuffle(out[-40:-20])  # steps apart from their jobs
    path.write_text("\n".join(out) + "\n", encoding="utf-8")


def _store(tmp_path: Path, taxonomy, name: str, path: Path, reference: bool, monkeypatch,
           **kw) -> dict:
    with monkeypatch.context() as m:
        if reference:
            m.setattr(slurm_mod._Folder, "_set_alloc", _reference_set_alloc)
        with Store(tmp_path / f"{name}.db") as s:
            ctx = IngestContext(taxonomy, Templates(s.load_templates()), batch_size=500, **kw)
            summary = run_ingest(s, READERS["slurm"], str(path), ctx).to_dict()
            c = s.conn
            got = {t: c.execute(f"SELECT * FROM {t} ORDER BY {order}").fetchall()
                   for t, order in (("jobs", "rowid"), ("job_nodes", "1, 2, 3"),
                                    ("templates", "1"))}
            got["events"] = c.execute("SELECT * FROM failure_events ORDER BY id").fetchall()
            got["rejects"] = c.execute("SELECT source, line, reason, raw FROM rejects "
                                       "ORDER BY id").fetchall()
    for k in ("seconds", "rate_per_s", "file"):
        summary.pop(k)
    got["summary"] = summary
    return got


def _compare(tmp_path, taxonomy, path: Path, monkeypatch, **kw) -> dict:
    ref = _store(tmp_path, taxonomy, "ref", path, True, monkeypatch, **kw)
    new = _store(tmp_path, taxonomy, "new", path, False, monkeypatch, **kw)
    for key in ref:
        assert new[key] == ref[key], key
    return new


def test_same_store_as_the_reference_on_a_file_with_bad_lines(tmp_path, taxonomy, monkeypatch):
    path = tmp_path / "bad.sacct"
    sacct_with_bad_lines(path)
    got = _compare(tmp_path, taxonomy, path, monkeypatch)
    reasons = " ".join(r[2] for r in got["rejects"])
    for word in ("fields", "JobID", "Submit", "ExitCode", "ReqMem", "Elapsed", "NodeList",
                 "ReqCPUS", "MaxRSS"):
        assert word in reasons, word
    assert len(got["jobs"]) > 1000 and got["events"] and got["templates"]
    assert got["summary"]["status"] == "partial"


def test_same_store_for_header_less_input_and_a_repeated_column(tmp_path, taxonomy,
                                                                monkeypatch):
    path = tmp_path / "plain.sacct"
    write_sacct(path, 800, seed=5)
    lines = path.read_text(encoding="utf-8").splitlines()
    body = tmp_path / "noheader.sacct"
    body.write_text("\n".join(lines[1:]) + "\n", encoding="utf-8")
    got = _compare(tmp_path, taxonomy, body, monkeypatch, fields=FIELDS.split("|"))
    assert len(got["jobs"]) > 200
    # a header naming one column twice: both readings pair the fields alike
    twice = tmp_path / "twice.sacct"
    twice.write_text("\n".join([lines[0] + "|User"] + [s + "|other" for s in lines[1:]]) + "\n",
                     encoding="utf-8")
    _compare(tmp_path, taxonomy, twice, monkeypatch)


def test_a_column_named_twice_shifts_no_other_column(tmp_path, taxonomy, monkeypatch):
    """`sacct --format=JobID,State,User,Elapsed,User` prints User twice; Elapsed is still read
    from its own position (it used to be read one column left, and every line was rejected)."""
    path = tmp_path / "dup.sacct"
    path.write_text("JobID|State|User|Elapsed|User\n101|COMPLETED|alice|00:01:00|alice\n"
                    "102|FAILED|carol|01:00:00|carol\n", encoding="utf-8")
    got = _store(tmp_path, taxonomy, "dup", path, False, monkeypatch)
    assert not got["rejects"]
    with Store(tmp_path / "dup.db") as s:
        rows = s.conn.execute("SELECT job_id, user, elapsed_s FROM jobs ORDER BY job_id").fetchall()
    assert [tuple(r) for r in rows] == [("101", "alice", 60), ("102", "carol", 3600)]


@pytest.mark.skipif(not FIXTURES.exists(), reason="slurm2sql fixtures not present")
@pytest.mark.parametrize("name", ["slurm2sql_test-data1.csv", "slurm2sql_test-data2.csv"])
def test_same_store_on_the_slurm2sql_fixtures(tmp_path, taxonomy, monkeypatch, name):
    got = _compare(tmp_path, taxonomy, FIXTURES / name, monkeypatch)
    assert got["jobs"]
