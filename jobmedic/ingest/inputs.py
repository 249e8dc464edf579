"""The input side of an ingest: open a file or stdin (plain, gzip, xz or bz2, told apart by
their magic bytes) and hand the readers whole, clean lines of text (`LineGuard`)."""
from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import sys
import zlib
from typing import Any, TextIO

from jobmedic.core.validate import MAX_LINE
from jobmedic.knowledge.errors import InputError


class _CountingReader(io.RawIOBase):
    """Wraps a binary file to expose how many raw bytes were consumed (for progress)."""

    def __init__(self, raw: Any) -> None:
        self.raw, self.pos = raw, 0

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        n = self.raw.readinto(b)
        self.pos += n or 0
        return n


class LineGuard(io.BufferedIOBase):
    """The decoded bytes of the input, whole lines at a time, made safe for the readers.

    * A line holding a NUL byte or bytes that are not UTF-8 becomes an empty line (readers skip
      those, so the line numbers of the others do not move) and a reject naming the line and
      the byte where it went wrong.
    * A compressed stream that ends early or is corrupt ends the input at the last complete
      line before the damage (the error is kept in `error`), so the readers finish their
      partial batch: every complete record before the cut is kept.
    """

    BLOCK = 1 << 20

    def __init__(self, binary: Any, file: Any = None) -> None:
        self.binary, self.file = binary, file  # file: the opened path, closed with the guard
        self.out, self.pos, self.tail = b"", 0, b""
        self.lines = 0  # newlines handed on so far
        self.rejects: list[tuple[int, str, str]] = []  # (line, reason, raw)
        self.error: BaseException | None = None
        self.lost = 0  # bytes of a partial line dropped at a cut
        self.eof = self.done = False

    def readable(self) -> bool:
        return True

    def read1(self, size: int | None = -1) -> bytes:
        """The next clean bytes: a whole block (no copy) when `size` allows."""
        while self.pos >= len(self.out):
            if self.eof:
                return b""
            self._fill()
        left = len(self.out) - self.pos
        if size is None or size < 0 or size >= left:
            out = self.out if self.pos == 0 else self.out[self.pos:]
            self.pos = len(self.out)
            return out
        out = self.out[self.pos:self.pos + size]
        self.pos += size
        return out

    def close(self) -> None:
        if not self.closed and self.file is not None:
            self.file.close()
        super().close()

    def read(self, size: int | None = -1) -> bytes:
        if size is not None and size >= 0:
            return self.read1(size)
        return b"".join(iter(self.read1, b""))

    def _fill(self) -> None:
        chunks, size = [self.tail], len(self.tail)
        read = getattr(self.binary, "read1", self.binary.read)
        while size < self.BLOCK and not self.done:
            try:
                block = read(self.BLOCK)
            except (EOFError, lzma.LZMAError, zlib.error, gzip.BadGzipFile) as exc:
                self.error, block = exc, b""
            if not block:
                self.done = True
            chunks.append(block)
            size += len(block)
        data = b"".join(chunks)
        if self.done:
            self.eof = True
            if self.error is not None:  # the partial line before the cut is not a record
                cut = data.rfind(b"\n") + 1
                self.lost, data = len(data) - cut, data[:cut]
            self.tail = b""
        else:
            cut = data.rfind(b"\n") + 1
            if cut == 0 and len(data) <= MAX_LINE:  # no line end yet: wait for more
                self.tail, self.out, self.pos = data, b"", 0
                return
            if cut == 0:  # a very long line: hand on what we have, whole characters only
                cut = len(data)
                for k in range(1, min(4, len(data)) + 1):
                    if data[-k] & 0xC0 == 0xC0:  # the lead byte of a cut character
                        cut = len(data) - k
                        break
                    if data[-k] < 0x80:
                        break
            data, self.tail = data[:cut], data[cut:]
        self.out, self.pos = self._clean(data), 0

    def _clean(self, data: bytes) -> bytes:
        if b"\x00" not in data:
            if data.isascii():
                self.lines += data.count(b"\n")
                return data
            try:
                data.decode("utf-8")
                self.lines += data.count(b"\n")
                return data
            except UnicodeDecodeError:
                pass
        parts = data.split(b"\n")
        for i, line in enumerate(parts):
            why = None
            if b"\x00" in line:
                why = f"NUL byte at byte {line.index(0) + 1} of the line"
            else:
                try:
                    line.decode("utf-8")
                except UnicodeDecodeError as exc:
                    why = f"not valid UTF-8 at byte {exc.start + 1} of the line"
            if why:
                raw = line[:300].decode("utf-8", "replace").replace("\x00", "\\0")
                self.rejects.append((self.lines + i + 1, why, raw))
                parts[i] = b""
        self.lines += len(parts) - 1
        return b"\n".join(parts)

    def take_rejects(self) -> list[tuple[int, str, str]]:
        out, self.rejects = self.rejects, []
        return out


