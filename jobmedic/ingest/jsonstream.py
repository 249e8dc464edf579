"""Stream the records of a JSON document without loading it whole.

kubectl prints one object (``{"apiVersion": "v1", "items": [...], "kind": "List", ...}``);
Run:AI exports are a JSON array or JSON Lines. `records` yields each record with the line it
starts on, reading the text in blocks and decoding one item at a time with the standard
decoder, so memory is bounded by the largest single item, not the file. Bad JSON becomes a
`BadRecord` (with its line) instead of an exception, so the records around it still land.
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, TextIO

_DECODER = json.JSONDecoder()
_BLOCK = 1 << 20
_WS = " \t\r\n"
MAX_RECORD = 32 << 20  # characters of one record: past this it is refused, not buffered on


@dataclass
class BadRecord:
    line: int
    reason: str
    raw: str


class _Buffer:
    """A sliding text window over the stream that keeps count of the lines dropped."""

    def __init__(self, stream: TextIO, text: str = "") -> None:
        self.stream, self.text, self.pos, self.line_base, self.eof = stream, text, 0, 1, False

    def more(self) -> bool:
        if self.eof:
            return False
        block = self.stream.read(_BLOCK)
        if not block:
            self.eof = True
            return False
        self.line_base += self.text.count("\n", 0, self.pos)
        self.text = self.text[self.pos:] + block
        self.pos = 0
        return True

    def line(self) -> int:
        return self.line_base + self.text.count("\n", 0, self.pos)

    def skip_ws(self, also: str = "") -> str:
        """Skip whitespace (and `also` characters); return the next character or '' at EOF."""
        chars = _WS + also
        while True:
            while self.pos < len(self.text) and self.text[self.pos] in chars:
                self.pos += 1
            if self.pos < len(self.text):
                return self.text[self.pos]
            if not self.more():
                return ""

    def decode(self) -> Any:
        """Decode one JSON value at pos, reading more text while it is incomplete."""
        self.skip_ws()
        while True:
            try:
                value, end = _DECODER.raw_decode(self.text, self.pos)
            except json.JSONDecodeError:
                if len(self.text) - self.pos > MAX_RECORD:
                    raise ValueError(f"a record longer than {MAX_RECORD >> 20} MiB") from None
                if self.more():
                    continue
                raise
            if end == len(self.text) and self.more():
                continue  # a number or literal cut by the block end may go on
            self.pos = end
            return value


def first_char(stream: TextIO) -> str:
    """The first non-space character of the stream ('' when empty), read off it: readers
    sniff it to refuse input that is not JSON before anything is written."""
    head = stream.read(1)
    while head and head.isspace():
        head = stream.read(1)
    return head


def records(stream: TextIO, head: str = "", array_keys: tuple[str, ...] = ("items",)
            ) -> Iterator[tuple[int, Any] | BadRecord]:
    """Yield (line, record) for: the elements of a top-level array; the elements of the
    `array_keys` array of a top-level object (other keys are decoded and dropped; an object
    without such a key is itself one record); or each value of JSON Lines / concatenated
    JSON. `head` is text already read off the stream."""
    buf = _Buffer(stream, head)
    c = buf.skip_ws()
    if c == "[":
        buf.pos += 1
        yield from _array(buf)
    elif c == "{":
        yield from _object_or_lines(buf, array_keys)
    elif c:
        yield BadRecord(buf.line(), f"not JSON: starts with {buf.text[buf.pos:buf.pos + 20]!r}", "")


def _array(buf: _Buffer) -> Iterator[tuple[int, Any] | BadRecord]:
    while True:
        c = buf.skip_ws(",")
        if c in ("]", ""):
            if c == "]":
                buf.pos += 1
            else:
                yield BadRecord(buf.line(), "JSON ends inside an array (truncated file?)", "")
            return
        line = buf.line()
        try:
            value = buf.decode()
        except (ValueError, RecursionError) as exc:
            if isinstance(exc, json.JSONDecodeError) and exc.pos >= len(buf.text) - 1:
                why = "JSON ends inside a record (truncated file?)"
            else:
                why = f"bad JSON: {_why(exc)}; the rest of the array is skipped"
            yield BadRecord(line, why, buf.text[buf.pos:buf.pos + 300])
            return
        yield line, value


def _object_or_lines(buf: _Buffer, array_keys: tuple[str, ...]
                     ) -> Iterator[tuple[int, Any] | BadRecord]:
    """A wrapper object whose items array is read lazily, or a run of JSON values (JSON
    Lines, or concatenated objects), each one record."""
    start_line = buf.line()
    buf.pos += 1
    obj: dict[str, Any] = {}
    try:
        while True:
            c = buf.skip_ws(",")
            if c == "}":
                buf.pos += 1
                yield start_line, obj  # a single object with no items array
                break
            if c != '"':
                raise json.JSONDecodeError("expected a key", buf.text, buf.pos)
            key = buf.decode()
            if buf.skip_ws() != ":":
                raise json.JSONDecodeError("expected ':'", buf.text, buf.pos)
            buf.pos += 1
            if key in array_keys and buf.skip_ws() == "[":
                buf.pos += 1
                yield from _array(buf)
                return  # what follows the items (kind, metadata) is not needed
            obj[key] = buf.decode()
    except (ValueError, RecursionError) as exc:
        yield BadRecord(start_line, f"bad JSON: {_why(exc)}", "")
        end = buf.text.find("\n", buf.pos)
        if end == -1:
            return
        buf.pos = end + 1
    yield from _lines(buf)


def _lines(buf: _Buffer) -> Iterator[tuple[int, Any] | BadRecord]:
    while True:
        c = buf.skip_ws()
        if not c:
            return
        line = buf.line()
        try:
            value = buf.decode()
        except (ValueError, RecursionError) as exc:
            end = buf.text.find("\n", buf.pos)
            raw = buf.text[buf.pos:end if end != -1 else len(buf.text)]
            yield BadRecord(line, f"bad JSON: {_why(exc)}", raw[:300])
            if end == -1:
                return
            buf.pos = end + 1
            continue
        yield line, value


def _why(exc: BaseException) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return exc.msg
    if isinstance(exc, RecursionError):
        return "nested deeper than the decoder allows"
    return str(exc)[:200]
