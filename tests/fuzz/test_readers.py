"""Property tests over every reader (Hypothesis): whatever one record holds, no exception
escapes; a bad value in a checked field is a reject on that record's line; the other records
all land; a file of rejected records changes nothing already stored. Counts in COUNTS
(docs/security.md)."""
from __future__ import annotations

import json
import os
from functools import cache

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jobmedic.knowledge.errors import InputError
from jobmedic.knowledge.store import Store
from tests.fuzz.formats import formats
from tests.fuzz.harness import COUNTS, Format, Raw, dumps, ingest, snapshot

FORMATS = formats()
NAMES = sorted(FORMATS)
#: examples per property and reader: modest in `make test` (the whole suite well under a
#: minute); JM_FUZZ_EXAMPLES=200 for the figures of docs/security.md
EXAMPLES = int(os.environ.get("JM_FUZZ_EXAMPLES", "12"))
FAST = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=8), c, max_size=3),
    max_leaves=8)


def line_of(fmt: Format, records: list, k: int) -> int:
    """The line record k starts on in fmt.text(records)."""
    if fmt.reader == "kubernetes":
        text = fmt.text(records)
        marker = fmt.text(records[:k] + ["@@K@@"])
        return text[:marker.index("@@K@@")].count("\n") + 1
    return len(fmt.header) + k + 1


@cache
def _baseline(name: str, tmp: str) -> frozenset:
    from pathlib import Path
    fmt, _ = FORMATS[name]
    return frozenset(ingest(fmt, fmt.text(), Path(tmp), count=False).keys)


@cache
def _alone_keys(name: str, k: int, tmp: str) -> frozenset:
    """The keys record k leaves when it is ingested on its own (what damaging it may lose)."""
    from pathlib import Path
    fmt, _ = FORMATS[name]
    try:
        return frozenset(ingest(fmt, fmt.text([fmt.records[k]]), Path(tmp), count=False).keys)
    except InputError:
        return frozenset()


def _lost(fmt: Format, name: str, k: int, keys: set, tmp) -> int:
    base = _baseline(name, str(tmp.parent / f"base-{name}"))
    if fmt.reader == "eagle":  # repeated ids are numbered by file order: compare counts
        jobs = sum(1 for key in keys if key[0] == "job")
        return max(0, sum(1 for key in base if key[0] == "job") - 1 - jobs)
    return len(set(base) - _alone_keys(name, k, str(tmp.parent / f"base-{name}")) - keys)


def _case(tmp_path_factory, name: str):
    tmp = tmp_path_factory.mktemp(name)
    (tmp.parent / f"base-{name}").mkdir(exist_ok=True)
    return tmp


@pytest.mark.parametrize("name", NAMES)
def test_bad_value_is_a_reject_on_its_line_and_nothing_else_is_lost(name, tmp_path_factory):
    fmt, targets = FORMATS[name]
    tmp = _case(tmp_path_factory, name)

    @FAST
    @given(st.data())
    def check(data):
        target = data.draw(st.sampled_from(targets), label="field")
        ks = [k for k in range(1, len(fmt.records)) if target.applies(fmt.records[k])]
        if not ks:
            return
        k = data.draw(st.sampled_from(ks), label="record")
        bad = data.draw(st.sampled_from(target.bad), label="value")
        records = list(fmt.records)
        records[k] = target.put(records[k], bad)
        res = ingest(fmt, fmt.text(records), tmp)
        line = line_of(fmt, records, k)
        COUNTS[fmt.reader]["bad_values"] += 1
        hit = any(n == line for n, _ in res.rejects)
        COUNTS[fmt.reader]["rejected"] += hit
        lost = _lost(fmt, name, k, res.keys, tmp)
        COUNTS[fmt.reader]["lost"] += lost
        assert hit, (target.field, bad, line, res.rejects)
        assert lost == 0, (target.field, bad)

    check()


def _garbage(fmt: Format):
    if fmt.reader == "kubernetes":  # an array: damage stays valid JSON (see docs/security.md)
        return (json_values | st.builds(lambda v: {"kind": "Pod", "metadata": v}, json_values)
                ).map(dumps)
    if fmt.reader == "runai":
        return st.text(max_size=200) | json_values.map(json.dumps) | st.binary(max_size=100)
    return st.text(max_size=200) | st.binary(max_size=200)


@pytest.mark.parametrize("name", NAMES)
def test_any_damage_to_one_record_never_crashes_or_loses_the_others(name, tmp_path_factory):
    fmt, _ = FORMATS[name]
    tmp = _case(tmp_path_factory, name)

    @FAST
    @given(st.data())
    def check(data):
        k = data.draw(st.integers(1, len(fmt.records) - 1), label="record")
        junk = data.draw(_garbage(fmt), label="junk")
        if isinstance(junk, str):  # one record stays one line
            junk = junk.replace("\n", " ").replace("\r", " ")
        elif isinstance(junk, bytes):
            junk = junk.replace(b"\n", b" ").replace(b"\r", b" ")
        records = list(fmt.records)
        records[k] = junk
        res = ingest(fmt, fmt.text(records), tmp)
        lost = _lost(fmt, name, k, res.keys, tmp)
        COUNTS[fmt.reader]["lost"] += lost
        assert lost == 0, junk

    check()


@pytest.mark.parametrize("name", NAMES)
def test_rejected_input_changes_nothing_stored(name, tmp_path_factory):
    fmt, targets = FORMATS[name]
    tmp = _case(tmp_path_factory, name)
    store = Store(":memory:")
    ingest(fmt, fmt.text(), tmp, store=store, count=False)

    @settings(max_examples=max(3, EXAMPLES // 2), deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(st.data())
    def check(data):
        before = snapshot(store)
        bad_records = []
        for _ in range(data.draw(st.integers(1, 4), label="n")):
            target = data.draw(st.sampled_from(targets))
            ks = [k for k in range(len(fmt.records)) if target.applies(fmt.records[k])]
            if not ks:
                continue
            rec = fmt.records[data.draw(st.sampled_from(ks))]
            bad_records.append(target.put(rec, data.draw(st.sampled_from(target.bad))))
        if not bad_records:
            return
        try:
            res = ingest(fmt, fmt.text(bad_records), tmp, store=store)
        except InputError:  # refused before anything was written (e.g. a bad first line)
            res = None
        COUNTS[fmt.reader]["unchanged_checks"] += 1
        after = snapshot(store)
        changed = sum(before[t] != after[t] for t in before)
        COUNTS[fmt.reader]["changed"] += changed
        assert changed == 0, [t for t in before if before[t] != after[t]]
        if res is not None:
            assert res.summary.rejected >= len(bad_records)
            assert res.summary.status == "failed"

    try:
        check()
    finally:
        store.close()


def test_raw_values_are_written_bare():
    assert dumps({"a": Raw("NaN"), "b": [Raw("1e400")]}) == '{"a": NaN, "b": [1e400]}'
