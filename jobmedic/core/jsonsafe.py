"""Reading a JSON request without letting its shape crash the reader: nesting deeper than a
limit, numbers too long to convert, invalid UTF-8 and broken syntax all become one
`BadJson` with a message, never a RecursionError or an internal error."""
from __future__ import annotations

import json
import re
from typing import Any

#: Deepest nesting of arrays / objects a request may have (requests are flat; 32 is generous).
MAX_DEPTH = 32
_STRINGS = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKETS = re.compile(rb"[\[\]{}]")


class BadJson(ValueError):
    """The text is not a JSON document jobmedic will read; `kind` is invalid_json or too_deep."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind, self.message = kind, message


def depth(raw: bytes) -> int:
    """The deepest nesting of arrays and objects in `raw` (brackets inside strings ignored);
    when `raw` has no more brackets than the limit, their count (a cheap upper bound)."""
    if raw.count(b"[") + raw.count(b"{") <= MAX_DEPTH:
        return raw.count(b"[") + raw.count(b"{")  # an upper bound, and within the limit
    deepest = level = 0
    for m in _BRACKETS.finditer(_STRINGS.sub(b'""', raw)):
        if m.group() in (b"[", b"{"):
            level += 1
            deepest = max(deepest, level)
        else:
            level -= 1
    return deepest


def loads(raw: str | bytes, max_depth: int = MAX_DEPTH) -> Any:
    """json.loads with a nesting limit; BadJson for anything that cannot be read."""
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else bytes(raw)
    if depth(data) > max_depth:
        raise BadJson("too_deep", f"the request is nested deeper than {max_depth} levels")
    try:
        return json.loads(data)
    except UnicodeDecodeError:
        raise BadJson("invalid_json", "the request is not valid UTF-8 JSON") from None
    except json.JSONDecodeError as exc:
        raise BadJson("invalid_json", f"the request is not valid JSON: {exc}") from None
    except (ValueError, RecursionError) as exc:  # e.g. a number with thousands of digits
        raise BadJson("invalid_json", f"the request is not valid JSON: {exc}") from None
