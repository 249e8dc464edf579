"""Plain-row group-bys for the analyzers, without pandas (its import costs ~0.7 s of CPU in every
analyze process: issue 16), giving what the pandas code they replace gave, to the bit:

- groups in sorted key order, missing keys (None) last where they are kept;
- float sums as pandas' group-by sums them (Kahan-compensated, in row order; missing values
  skipped), integer sums exact;
- a descending sort in pandas' `sort_values` order (`nargsort`: the reversed values argsorted
  with numpy's `quicksort`, the result reversed), ties included;
- `Table`: equal-length columns (lists or numpy arrays) with a boolean or index selection."""
from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Iterable, Sequence
from math import isnan
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np


def missing(v: Any) -> bool:
    """None or NaN (what pandas counts as missing in these columns)."""
    return v is None or (isinstance(v, float) and math.isnan(v))


def ksum(values: Iterable[Any]) -> Any:
    """pandas' group-by sum of one group: missing values skipped, integers summed exactly (an
    int when every value is one), floats with Kahan compensation in order (0 for none)."""
    vals = [v for v in values if v is not None and not (v.__class__ is float and isnan(v))]
    if all(v.__class__ is int for v in vals):
        return sum(vals)
    total, comp = 0.0, 0.0
    for v in vals:
        y = float(v) - comp
        t = total + y
        comp = t - total - y
        if math.isnan(comp):  # inf - inf
            comp = 0.0
        total = t
    return total


def group(rows: Sequence[dict[str, Any]], key: Callable[[dict[str, Any]], Any] | str,
          dropna: bool = True) -> dict[Any, list[dict[str, Any]]]:
    """Rows by key, in sorted key order (a tuple key sorts element-wise), rows in their order;
    missing keys dropped (`dropna`) or last. A tuple key with a missing part counts as missing."""
    out: dict[Any, list[dict[str, Any]]] = {}
    if isinstance(key, str):
        for r in rows:
            k = r.get(key)
            if k.__class__ is float and isnan(k):
                k = None
            g = out.get(k)
            if g is None:
                out[k] = [r]
            else:
                g.append(r)
    else:
        for r in rows:
            out.setdefault(_norm(key(r)), []).append(r)
    present = [k for k in out if not _is_missing_key(k)]
    keys = sorted(present)
    if not dropna:
        keys += [k for k in out if _is_missing_key(k)]
    return {k: out[k] for k in keys}


def _norm(k: Any) -> Any:
    if isinstance(k, tuple):
        return tuple(None if missing(x) else x for x in k)
    return None if missing(k) else k


def _is_missing_key(k: Any) -> bool:
    return any(x is None for x in k) if isinstance(k, tuple) else k is None


def nunique(values: Iterable[Any]) -> int:
    """Distinct values, missing ones not counted."""
    return len({v for v in values if not missing(v)})


def desc_order(values: Sequence[Any], kind: str = "quicksort") -> list[int]:
    """The row order of pandas' `sort_values(ascending=False)` on one column: the reversed
    values argsorted with numpy's `kind`, the result reversed; missing values last."""
    import numpy as np
    idx = [i for i, v in enumerate(values) if not missing(v)]
    nan_idx = [i for i, v in enumerate(values) if missing(v)]
    if not idx:
        return nan_idx
    # the column's dtype as pandas held it: int64 only without missing values
    arr = np.asarray([values[i] for i in idx], dtype=float if nan_idx else None)
    rev_idx = np.asarray(idx)[::-1]
    order = rev_idx[arr[::-1].argsort(kind=kind)][::-1]
    return [int(i) for i in order] + nan_idx


class Table:
    """Equal-length named columns (lists or numpy arrays): a tested table of one dimension."""

    def __init__(self, cols: dict[str, Any] | None = None, attrs: dict[str, Any] | None = None
                 ) -> None:
        self.cols: dict[str, Any] = dict(cols or {})
        self.attrs: dict[str, Any] = dict(attrs or {})

    def __len__(self) -> int:
        return len(next(iter(self.cols.values()))) if self.cols else 0

    @property
    def empty(self) -> bool:
        return len(self) == 0

    def __getitem__(self, name: str) -> Any:
        return self.cols[name]

    def __setitem__(self, name: str, values: Any) -> None:
        self.cols[name] = values

    def __contains__(self, name: Hashable) -> bool:
        return name in self.cols

    def take(self, index: Sequence[int] | np.ndarray) -> Table:
        """The rows at `index` (positions, or a boolean mask), in that order."""
        import numpy as np
        ix = np.asarray(index)
        if ix.dtype == bool:
            ix = np.flatnonzero(ix)
        ix = ix.astype(int)
        out = {c: ([v[i] for i in ix] if isinstance(v, list) else np.asarray(v)[ix])
               for c, v in self.cols.items()}
        return Table(out, self.attrs)

    def head(self, n: int) -> Table:
        return self.take(list(range(min(n, len(self)))))

    def records(self) -> list[dict[str, Any]]:
        cols = list(self.cols)
        return [dict(zip(cols, vals)) for vals in zip(*(self.cols[c] for c in cols))]

    def to_frame(self) -> Any:
        """A pandas DataFrame of the table (for tests and evaluations; imports pandas)."""
        import pandas as pd
        df = pd.DataFrame({c: list(v) if isinstance(v, list) else v for c, v in self.cols.items()})
        df.attrs.update(self.attrs)
        return df
