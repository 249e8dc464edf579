"""The rule base: every taxonomy code has curated, well-formed solutions; validation names the
broken field; free-text fixes match the right solution."""
from __future__ import annotations

import copy

import pytest
import yaml

from jobmedic.knowledge.rules import CHANGES, RuleBase, RuleError
from jobmedic.settings import config_path


@pytest.fixture(scope="module")
def raw():
    with open(config_path("remediations.yaml"), encoding="utf-8") as fh:
        return yaml.safe_load(fh)


@pytest.fixture(scope="module")
def rules(raw, taxonomy):
    return RuleBase.from_dict(raw, taxonomy.codes)


def test_every_code_has_solutions(rules, taxonomy):
    for code in taxonomy.codes:
        sols = rules.for_type(code)
        assert sols, code
        for s in sols:
            assert s.title and s.why and s.kind and s.variants
            assert s.id.startswith(code + ".")


def test_concrete_changes_and_parameters(rules):
    mem = rules.get("oom.raise_memory")
    assert mem.change["multiplier"] == 2.0 and "--mem" in mem.variants["slurm"]
    assert "resources.limits.memory" in mem.variants["kubernetes"] and mem.applies_to == "both"
    assert "--time" in rules.get("timeout.raise_time").variants["slurm"]
    assert "imagePullSecrets" in rules.get("image_pull.add_pull_secret").variants["kubernetes"]
    assert "--exclude" in rules.get("gpu_error.exclude_node").variants["slurm"]
    assert "--requeue" in rules.get("timeout.checkpoint_restart").variants["slurm"]
    assert rules.get("gpu_error.exclude_node").gpu_only
    pull = rules.get("image_pull.add_pull_secret")
    assert pull.applies_to == "kubernetes" and not pull.applies("slurm")
    assert rules.get("crash_loop.fix_command").applies_to == "kubernetes"


def test_filters_platform_and_gpu(rules):
    cpu = [s.id for s in rules.for_type("oom", "slurm", gpu=False)]
    assert "oom.raise_memory" in cpu and "oom.reduce_batch_size" not in cpu
    assert "oom.reduce_batch_size" in [s.id for s in rules.for_type("oom", gpu=True)]
    assert next(s.id for s in rules.for_type("image_pull", "kubernetes")) == "image_pull.fix_image_tag"


def test_learned_from_maps_changes(rules):
    assert rules.learned_from("oom", "memory_raised").id == "oom.raise_memory"
    assert rules.learned_from("timeout", "time_raised").id == "timeout.raise_time"
    assert rules.learned_from("node_failure", "node_excluded").id == "node_failure.exclude_node"
    assert rules.learned_from("image_pull", "image_changed").id == "image_pull.fix_image_tag"
    assert rules.learned_from("oom", "image_changed") is None
    for s in rules.solutions.values():
        assert set(s.learn_from) <= set(CHANGES)


@pytest.mark.parametrize("text,code,expected,how", [
    ("oom.raise_memory", "oom", "oom.raise_memory", "id"),
    ("raise_memory", "oom", "oom.raise_memory", "id"),
    ("Raise the memory request", "oom", "oom.raise_memory", "title"),
    ("doubled the memory", "oom", "oom.raise_memory", "keyword"),
    ("resubmitted with --mem=16G", "oom", "oom.raise_memory", "keyword"),
    ("smaller batch size", "oom", "oom.reduce_batch_size", "keyword"),
    ("bumped the walltime", "timeout", "timeout.raise_time", "keyword"),
    ("excluded node gpu-03", "gpu_error", "gpu_error.exclude_node", "keyword"),
    ("added imagePullSecrets", "image_pull", "image_pull.add_pull_secret", "keyword"),
    ("raise_memory", "timeout", None, "none"),
    ("prayed to the scheduler", "oom", None, "none"),
])
def test_match_free_text(rules, text, code, expected, how):
    sol, got = rules.match(text, code)
    assert (sol.id if sol else None, got) == (expected, how)


@pytest.mark.parametrize("mutate,needle", [
    (lambda r: r["solutions"]["oom"][0].pop("title"), "'title' is required"),
    (lambda r: r["solutions"]["oom"][0].update(id="timeout.x"), "id must look like 'oom."),
    (lambda r: r["solutions"]["oom"][0].update(learn_from=["magic"]), "learn_from ['magic']"),
    (lambda r: r["solutions"]["oom"][0].pop("slurm") and r["solutions"]["oom"][0].pop("kubernetes"),
     "give the change for 'slurm'"),
    (lambda r: r["solutions"]["oom"][0].update(colour="red"), "unknown fields ['colour']"),
    (lambda r: r["solutions"].pop("segfault"), "no solutions for taxonomy codes ['segfault']"),
    (lambda r: r["solutions"].update(bogus=[{**r["solutions"]["oom"][0], "id": "bogus.x"}]),
     "codes not in the taxonomy: ['bogus']"),
    (lambda r: r["solutions"]["timeout"].append(dict(r["solutions"]["timeout"][0])), "duplicate solution id"),
])
def test_validation_names_the_problem(raw, taxonomy, mutate, needle):
    broken = copy.deepcopy(raw)
    mutate(broken)
    with pytest.raises(RuleError) as ei:
        RuleBase.from_dict(broken, taxonomy.codes)
    assert needle in str(ei.value)
