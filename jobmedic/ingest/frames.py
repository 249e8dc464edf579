"""Vectorised helpers shared by the tabular trace readers (google2011, swf, eagle, lanl).

`line_chunks` cuts a text stream into chunks of lines with their line numbers and sets aside
the lines with the wrong number of fields (they become rejects with their line number, the
rest of the chunk still parses). `parse_chunk` hands the good lines to pandas' C parser in
one call. The column helpers turn pandas columns into Python lists with ``None`` for
missing values, and `rows` zips them into tuples in a table's column order, so a reader
builds a whole batch of `jobs` tuples without a per-row Python function.
"""
from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Sequence
from itertools import islice, repeat
from typing import Any, TextIO

import numpy as np
import pandas as pd

from jobmedic.core.validate import MAX_LINE, epoch_max
from jobmedic.knowledge.migrations import JOB_COLUMNS


class LineChunk:
    """A run of input lines: the good ones (text, line numbers) and the rejected ones."""

    __slots__ = ("lines", "numbers", "read", "rejects")

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.numbers: list[int] = []
        self.rejects: list[tuple[int, str, str]] = []  # (line number, reason, raw)
        self.read = 0


def line_chunks(stream: TextIO, n_fields: int, chunk_lines: int, first_lineno: int = 1,
                sep: str | None = ",", comment: str | None = None, pending: Sequence[str] = (),
                line_chars: int = 64) -> Iterator[LineChunk]:
    """Yield chunks of about `chunk_lines` lines (`line_chars` is the expected line length).

    Lines whose field count is not `n_fields` are rejected with their number; fields are
    counted by separators, so this is for unquoted formats (``sep=None``: runs of whitespace).
    Blank lines and lines starting with `comment` are dropped. `pending` are lines already
    read off the stream (a sniffed first line) that come first; `first_lineno` is the number
    of the first line yielded.
    """
    want = n_fields - 1
    lineno = first_lineno - 1
    first = list(pending)
    how = "whitespace" if sep is None else f"'{sep}'"
    while True:
        block = stream.readlines(chunk_lines * line_chars)  # a size hint in characters
        if first:
            block, first = first + block, []
        if not block:
            return
        chunk = LineChunk()
        chunk.read = len(block)
        if sep is None:
            counts = [len(line.split()) - 1 for line in block]
        else:
            counts = [line.count(sep) for line in block]
        if comment is not None and comment in "".join(block):
            counts = [-2 if line.lstrip().startswith(comment) else c
                      for line, c in zip(block, counts)]
        if max(map(len, block)) > MAX_LINE:
            counts = [-3 if len(line) > MAX_LINE else c for line, c in zip(block, counts)]
        for i, (line, c) in enumerate(zip(block, counts)):
            n = lineno + i + 1
            if c == want:
                chunk.lines.append(line)
                chunk.numbers.append(n)
                continue
            text = line.rstrip("\r\n")
            if c == -2 or not text.strip():
                continue
            why = (f"line longer than {MAX_LINE:,} characters" if c == -3 else
                   f"expected {n_fields} {how}-separated fields, found {c + 1}")
            chunk.rejects.append((n, why, text[:2000]))
        lineno += len(block)
        yield chunk


def csv_chunks(stream: TextIO, names: Sequence[str], chunk_rows: int, first_lineno: int = 2
               ) -> Iterator[tuple[pd.DataFrame, LineChunk]]:
    """Quoted CSV (Excel style) in chunks: a frame of the rows with the right number of fields
    (all text, ``_line`` = the line of each row) and the chunk's rejects. The csv module does
    the quoting in C; conversions stay vectorised on the frame. A record is one line: a row
    whose quote does not close on its line is rejected alone (it never swallows the rows
    after it), and so is a line the csv module cannot read."""
    n = len(names)
    lineno = first_lineno - 1
    while True:
        block = stream.readlines(chunk_rows * 80)  # a size hint in characters
        if not block:
            return
        chunk = LineChunk()
        chunk.read = len(block)
        good: list[list[str]] = []
        i = 0  # the next line of the block to read
        while i < len(block):
            reader = csv.reader(islice(block, i, None))
            base = i
            try:
                for row in reader:
                    first, i = i, base + reader.line_num
                    if i - first > 1:  # an open quote ran on into the next lines
                        why = "unbalanced quote: the field does not close on its line"
                        chunk.rejects.append((lineno + first + 1, why,
                                              block[first].rstrip("\r\n")[:2000]))
                        i = first + 1
                        break
                    if len(row) == n:
                        good.append(row)
                        chunk.numbers.append(lineno + first + 1)
                    elif any(f.strip() for f in row):
                        why = f"expected {n} comma-separated fields, found {len(row)}"
                        chunk.rejects.append((lineno + first + 1, why, ",".join(row)[:2000]))
                else:
                    i = len(block)
            except csv.Error as exc:
                chunk.rejects.append((lineno + i + 1, f"bad CSV: {exc}", block[i][:2000]))
                i += 1
        lineno += len(block)
        df = pd.DataFrame(good, columns=list(names), dtype=object)
        df["_line"] = np.asarray(chunk.numbers, dtype=np.int64)
        yield df, chunk


