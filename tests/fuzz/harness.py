"""What the reader fuzz tests share: ingest a text (or bytes) into a fresh store, snapshot what
the store holds, the keys each record leaves, and the tallies docs/security.md reports.

A *format* is a real fixture cut into its header lines and its records (one line each for the
line formats, one JSON object each for the JSON formats) plus the fields whose values the
reader checks. The properties (tests/fuzz/test_readers.py):

* no exception escapes an ingest, whatever one record holds (crashes: goal 0);
* a bad value in a checked field of a record is a reject on that record's line;
* every other record still lands (data lost: goal 0, counted in keys of jobs, job_nodes and
  failure_events);
* a file of rejected records changes nothing already stored (snapshots before / after).
"""
from __future__ import annotations

import json
import os
import sqlite3
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jobmedic.ingest import READERS, IngestContext, run_ingest
from jobmedic.knowledge.errors import InputError
from jobmedic.knowledge.store import Store
from jobmedic.knowledge.taxonomy import Taxonomy
from jobmedic.knowledge.templates import Templates
from jobmedic.settings import config_path

TAXONOMY = Taxonomy.from_yaml(config_path("taxonomy.yaml"))
#: reader -> counter of: inputs (files ingested), bad_values (bad values planted), rejected
#: (of those, rejected on their line), crashes, lost (records lost beside the damaged one),
#: unchanged_checks, changed (stored rows changed by rejected input)
COUNTS: dict[str, Counter] = defaultdict(Counter)
SNAPSHOT_TABLES = ("jobs", "job_nodes", "failure_events", "templates", "solutions",
                   "solution_outcomes")


@dataclass
class Format:
    """A reader's real format, cut from a fixture."""

    reader: str
    header: list[str]  # lines before the first record
    records: list[Any]  # one line each (str), or one JSON value each
    render: Callable[[list[str], list[Any]], str | bytes]
    name: str = "input.txt"
    cluster: str = "fuzz"
    extra: dict[str, Any] = field(default_factory=dict)

    def text(self, records: list[Any] | None = None) -> str | bytes:
        return self.render(self.header, self.records if records is None else records)


def lines_format(reader: str, path: Path, header_lines: int, limit: int, name: str,
                 skip: Callable[[str], bool] = lambda line: False) -> Format:
    lines = path.read_text(encoding="utf-8").splitlines()
    header, body = lines[:header_lines], [ln for ln in lines[header_lines:] if not skip(ln)]
    return Format(reader, header, body[:limit], _render_lines, name)


def _render_lines(header: list[str], records: list[Any]) -> str | bytes:
    parts = [*header, *records]
    if any(isinstance(p, bytes) for p in parts):
        return b"\n".join(p if isinstance(p, bytes) else p.encode("utf-8", "surrogatepass")
                          for p in parts) + b"\n"
    return "\n".join(parts) + "\n"


def jsonl_format(path: Path, limit: int) -> Format:
    recs: list[Any] = []
    for ln in path.read_text(encoding="utf-8").splitlines():
        if ln.strip():
            try:
                recs.append(json.loads(ln))
            except ValueError:  # the fixture's own broken lines stay as they are
                recs.append(ln)
    return Format("runai", [], recs[:limit], _render_jsonl, "records.jsonl")


def _render_jsonl(_header: list[str], records: list[Any]) -> str | bytes:
    parts = [r if isinstance(r, (str, bytes)) else dumps(r) for r in records]
    return _render_lines([], parts)


def k8s_format(path: Path, limit: int, keep: Callable[[dict], bool] = lambda o: True) -> Format:
    items = [o for o in json.loads(path.read_text(encoding="utf-8"))["items"] if keep(o)]
    return Format("kubernetes", [], items[:limit], _render_list, "kubectl.json")


def _render_list(_header: list[str], records: list[Any]) -> str:
    body = ",\n".join(r if isinstance(r, str) else dumps(r, indent=1) for r in records)
    return '{"apiVersion": "v1", "kind": "List", "items": [\n' + body + "\n]}\n"


class Raw:
    """A value written into the JSON text as is (NaN, 1e400, a 70-bit integer, ...)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return f"Raw({self.text[:40]!r})"


def dumps(obj: Any, indent: int | None = None) -> str:
    """json.dumps that writes `Raw` values as their bare text."""
    raws: list[str] = []

    def default(o: Any) -> str:
        if isinstance(o, Raw):
            raws.append(o.text)
            return f"@@RAW{len(raws) - 1}@@"
        raise TypeError(type(o).__name__)

    out = json.dumps(obj, indent=indent, default=default)
    for i, text in enumerate(raws):
        out = out.replace(f'"@@RAW{i}@@"', text)
    return out


@dataclass
class Result:
    summary: Any
    keys: set[tuple]
    rejects: list[tuple[int | None, str]]
    snapshot: dict[str, list[tuple]]


def ingest(fmt: Format, data: str | bytes, tmp: Path, store: Store | None = None,
           count: bool = True) -> Result:
    """Ingest `data` as `fmt.reader` (into `store`, else a fresh in-memory one). An exception
    is tallied as a crash and re-raised."""
    path = tmp / fmt.name
    if isinstance(data, bytes):
        path.write_bytes(data)
    else:
        path.write_text(data, encoding="utf-8", errors="surrogatepass")
    own = store is None
    store = store or Store(":memory:")
    try:
        ctx = IngestContext(TAXONOMY, Templates(store.load_templates()), cluster=fmt.cluster)
        if count:
            COUNTS[fmt.reader]["inputs"] += 1
        try:
            summary = run_ingest(store, READERS[fmt.reader], str(path), ctx)
        except InputError:  # not this format: refused before anything is written
            if count:
                COUNTS[fmt.reader]["refused"] += 1
            raise
        except Exception:
            COUNTS[fmt.reader]["crashes"] += 1
            raise
        return Result(summary, keys_of(store), rejects_of(store, str(path)), snapshot(store))
    finally:
        if own:
            store.close()


def keys_of(store: Store) -> set[tuple]:
    c = store.conn
    return ({("job",) + r for r in c.execute("SELECT cluster, job_id FROM jobs")}
            | {("node",) + r for r in c.execute("SELECT cluster, job_id, node FROM job_nodes")}
            | {("event", r[0]) for r in c.execute("SELECT dedup_key FROM failure_events")})


def rejects_of(store: Store, path: str) -> list[tuple[int | None, str]]:
    return [tuple(r) for r in store.conn.execute(
        "SELECT line, reason FROM rejects WHERE file = ? ORDER BY id", (path,))]


def snapshot(store: Store) -> dict[str, list[tuple]]:
    out = {}
    for table in SNAPSHOT_TABLES:
        try:
            out[table] = sorted(map(repr, store.conn.execute(f"SELECT * FROM {table}")))
        except sqlite3.OperationalError:  # a table this schema does not have
            pass
    return out


def report() -> dict[str, dict[str, int]]:
    return {k: dict(sorted(v.items())) for k, v in sorted(COUNTS.items())}


def write_report() -> None:
    """With JM_FUZZ_OUT set (not JOBMEDIC_*: tests/conftest.py clears those), merge this process's tallies into that JSON file."""
    out = os.environ.get("JM_FUZZ_OUT")
    if not out or not COUNTS:
        return
    p = Path(out)
    merged: dict[str, Counter] = defaultdict(Counter)
    if p.exists():
        for k, v in json.loads(p.read_text()).items():
            merged[k].update(v)
    for k, v in COUNTS.items():
        merged[k].update(v)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps({k: dict(sorted(v.items())) for k, v in sorted(merged.items())},
                            indent=2) + "\n")

