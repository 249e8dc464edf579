"""Every analyzer threshold in jobmedic/configs/jobmedic.yaml is a constructor argument, and a
typo is refused naming the accepted keys."""
from __future__ import annotations

import pytest
import yaml

from jobmedic.analyzers import ANALYZERS, AnalyzerConfigError, Ranking, build, ranking
from jobmedic.settings import config_path


def test_config_section_builds_every_analyzer():
    opts = yaml.safe_load(config_path("jobmedic.yaml").read_text())["analyzers"]
    assert set(opts) == {a.name for a in ANALYZERS} | {Ranking.name}  # + the ranking weights
    built = build(opts)
    hot = next(a for a in built if a.name == "hotspots")
    assert hot.min_exposure == opts["hotspots"]["min_exposure"]
    assert hot.dims == tuple(opts["hotspots"]["dims"])
    assert ranking(opts).high_share == opts["severity"]["high_share"]


def test_unknown_option_is_refused():
    with pytest.raises(AnalyzerConfigError, match="min_exposure"):
        build({"hotspots": {"min_exposur": 5}})
    with pytest.raises(ValueError, match="dims"):
        build({"hotspots": {"dims": ["rack"]}})
    with pytest.raises(AnalyzerConfigError, match="user_weight"):
        build({"severity": {"user_weight_": 1}})


def test_new_type_history_and_ranking_prior_come_from_the_config(store):
    """The "new failure type" history thresholds and the hotspot prior are set in the YAML
    (documented defaults) and reach the analyzers; a configured requirement changes the result."""
    from tests.analyzers.planted import Planted
    from tests.analyzers.test_patterns_temporal import _new_type_store

    opts = yaml.safe_load(config_path("jobmedic.yaml").read_text())["analyzers"]
    assert (opts["patterns"]["new_history_days"], opts["patterns"]["new_history_records"]) == (14, 200)
    assert (opts["hotspots"]["prior"], opts["hotspots"]["rank_by"]) == ("split", "shrunk_mean")
    pat = next(a for a in build(opts) if a.name == "patterns")
    assert (pat.new_history_days, pat.new_history_records) == (14, 200)
    _new_type_store(store, history=True)  # 20 days and 200 jobs of history before the window
    window = Planted(store).window

    def new(o):
        p = next(a for a in build(o) if a.name == "patterns")
        return [f for f in p.run(store, window, None) if f.kind == "new_type"]

    assert [f.evidence["failure_type"] for f in new(opts)] == ["oom"]
    stricter = {**opts, "patterns": {**opts["patterns"], "new_history_days": 30}}
    assert new(stricter) == []  # 20 days of history is not 30
    with pytest.raises(ValueError, match="prior"):
        build({"hotspots": {"prior": "flat"}})