def parse_chunk(chunk: LineChunk, names: Sequence[str], dtype: Any = None,
                sep: str | None = ",") -> pd.DataFrame:
    """Parse the good lines of a chunk with pandas' C parser; a `_line` column holds the numbers."""
    if not chunk.lines:
        df = pd.DataFrame({n: pd.Series(dtype=object) for n in names})
    else:
        df = pd.read_csv(io.StringIO("".join(chunk.lines)), sep=sep or r"\s+", header=None,
                         names=list(names),
                         dtype=dtype, engine="c", skip_blank_lines=False, keep_default_na=False,
                         na_values=[""], quoting=3)  # only an empty field is missing: "nan"
                         # or "NULL" in a number column is a reject (numeric)
    df["_line"] = np.asarray(chunk.numbers, dtype=np.int64)
    return df


def numeric(df: pd.DataFrame, columns: Iterable[str], required: Iterable[str] = ()
            ) -> tuple[pd.DataFrame, list[tuple[int, str, str]]]:
    """Coerce `columns` to numbers; return the frame without the rows whose values are not
    numbers (or missing in a `required` column), and those rows as rejects (line, reason, raw)."""
    bad = np.zeros(len(df), dtype=bool)
    reasons: dict[int, str] = {}
    required = set(required)
    for col in columns:
        s = df[col]
        if s.dtype.kind not in "iufb":
            present = s.notna() & (s.astype(object).fillna("").astype(str).str.strip() != "")
            num = pd.to_numeric(s.where(present), errors="coerce")
            wrong = (num.isna() & present).to_numpy()
            for i in np.flatnonzero(wrong & ~bad):
                reasons[int(i)] = f"{col}: {str(s.iloc[i])[:40]!r} is not a number"
            bad |= wrong
            df[col] = num
        if col in required:
            missing = df[col].isna().to_numpy() & ~bad
            for i in np.flatnonzero(missing):
                reasons[int(i)] = f"{col}: missing"
            bad |= missing
    if not bad.any():
        return df, []
    lines = df["_line"].to_numpy()
    out = [(int(lines[i]), reasons[i], "") for i in sorted(reasons)]
    return df[~bad], out


def in_range(df: pd.DataFrame, bounds: dict[str, tuple[float, float]], unit: str = ""
             ) -> tuple[pd.DataFrame, list[tuple[int, str, str]]]:
    """The vectorised form of core/validate.py's number checks: each column's present values
    must be finite and within its (lo, hi); the rows that are not are returned as rejects
    (line, reason, raw) and dropped. Missing values (NaN from an empty field) pass."""
    if not len(df):
        return df, []
    bad = np.zeros(len(df), dtype=bool)
    out: list[tuple[int, str, str]] = []
    lines = df["_line"].to_numpy()
    for col, (lo, hi) in bounds.items():
        arr = df[col].to_numpy(dtype=np.float64)
        with np.errstate(invalid="ignore"):
            wrong = ~np.isnan(arr) & ~((arr >= lo) & (arr <= hi)) & ~bad
        if wrong.any():
            for i in np.flatnonzero(wrong).tolist():
                v = float(arr[i])
                why = ("is not a finite number" if not np.isfinite(v) else
                       f"is outside [{_num(lo)}, {_num(hi)}]{unit}")
                out.append((int(lines[i]), f"{col}: {_num(v)} {why}", ""))
            bad |= wrong
    return (df[~bad] if bad.any() else df), out


