"""The job-output reader: where the files are, bounded tails, odd files, redaction, and the
deciding line picked by the diagnose reader."""
from __future__ import annotations

import os

import pytest

from jobmedic.live.joboutput import (
    candidate_files,
    expand,
    read_job_output,
    read_tail,
    redact,
    submit_options,
)

SCONTROL = ("JobId=77 JobName=train UserId=alice(1000) WorkDir=/scratch/alice "
            "StdErr=/scratch/alice/err-77.log StdIn=/dev/null StdOut=/scratch/alice/out-77.log")


def test_patterns_expand_like_slurm():
    job = {"job_id": "120_3", "name": "train", "user": "alice"}
    assert expand("slurm-%A_%a.out", job) == "slurm-120_3.out"
    assert expand("%x-%u-%4a-%%.log", job) == "train-alice-0003-%.log"
    assert expand("out-%j.log", {"job_id": "88"}) == "out-88.log"
    assert expand("run-%N.log", {"job_id": "1"}, "gpu-07") == "run-gpu-07.log"


@pytest.mark.parametrize("line,want", [
    ("sbatch -o logs/%j.out -e logs/%j.err run.sh", {"output": "logs/%j.out",
                                                     "error": "logs/%j.err", "script": "run.sh"}),
    ("sbatch --output=o.txt --chdir=/w job.sh a -o x", {"output": "o.txt", "chdir": "/w",
                                                        "script": "job.sh"}),
    ("sbatch -J x --wrap echo -o never; exit 1", {}),
    ("sbatch --parsable -J jm -a 1-3 --mem 4G -e e.txt job.sh", {"error": "e.txt",
                                                                 "script": "job.sh"}),
    ("sbatch -oout.log --wrap 'echo \"unbalanced", {"output": "out.log"}),
])
def test_submit_line_options(line, want):
    assert submit_options(line) == want


def test_script_directives_are_read_and_the_command_line_wins():
    script = "#!/bin/bash\n#SBATCH --output=from-script.out\n#SBATCH -e err.txt\necho hi\n" \
             "#SBATCH -o ignored-after-commands.out\n"
    assert submit_options("sbatch -o cli.out run.sh", script) == {
        "output": "cli.out", "error": "err.txt", "script": "run.sh"}


def test_where_the_files_are_in_order_of_trust(tmp_path):
    job = {"job_id": "77", "name": "train", "user": "alice", "work_dir": str(tmp_path),
           "script": "sbatch -o my-%j.log run.sh", "node_list": "n1"}
    (tmp_path / "run.sh").write_text("#!/bin/sh\n#SBATCH -e e-%x.txt\n")
    w = str(tmp_path)
    got = candidate_files(job, SCONTROL.replace("/scratch/alice", w))
    assert got == [f"{w}/out-77.log", f"{w}/err-77.log", f"{w}/my-77.log", f"{w}/e-train.txt"]
    # without scontrol: relative to WorkDir; without -o: Slurm's default names
    plain = {"job_id": "5_2", "work_dir": "/w", "script": "sbatch -a 1-3 run.sh"}
    assert candidate_files(plain) == ["/w/slurm-5_2.out"]
    assert candidate_files({"job_id": "9", "work_dir": "/w"}) == ["/w/slurm-9.out"]
    assert candidate_files({"job_id": "9"}) == []


def test_huge_file_reads_only_the_tail(tmp_path):
    p = tmp_path / "big.out"
    with open(p, "w") as f:
        f.writelines(f"step {i} loss 0.{i}\n" for i in range(200_000))
        f.write("RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB\n")
    t = read_tail(p, limit=4096)
    assert t.truncated and t.size > 3_000_000 and len(t.text) <= 4096
    assert t.text.splitlines()[0].startswith("step ")  # the cut line was dropped
    assert t.text.rstrip().endswith("Tried to allocate 2.00 GiB")


def test_binary_gone_and_odd_files_give_notes(tmp_path):
    b = tmp_path / "core.out"
    b.write_bytes(os.urandom(2000).replace(b"\n", b"") + b"\x00" * 100 +
                  b"\nSegmentation fault (core dumped)\n" + b"\x00\x01\x02" * 50)
    t = read_tail(b)
    assert "binary" in t.note and "Segmentation fault (core dumped)" in t.text
    assert "gone" in read_tail(tmp_path / "missing.out").note
    os.mkfifo(tmp_path / "fifo")
    assert "not a regular file" in read_tail(tmp_path / "fifo").note  # and it did not block


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_file_gives_a_note(tmp_path):
    p = tmp_path / "secret.out"
    p.write_text("x")
    p.chmod(0)
    assert "not readable" in read_tail(p).note


@pytest.mark.parametrize("text,leak", [
    ("export API_KEY=abcd1234secret", "abcd1234secret"),
    ("password: hunter2hunter2", "hunter2hunter2"),
    ("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.c2lnbmF0dXJlX2hlcmU",
     "eyJzdWIiOiIxMjM0In0"),
    ("git clone https://bob:s3cr3tpass@github.com/x/y", "s3cr3tpass"),
    ("aws AKIAIOSFODNN7EXAMPLE", "AKIAIOSFODNN7EXAMPLE"),
    ("token ghp_abcdefghijklmnopqrstuvwxyz0123", "ghp_abcdefghijklmnop"),
    ("-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----", "MIIEow"),
    ('{"hf_token": "hf_abcdefghijklmnopqrstu"}', "hf_abcdefghijklmnopqrstu"),
])
def test_secrets_are_redacted(text, leak):
    out = redact(text)
    assert leak not in out and "redacted" in out


def test_reading_picks_the_deciding_line(tmp_path, taxonomy):
    (tmp_path / "slurm-12.out").write_text(
        "epoch 1\nepoch 2\nslurmstepd: error: StepId=12.batch exceeded memory limit "
        "(329895936 > 157286400), being killed\nslurmstepd: error: Exceeded job memory limit\n")
    res = read_job_output({"job_id": "12", "work_dir": str(tmp_path)}, taxonomy)
    assert res.failure_type == "oom"
    assert "exceeded memory limit" in res.evidence[0]
    res = read_job_output({"job_id": "13", "work_dir": str(tmp_path)}, taxonomy)
    assert res.text == "" and any("gone" in n for n in res.notes)
