"""Fix ranking that respects context (issue 12, item 4): GPU against host OOM, curated fixes as a
prior a single inferred attempt cannot outrank, and success rates per cluster pooled towards
the other clusters instead of counted blindly across hardware."""
from __future__ import annotations

import pytest

from jobmedic.knowledge import fixrank
from jobmedic.knowledge.advice import ranked_fixes
from jobmedic.knowledge.rules import RuleBase, RuleError

GPU_FIXES = {"oom.reduce_batch_size", "oom.mixed_precision", "oom.larger_gpu"}
HOST_FIXES = {"oom.raise_memory", "oom.bigmem_partition"}


def outcome(sid, job, success, *, cluster="c", inferred=1, gpu=0):
    return (sid, cluster, job, job + "r", "p", success, "t", 100, None, inferred, None,
            f"job:{cluster}:{job}:{sid}", "q", gpu, None)


@pytest.fixture
def rules(taxonomy, remediations):
    return RuleBase.from_dict(remediations, taxonomy.codes)


@pytest.fixture
def sid(store, rules):
    store.seed_solutions([(s.failure_type, s.id, None) for s in rules.for_type("oom")])
    store.seed_solutions([("oom", "oom.image_changed", "image_changed")], source="history")
    ids = store.solution_rowids("oom")
    return lambda name: ids[("oom", name)]


@pytest.mark.parametrize("text,kind", [
    (("torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 79.2 GiB "
     "total capacity)"), "gpu"),
    ("torch.cuda.OutOfMemoryError: CUDA error: out of memory", "gpu"),
    (("RuntimeError: CUDA error: out of memory\nCUDA kernel errors might be asynchronously "
     "reported"), "gpu"),
    (("jaxlib.xla_extension.XlaRuntimeError: RESOURCE_EXHAUSTED: Out of memory while trying to "
     "allocate 1.5GiB on GPU:0"), "gpu"),
    (("tensorflow ResourceExhaustedError: OOM when allocating tensor with shape[64,512] on "
     "/job:localhost/replica:0/task:0/device:GPU:0"), "gpu"),
    (("slurmstepd: error: Detected 1 oom_kill event in StepId=123.batch. Some of the step tasks "
     "have been OOM Killed."), "host"),
    ("Last State: Terminated\n  Reason: OOMKilled\n  Exit Code: 137", "host"),
    ("OUT_OF_MEMORY", "host"),
    ("MemoryError: Unable to allocate 3.2 GiB for an array", "host"),
    # the root cause comes first: a CUDA OOM, then the job killed for it
    (("CUDA out of memory. Tried to allocate 20 MiB\nslurmstepd: error: Detected 1 oom_kill "
     "event"), "gpu"),
    ("Segmentation fault (core dumped)", None),
    ("", None),
])
def test_memory_kind(text, kind):
    assert fixrank.memory_kind(text) == kind


CUDA = ("torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a "
        "total capacity of 39.39 GiB of which 1.2 GiB is free.")
GPU_JOB = {"cluster": "c", "queue": "q", "req_gpus": 1, "source": "slurm"}
CPU_JOB = {"cluster": "c", "queue": "q", "req_gpus": 0, "source": "slurm"}


@pytest.mark.parametrize("case,text,job,gpu,top,absent", [
    # a CUDA OOM: GPU fixes, never --mem, even for a job whose request shows no GPU
    ("cuda text", CUDA, None, None, GPU_FIXES, HOST_FIXES),
    ("cuda text, gpu job", CUDA, GPU_JOB, True, GPU_FIXES, HOST_FIXES),
    ("cuda in the job's own state", None, GPU_JOB | {"reason": "CUDA out of memory"}, True,
     GPU_FIXES, HOST_FIXES),
    # a host OOM on a GPU job: the host fixes first, the GPU ones after them
    ("host oom, gpu job", "Reason: OOMKilled", GPU_JOB, True, HOST_FIXES, set()),
    ("slurm OUT_OF_MEMORY, cpu job", None, CPU_JOB | {"raw_state": "OUT_OF_MEMORY"}, False,
     HOST_FIXES, GPU_FIXES),
])
def test_gpu_and_host_oom_get_their_own_fixes(store, rules, sid, case, text, job, gpu, top, absent):
    # history that loves --mem: it must still not be offered for a CUDA OOM
    store.add_outcomes([outcome(sid("oom.raise_memory"), f"m{i}", int(i < 40)) for i in range(50)])
    fixes = ranked_fixes(store, rules, "oom", None, "slurm", gpu, job, text)
    ids = [f["id"] for f in fixes]
    assert ids[0] in top, (case, ids)
    assert not absent & set(ids), (case, ids)
    n_top = len([i for i in ids if i in top])
    assert set(ids[:n_top]) <= top, (case, ids)  # the matching kind leads, all of it