def epochs_in_range(df: pd.DataFrame, columns: Iterable[str]
                    ) -> tuple[pd.DataFrame, list[tuple[int, str, str]]]:
    """Epoch-second columns between 1970 and now + 1 year (see core/validate.py)."""
    top = float(epoch_max())
    return in_range(df, {c: (0.0, top) for c in columns}, unit=" (epoch s: 1970 .. now + 1 year)")


def _num(x: float) -> str:
    if not np.isfinite(x):
        return "nan" if np.isnan(x) else ("inf" if x > 0 else "-inf")
    return f"{x:.0f}" if float(x).is_integer() else f"{x:g}"


def rejects_of(chunk: LineChunk, bad: list[tuple[int, str, str]], source: str, file: str
               ) -> list[tuple]:
    """The `rejects` rows of a chunk: its malformed lines plus `bad` (line, reason, raw) rows
    found while parsing, each with its raw text."""
    raw = dict(zip(chunk.numbers, chunk.lines)) if bad else {}
    out = [(source, file, n, reason, text) for n, reason, text in chunk.rejects]
    out += [(source, file, n, reason, text or raw.get(n, "").rstrip("\r\n")) for n, reason, text in bad]
    return out


# -- columns as Python lists ----------------------------------------------------------------
def ints(values: Any) -> list:
    """Integers (Python int) with None where missing; floats are truncated toward zero."""
    arr = np.asarray(values)
    if arr.dtype.kind in "iub":
        return arr.tolist()
    arr = arr.astype(np.float64)
    mask = np.isnan(arr)
    if not mask.any():
        return arr.astype(np.int64).tolist()
    out = np.where(mask, 0, arr).astype(np.int64).astype(object)
    out[mask] = None
    return out.tolist()


def floats(values: Any) -> list:
    arr = np.asarray(values, dtype=np.float64)
    mask = np.isnan(arr)
    if not mask.any():
        return arr.tolist()
    out = arr.astype(object)
    out[mask] = None
    return out.tolist()


def strings(values: Any) -> list:
    """Strings with None for missing or empty values."""
    s = pd.Series(values, copy=False)
    obj = s.astype(object)
    mask = s.isna().to_numpy() | (obj == "").to_numpy()
    out = obj.to_numpy(copy=True)
    out[mask] = None
    return out.tolist()


class Labels:
    """Cached ``prefix + str(n)`` labels for dense non-negative integer codes (user 17 -> u17),
    so a chunk's labels are one numpy take instead of a string format per row."""

    DENSE_MAX = 2_000_000

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.table = np.empty(0, dtype=object)

    def __call__(self, codes: Any) -> list:
        arr = np.asarray(codes, dtype=np.float64)
        mask = np.isnan(arr) | (arr < 0)
        idx = np.where(mask, 0, arr).astype(np.int64)
        top = int(idx.max()) + 1 if len(idx) else 0
        if top > self.DENSE_MAX:  # sparse ids (machine ids): format each distinct value once
            uniq, inv = np.unique(idx, return_inverse=True)
            out = np.array([f"{self.prefix}{u}" for u in uniq.tolist()], dtype=object)[inv]
            out[mask] = None
            return out.tolist()
        if top > len(self.table):
            size = max(top, 2 * len(self.table))
            self.table = np.array([f"{self.prefix}{i}" for i in range(size)], dtype=object)
        out = self.table[idx]
        if mask.any():
            out = out.copy()
            out[mask] = None
        return out.tolist()


def rows(columns: dict[str, Any], n: int, order: Sequence[str]) -> list[tuple]:
    """Tuples in `order` from per-column lists (or a scalar repeated for every row)."""
    cols = []
    for name in order:
        v = columns.get(name)
        if isinstance(v, list):
            if len(v) != n:
                raise ValueError(f"column {name} has {len(v)} values, expected {n}")
            cols.append(v)
        else:
            cols.append(repeat(v, n))
    return list(zip(*cols))


def job_rows(columns: dict[str, Any], n: int) -> tuple[tuple[str, ...], list[tuple]]:
    """(the job columns given, in `JOB_COLUMNS` order; the row tuples) for `Batch.jobs`:
    only the columns a source fills are bound, the others keep what the store knows."""
    order = tuple(c for c in JOB_COLUMNS if c in columns)
    return order, rows(columns, n, order)
