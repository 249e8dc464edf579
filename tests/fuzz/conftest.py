"""The fuzz suite's tallies go to JOBMEDIC_FUZZ_OUT (a JSON file) when it is set."""
from __future__ import annotations

from tests.fuzz.harness import write_report


def pytest_sessionfinish(session, exitstatus):
    write_report()