def test_a_single_inferred_attempt_does_not_outrank_curated_fixes(store, rules, sid):
    store.add_outcomes([outcome(sid("oom.image_changed"), "x1", 1)])
    fixes = ranked_fixes(store, rules, "oom", None, "slurm", True)
    ids = [f["id"] for f in fixes]
    assert ids[-1] == "oom.image_changed"  # 1 of 1 (Wilson 0.21) used to rank first
    assert ids[:-1] == [s.id for s in rules.for_type("oom")]  # curated, in rule-base order
    # evidence does count: 20 of 20 learned successes lead
    store.add_outcomes([outcome(sid("oom.image_changed"), f"y{i}", 1) for i in range(20)])
    assert ranked_fixes(store, rules, "oom", None, "slurm", True)[0]["id"] == "oom.image_changed"


@pytest.mark.parametrize("cluster,first", [("x", "oom.raise_memory"), ("y", "oom.bigmem_partition")])
def test_rates_per_cluster_not_pooled_across_hardware(store, rules, sid, cluster, first):
    mem, big = sid("oom.raise_memory"), sid("oom.bigmem_partition")
    rows = [outcome(mem, f"x{i}", int(i < 9), cluster="x") for i in range(10)]
    rows += [outcome(mem, f"y{i}", int(i < 1), cluster="y") for i in range(10)]
    rows += [outcome(big, f"bx{i}", int(i < 5), cluster="x") for i in range(10)]
    rows += [outcome(big, f"by{i}", int(i < 5), cluster="y") for i in range(10)]
    store.add_outcomes(rows)
    job = CPU_JOB | {"cluster": cluster, "raw_state": "OUT_OF_MEMORY"}
    fixes = ranked_fixes(store, rules, "oom", None, "slurm", False, job)
    assert fixes[0]["id"] == first
    top = fixes[0]
    assert top["posterior"]["cluster"] == cluster and "this cluster" in top["posterior"]["basis"]
    assert (top["successes"], top["attempts"]) == (10, 20)  # both pool to 10 of 20 overall


def test_a_cluster_without_attempts_borrows_the_others(store, rules, sid):
    mem = sid("oom.raise_memory")
    store.add_outcomes([outcome(mem, f"x{i}", int(i < 18), cluster="x") for i in range(20)])
    job = CPU_JOB | {"cluster": "new", "raw_state": "OUT_OF_MEMORY"}
    top = ranked_fixes(store, rules, "oom", None, "slurm", False, job)[0]
    assert top["id"] == "oom.raise_memory" and top["posterior"]["mean"] > 0.7
    # ... but with less confidence than on the cluster that has the evidence
    there = ranked_fixes(store, rules, "oom", None, "slurm", False, job | {"cluster": "x"})[0]
    assert there["score"] > top["score"]


@pytest.mark.parametrize("counts,mean,strength", [
    ([], 0.5, fixrank.PRIOR_STRENGTH),
    ([(8, 10), (2, 10)], 11 / 22, fixrank.PRIOR_STRENGTH),  # too few rich fixes: pooled rate
    ([(50, 100), (50, 100), (50, 100)], 0.5, 50.0),  # no spread beyond noise: a strong prior
    ([(90, 100), (10, 100), (50, 100)], 0.5, None),  # a wide spread: a weak prior
])
def test_fit_prior(counts, mean, strength):
    m, s = fixrank.fit_prior(counts)
    assert m == pytest.approx(mean, abs=1e-3)
    if strength is not None:
        assert s == pytest.approx(strength)
    else:
        assert 2.0 <= s < 5.0


def test_beta_quantile_matches_known_values():
    assert fixrank.beta_quantile(2, 2, 0.05) == pytest.approx(0.1354, abs=1e-3)
    assert fixrank.beta_quantile(40, 10, 0.05) == pytest.approx(0.7014, abs=1e-3)
    assert fixrank.beta_quantile(1, 1, 0.5) == pytest.approx(0.5, abs=1e-3)


def test_memory_field_is_validated(taxonomy, remediations):
    import copy

    bad = copy.deepcopy(remediations)
    bad["solutions"]["oom"][0]["memory"] = "vram"
    with pytest.raises(RuleError, match="memory must be"):
        RuleBase.from_dict(bad, taxonomy.codes)


def test_the_report_says_which_memory_and_how_it_ranks(store, rules, sid):
    from jobmedic.reports.remediate import render

    store.add_outcomes([outcome(sid("oom.reduce_batch_size"), f"b{i}", 1, cluster="x")
                        for i in range(4)])
    job = GPU_JOB | {"cluster": "x"}
    fixes = ranked_fixes(store, rules, "oom", None, "slurm", True, job, CUDA)
    text = render({"failure_type": "oom", "blame": "job", "fixes": fixes})
    assert "The GPU ran out of memory" in text and "--mem=" not in text
    assert "on cluster x, the other clusters as prior" in text
