"""The fuzz suite's tallies go to JM_FUZZ_OUT (a JSON file) when it is set."""
from __future__ import annotations

import pytest

from tests.fuzz.harness import write_report


@pytest.fixture(scope="session", autouse=True)
def _fuzz_report():
    yield
    write_report()
