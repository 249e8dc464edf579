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
