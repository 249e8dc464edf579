"""Two stores table by table, row by row (rowid order; WITHOUT ROWID tables in key order),
leaving out wall-clock columns, plus the index and trigger definitions (issue 16 item 1: a
change to the load path must leave the store the same).

    python -m bench.store_same A.db B.db      # exit 1 when any table differs
"""
from __future__ import annotations

import hashlib
import sqlite3
import sys

#: columns that hold the time or process of a run, not data
SKIP = {"recorded_at", "started_at", "finished_at", "updated_at", "pid", "host", "as_of",
        "last_used", "stamp"}


def _digest(con: sqlite3.Connection, table: str) -> tuple[int, bytes]:
    cols = [r[1] for r in con.execute(f"PRAGMA table_xinfo({table})") if r[1] not in SKIP] or ["1"]
    no_rowid = con.execute("SELECT 1 FROM sqlite_master WHERE name = ? AND sql LIKE "
                           "'%WITHOUT ROWID%'", (table,)).fetchone()
    order = ", ".join(cols) if no_rowid else "rowid"
    head = "" if no_rowid else "rowid, "
    h, n = hashlib.sha256(), 0
    for r in con.execute(f"SELECT {head}{', '.join(cols)} FROM {table} ORDER BY {order}"):
        h.update(repr(r).encode())
        n += 1
    return n, h.digest()


def compare(a_path: str, b_path: str) -> bool:
    a, b = (sqlite3.connect(f"file:{p}?mode=ro", uri=True) for p in (a_path, b_path))
    q = "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
    ta, tb = [r[0] for r in a.execute(q)], [r[0] for r in b.execute(q)]
    same = ta == tb
    if not same:
        print("tables differ:", sorted(set(ta) ^ set(tb)))
    for t in sorted(set(ta) & set(tb)):
        (na, da), (nb, db) = _digest(a, t), _digest(b, t)
        same &= da == db
        print(f"{t:28s} {na:10,d} {nb:10,d} {'same' if da == db else 'DIFFERENT'}")
    q = "SELECT name, sql FROM sqlite_master WHERE type IN ('index', 'trigger') ORDER BY name"
    defs = sorted(a.execute(q)) == sorted(b.execute(q))
    print("index and trigger definitions:", "same" if defs else "DIFFERENT")
    return same and defs


if __name__ == "__main__":
    sys.exit(0 if compare(sys.argv[1], sys.argv[2]) else 1)
