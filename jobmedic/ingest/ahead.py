"""Parse ahead: the reader runs in a forked child process while this process writes.

On a machine with two cores or more, reading and parsing a file (Python, pandas) and writing
its rows (SQLite) overlap: the child parses batch k+1 while the parent writes batch k. The
child never touches the store; it sends each `Batch` over a pipe as `marshal` data (plain
tuples, lists, strings and numbers, no code: nothing is ever loaded from a file), with what
else the parent's loop needs: the lines the `LineGuard` rejected (moved into the batch), the
templates the miner added for the batch, and the bytes read for progress. The pipe holds at
most about one batch ahead, so memory stays bounded. When the reader ends, the child sends the
guard's last rejects and its error (a compressed stream cut short); when the reader raises,
the child sends the error's kind and text and the parent raises it again, so `run_ingest`
handles every ending as it does in one process. The child exits with `os._exit` (nothing of
the parent's, the store's connection least of all, is closed or flushed there); the parent
kills and reaps it whatever happens (Ctrl-C, an error), and a parent killed outright leaves a
child that dies on its next write to the closed pipe.
"""
from __future__ import annotations

import marshal
import os
import signal
import struct
from collections.abc import Callable, Iterator
from typing import Any

from jobmedic.knowledge.errors import InputError

#: Files smaller than this are read in-process (a fork costs more than it saves).
MIN_BYTES = 4 << 20
_LEN = struct.Struct("<Q")
_FIELDS = ("jobs", "job_columns", "nodes", "events", "rejects", "samples", "arrays", "read",
           "templates")


def usable(path: str) -> bool:
    """Whether parsing ahead can pay here: fork exists, two cores, a regular file of size."""
    if not hasattr(os, "fork") or (os.cpu_count() or 1) < 2 or path == "-":
        return False
    try:
        st = os.stat(path)
    except OSError:
        return False
    import stat

    return stat.S_ISREG(st.st_mode) and st.st_size >= MIN_BYTES


class GuardState:
    """What the parent's loop reads of the child's `LineGuard`: rejects, the error, lines."""

    def __init__(self) -> None:
        self.rejects: list[tuple[int, str, str]] = []
        self.error: BaseException | None = None
        self.lines = 0

    def take_rejects(self) -> list[tuple[int, str, str]]:
        out, self.rejects = self.rejects, []
        return out


class ReaderFailed(Exception):
    """A reader error raised in the child, raised again in the parent with the same text."""


def _plain(v: Any) -> Any:
    """A value marshal can write: numpy scalars and str/int/float subclasses made plain."""
    if v is None or type(v) in (str, int, float, bool, bytes):
        return v
    if isinstance(v, tuple):
        return tuple(_plain(x) for x in v)
    if isinstance(v, list):
        return [_plain(x) for x in v]
    if isinstance(v, (set, frozenset)):
        return {_plain(x) for x in v}
    if hasattr(v, "item"):  # numpy scalar
        return v.item()
    for t in (bool, int, float, str):
        if isinstance(v, t):
            return t(v)
    raise ValueError(f"cannot pass a {type(v).__name__} value between processes")


def _dumps(msg: dict[str, Any]) -> bytes:
    try:
        return marshal.dumps(msg)
    except ValueError:
        return marshal.dumps({k: _plain(v) for k, v in msg.items()})


class ParseAhead:
    """The child that runs `make_batches()` and the parent's side of its pipe."""

    def __init__(self, make_batches: Callable[[], Iterator[Any]], guard: Any, counter: Any,
                 drain_templates: Callable[[], list], batch_type: type,
                 truncated_type: type[BaseException]) -> None:
        self.guard = GuardState()
        self.pos = 0  # bytes of the input read by the child (progress)
        self._batch_type, self._truncated = batch_type, truncated_type
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: read, parse, send; never returns
            code = 0
            try:
                os.close(r)
                signal.signal(signal.SIGINT, signal.SIG_DFL)  # Ctrl-C ends it quietly
                with os.fdopen(w, "wb", buffering=1 << 20) as out:
                    _child(out, make_batches, guard, counter, drain_templates, truncated_type)
            except BaseException:  # noqa: BLE001 - the parent saw the pipe close; say nothing
                code = 1
            os._exit(code)
        os.close(w)
        self.pid = pid
        self._in = os.fdopen(r, "rb", buffering=1 << 20)

    def _recv(self) -> dict[str, Any]:
        head = self._in.read(_LEN.size)
        if len(head) < _LEN.size:
            raise ReaderFailed("the parsing process ended without a word (killed?)")
        (n,) = _LEN.unpack(head)
        data = self._in.read(n)
        if len(data) < n:
            raise ReaderFailed("the parsing process ended mid-batch (killed?)")
        return marshal.loads(data)

    def batches(self) -> Iterator[Any]:
        """The child's batches, in order; raises what the reader raised."""
        while True:
            msg = self._recv()
            kind = msg["kind"]
            self.pos = msg.get("pos", self.pos)
            self.guard.lines = msg.get("lines", self.guard.lines)
            self.guard.rejects.extend(tuple(r) for r in msg.get("guard_rejects", ()))
            if kind == "batch":
                b = self._batch_type()
                for f in _FIELDS:
                    setattr(b, f, msg[f])
                b.arrays = set(b.arrays)
                yield b
                continue
            if kind == "end":
                if msg["error"] is not None:
                    self.guard.error = ReaderFailed(msg["error"])
                return
            if kind == "input":
                raise InputError(msg["text"], hint=msg["hint"])
            if kind == "truncated":
                raise self._truncated(msg["text"])
            raise ReaderFailed(msg["text"])

    def close(self) -> None:
        """Stop the child (if it still runs) and reap it."""
        try:
            self._in.close()
        finally:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            try:
                os.waitpid(self.pid, 0)
            except ChildProcessError:
                pass


def _child(out: Any, make_batches: Callable[[], Iterator[Any]], guard: Any, counter: Any,
           drain_templates: Callable[[], list], truncated_type: type[BaseException]) -> None:
    def send(msg: dict[str, Any]) -> None:
        data = _dumps(msg)
        out.write(_LEN.pack(len(data)))
        out.write(data)

    try:
        for b in make_batches():
            msg = {f: getattr(b, f) for f in _FIELDS if f != "templates"}
            msg["arrays"] = list(b.arrays)
            msg["templates"] = drain_templates()
            msg["guard_rejects"] = guard.take_rejects()  # the parent adds them as in-process
            msg["kind"], msg["pos"] = "batch", counter.pos
            send(msg)
            out.flush()
    except InputError as exc:
        send({"kind": "input", "text": exc.message, "hint": exc.hint, "lines": guard.lines})
    except truncated_type as exc:
        send({"kind": "truncated", "text": str(exc), "lines": guard.lines})
    except Exception as exc:  # noqa: BLE001 - any reader error goes to the parent
        send({"kind": "error", "text": str(exc), "lines": guard.lines})
    else:
        send({"kind": "end", "pos": counter.pos, "guard_rejects": guard.take_rejects(),
              "lines": guard.lines, "error": None if guard.error is None else str(guard.error)})
    out.flush()
