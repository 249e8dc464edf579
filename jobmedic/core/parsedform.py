"""The parsed form of a packaged YAML file: the data it parses to, as JSON, with the sha256 of
the text it was parsed from, so a reader skips the YAML parser (and its import, ~0.02 s CPU at
every command's start) while the text is unchanged (issue 16 item 6). The set-up layer reads
the files (settings.parsed_config); `python -m jobmedic.core.parsedform jobmedic/configs`
writes them.

JSON objects have text keys only, so a mapping with other keys (taxonomy.yaml's exit codes and
signals) is written as {PAIRS: [[key, value], ...]}; `dumps` refuses data that would not come
back exactly (equal values of equal types: dates, sets, ... stay YAML-only).
"""
from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

#: The packaged YAML files shipped with their parsed form (jobmedic/configs/<name>.json).
FILES = ("jobmedic.yaml", "taxonomy.yaml", "remediations.yaml")
PAIRS = "\u0000pairs"


def yaml_load(text: str) -> Any:
    """YAML with libyaml's safe loader when PyYAML has it (~10x less CPU), else the pure one."""
    import yaml

    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def is_yaml_error(exc: BaseException) -> bool:
    import yaml

    return isinstance(exc, yaml.YAMLError)


def digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        if all(isinstance(k, str) for k in x):
            return {k: _jsonable(v) for k, v in x.items()}
        return {PAIRS: [[k, _jsonable(v)] for k, v in x.items()]}
    if isinstance(x, list):
        return [_jsonable(v) for v in x]
    return x


def _pairs_hook(obj: dict[str, Any]) -> Any:
    return dict(obj[PAIRS]) if len(obj) == 1 and PAIRS in obj else obj


def same_data(a: Any, b: Any) -> bool:
    """Equal values of equal types all the way down (1, 1.0 and True differ; so does the order
    of a mapping's keys)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(same_data(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same_data(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def dumps(text: str) -> str:
    """The parsed form of the YAML `text` (ValueError when JSON cannot carry its data exactly)."""
    data = yaml_load(text)
    try:
        body = json.dumps({"sha256": digest(text), "data": _jsonable(data)}, ensure_ascii=False,
                          separators=(",", ":"))
    except TypeError as exc:  # a date, a set, ...
        raise ValueError(f"the data holds values JSON cannot carry exactly: {exc}") from None
    if not same_data(json.loads(body, object_hook=_pairs_hook)["data"], data):
        raise ValueError("the data holds values JSON cannot carry exactly")
    return body + "\n"


def load(stored: str | None, text: str) -> Any:
    """The data of the YAML `text`: from `stored` (its parsed form) when that was written from
    this very text, else parsed now (yaml.YAMLError as yaml raises it)."""
    try:
        parsed = json.loads(stored, object_hook=_pairs_hook) if stored else None
    except ValueError:
        parsed = None
    if isinstance(parsed, dict) and parsed.get("sha256") == digest(text):
        return parsed.get("data")
    return yaml_load(text)


def write(folder: Path) -> list[Path]:
    """Write <name>.json beside each of FILES in `folder` (after editing one of them)."""
    out = []
    for name in FILES:
        target = folder / (name + ".json")
        target.write_text(dumps((folder / name).read_text(encoding="utf-8")), encoding="utf-8")
        out.append(target)
    return out


if __name__ == "__main__":
    for p in write(Path(sys.argv[1] if len(sys.argv) > 1 else "jobmedic/configs")):
        print(p)
