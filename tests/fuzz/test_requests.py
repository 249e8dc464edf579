"""Property tests over the actions' request models (the validation layer's side of issue 11):
a bad number, time or text in any field is a field error (a 4xx envelope, never an internal
error), and a write given one changes nothing stored."""
from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jobmedic.knowledge.store import Store
from jobmedic.tools import run_action
from tests.fuzz.harness import COUNTS, snapshot
from tests.tools.analyze_data import context, fill

EXAMPLES = int(os.environ.get("JM_FUZZ_EXAMPLES", "12"))
BAD_TIME = ["inf", "-inf", "nan", "1e15", "1e400", "0001-13-01", "yesterday-ish", "\u0000"]
BAD_STORED_TIME = BAD_TIME + ["1e10", "2999-01-01T00:00:00", "-5"]  # outside 1970..now+1y
BAD_NUMBER = [float("inf"), float("nan"), -1, 2**70, "many", 1e400]
BAD_TEXT = ["a\u0000b", "\ud800x", {"x": 1}, [1]]
# action -> a valid request, and the fields to damage with their bad values
ACTIONS = {
    "stats": ({"action": "stats"}, {"as_of": BAD_TIME, "lookback_days": BAD_NUMBER,
                                    "project": BAD_TEXT}),
    "analyze": ({"action": "analyze"}, {"as_of": BAD_TIME, "lookback_days": BAD_NUMBER,
                                        "max_findings": BAD_NUMBER, "node": BAD_TEXT}),
    "predict": ({"action": "predict", "user": "u1"},
                {"submit_time": BAD_TIME, "req_cpus": BAD_NUMBER, "req_gpus": BAD_NUMBER,
                 "req_mem_mb": BAD_NUMBER, "user": BAD_TEXT}),
    "diagnose": ({"action": "diagnose", "text": "CUDA out of memory"}, {"text": BAD_TEXT}),
    "remediate": ({"action": "remediate", "failure_type": "oom"}, {"failure_type": BAD_TEXT}),
    "record_failure": ({"action": "record_failure", "job_name": "j", "project": "p",
                        "error_message": "Killed: out of memory"},
                       {"timestamp": BAD_STORED_TIME, "gpu_count": BAD_NUMBER,
                        "error_message": BAD_TEXT, "job_name": BAD_TEXT}),
    "record_outcome": ({"action": "record_outcome", "failure_type": "oom",
                        "solution": "more memory", "success": True},
                       {"solution": BAD_TEXT, "note": BAD_TEXT, "success": BAD_NUMBER[:2]}),
}


@pytest.fixture(scope="module")
def store():
    s = Store(":memory:")
    fill(s)
    yield s
    s.close()


@pytest.mark.parametrize("action", sorted(ACTIONS))
def test_bad_field_is_a_4xx_and_changes_nothing(action, store):
    valid, fields = ACTIONS[action]
    ctx = context(store)

    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(st.data())
    def check(data):
        field = data.draw(st.sampled_from(sorted(fields)), label="field")
        bad = data.draw(st.sampled_from(fields[field]), label="value")
        before = snapshot(store)
        COUNTS[f"action:{action}"]["inputs"] += 1
        res = run_action(dict(valid, **{field: bad}), ctx)
        COUNTS[f"action:{action}"]["crashes"] += res.status == "error" and \
            res.error.type == "internal_error"
        changed = snapshot(store) != before
        COUNTS[f"action:{action}"]["changed"] += changed
        assert res.status == "error", (field, bad, res.status)
        assert res.error.type != "internal_error", res.error
        assert res.error.field == field, (bad, res.error)  # a field error, before anything ran
        assert not changed

    check()


def test_the_valid_requests_are_valid(store):
    """The base requests pass, so each failure above is the bad field's doing."""
    ctx = context(store)
    for action, (valid, _fields) in ACTIONS.items():
        if action.startswith("record_"):
            continue  # writes: checked above, not written here
        res = run_action(valid, ctx)
        assert res.status in ("ok", "no_data") or res.error.field is None, (action, res.error)
