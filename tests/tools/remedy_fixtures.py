"""A tool context over an in-memory store with the real taxonomy and rule base."""
from __future__ import annotations

import pytest
import yaml

from jobmedic.knowledge.rules import RuleBase
from jobmedic.settings import config_path
from jobmedic.tools.base import ToolContext


@pytest.fixture(scope="session")
def remediations():
    with open(config_path("remediations.yaml"), encoding="utf-8") as fh:
        return yaml.safe_load(fh)


@pytest.fixture
def tctx(store, taxonomy, remediations):
    return ToolContext(store=store, taxonomy=taxonomy,
                       rules=RuleBase.from_dict(remediations, taxonomy.codes),
                       resubmit_window_h=72, default_cluster="default")