def open_input(path: str) -> tuple[TextIO, _CountingReader, int | None]:
    """Open a file (plain, gzip, xz or bz2, detected by magic bytes) or '-' for stdin.

    Returns (text stream, byte counter, total bytes or None). Binary data that is not a
    known compression format is refused with InputError before anything is read further.
    The text stream's `guard` attribute is the `LineGuard` under it (rejected lines, a cut).
    """
    if path == "-":
        raw: Any = sys.stdin.buffer
        total = None
    else:
        try:
            raw = open(path, "rb")  # noqa: SIM115 - the caller closes the stream it gets
        except OSError as exc:
            raise InputError(f"cannot read {path}: {exc.strerror or exc}",
                             hint="check the path and its permissions") from exc
        try:
            total = os.fstat(raw.fileno()).st_size
        except OSError:
            total = None
    counter = _CountingReader(raw)
    buffered = io.BufferedReader(counter, buffer_size=1 << 20)
    head = buffered.peek(8)[:8]
    if head[:2] == b"\x1f\x8b":
        binary: Any = gzip.GzipFile(fileobj=buffered)
    elif head[:6] == b"\xfd7zXZ\x00":
        binary = lzma.LZMAFile(buffered)  # noqa: SIM115 - closed by the caller
    elif head[:3] == b"BZh":
        binary = bz2.BZ2File(buffered)
    else:
        binary = buffered
    try:
        sample = binary.peek(8192)[:8192] if hasattr(binary, "peek") else b""
    except (OSError, EOFError, lzma.LZMAError, zlib.error) as exc:
        if path != "-":
            raw.close()
        raise InputError(f"cannot read {path}: corrupt compressed data ({exc})",
                         hint="check that the file was copied completely") from exc
    if _looks_binary(sample):
        if path != "-":
            raw.close()
        raise InputError(f"{path} looks like binary data, not text",
                         hint="pass the text output of sacct / kubectl, optionally gzip or xz compressed")
    guard = LineGuard(binary, None if path == "-" else raw)
    text = io.TextIOWrapper(guard, encoding="utf-8", errors="replace", newline=None)
    text._CHUNK_SIZE = LineGuard.BLOCK  # type: ignore[attr-defined]  # whole blocks, no copy
    text.guard = guard  # type: ignore[attr-defined]
    return text, counter, total


_CONTROL = bytes(b for b in range(32) if b not in b"\t\n\r\f\v") + b"\x7f"


def _looks_binary(sample: bytes) -> bool:
    """Binary data, not text: more than 5% control bytes (NUL included) in the first 8 KiB.
    A stray NUL in a text file is not that: the guard makes its line a reject."""
    if b"\x00" not in sample and sample.isascii():
        return False
    ctrl = len(sample) - len(sample.translate(None, _CONTROL))
    return ctrl > max(1, len(sample) // 20)
