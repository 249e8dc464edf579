"""The names a question may mention, taken from the store inside the caller's scope, and
their resolution: exact, case-insensitive, normalised (gpu1 = gpu-01 = GPU01), partial (a
distinctive part of an image name, a unique prefix) and typo-tolerant (difflib).

Names outside the scope are never loaded, so a project the caller may not see resolves
exactly like a project that does not exist. The lists are cached in the store with a stamp
of the data, so a question on a large store does not rescan the jobs table.
"""
from __future__ import annotations

import contextlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from difflib import SequenceMatcher, get_close_matches
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from jobmedic.knowledge.store import Store

KINDS = ("project", "user", "queue", "node", "image", "cluster")
_PARTS = re.compile(r"[/:@._-]+")
_ZEROS = re.compile(r"(?<!\d)0+(?=\d)")
_SEPS = str.maketrans("", "", "-_ \t")


def _numbers(name: str) -> list[str]:
    return [d.lstrip("0") or "0" for d in re.findall(r"\d+", name)]


def norm(name: str) -> str:
    """Case, separators and leading zeros of numbers do not distinguish names."""
    s = name.lower()
    return (_ZEROS.sub("", s) if "0" in s else s).translate(_SEPS)


@dataclass
class Match:
    kind: str
    name: str
    how: str  # exact | case | norm | part | prefix | typo
    score: float = 1.0


@dataclass
class Vocabulary:
    names: dict[str, list[str]]
    _lower: dict[str, dict[str, str]] = field(default_factory=dict, repr=False)
    _norm: dict[str, dict[str, list[str]]] = field(default_factory=dict, repr=False)
    _parts: dict[str, dict[str, list[str]]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._lower = {kind: {n.lower(): n for n in names} for kind, names in self.names.items()}

    # indexes built on first use: most questions resolve every name exactly
    def _norms(self, kind: str) -> dict[str, list[str]]:
        if kind not in self._norm:
            nm: dict[str, list[str]] = {}
            for n in self.names.get(kind, []):
                nm.setdefault(norm(n), []).append(n)
            self._norm[kind] = nm
        return self._norm[kind]

    def _image_parts(self) -> dict[str, list[str]]:
        if "image" not in self._parts:
            parts: dict[str, list[str]] = {}
            for n in self.names.get("image", []):
                for p in {p.lower() for p in _PARTS.split(n) if len(p) >= 3 and not p.isdigit()}:
                    parts.setdefault(p, []).append(n)
            self._parts["image"] = parts
        return self._parts["image"]

    @classmethod
    def from_store(cls, store: Store, scope: Sequence[str] | None) -> Vocabulary:
        """Load (or reuse the cached) vocabulary of every kind for this scope."""
        key = "vocab:" + ("*" if scope is None else ",".join(sorted(scope)))
        stamp = None
        with contextlib.suppress(Exception):  # a store without the cache table still works
            stamp = store.data_stamp()
        memo = store.__dict__.setdefault("_agent_vocab_memo", {})  # lives as long as the store
        memo_key = (key, str(stamp))
        if stamp is not None and memo_key in memo:
            return memo[memo_key]  # a long-lived process (server, chat UI) asks again
        try:
            cached = store.cache_get(key, stamp) if stamp is not None else None
        except Exception:  # noqa: BLE001 - an unreadable cache entry is rebuilt
            cached = None
        if isinstance(cached, dict) and all(k in cached for k in KINDS):
            vocab = cls({k: list(cached[k]) for k in KINDS})
        else:
            vocab = cls({k: store.known(k, scope) for k in KINDS})
            if stamp is not None:
                with contextlib.suppress(Exception):  # a read-only store: just do not cache
                    store.cache_put(key, stamp, vocab.names)
        if stamp is not None:
            if len(memo) > 32:
                memo.clear()
            memo[memo_key] = vocab
        return vocab

    # -- lookups -----------------------------------------------------------------------------
    def all_names(self, kinds: Sequence[str] = ("node", "user", "project", "image")) -> list[str]:
        """Every known name of these kinds (what a grounding check looks for in an answer)."""
        return [n for k in kinds for n in self.names.get(k, [])]

    def exact(self, token: str, kinds: Sequence[str] = KINDS, normalise: bool = True) -> list[Match]:
        """Matches that need no guessing: exact, case-insensitive or normalised."""
        out: list[Match] = []
        low, nt = token.lower(), norm(token)
        for k in kinds:
            if low in self._lower.get(k, {}):
                name = self._lower[k][low]
                out.append(Match(k, name, "exact" if name == token else "case"))
        if out or not nt or not normalise:
            return out
        for k in kinds:  # only now build the normalised indexes (a few ms on big stores)
            if len(self._norms(k).get(nt, [])) == 1:
                out.append(Match(k, self._norms(k)[nt][0], "norm"))
        return out

    def fuzzy(self, token: str, kinds: Sequence[str] = KINDS, cutoff: float = 0.8,
              min_prefix: int = 3) -> list[Match]:
        """Partial and typo matches, best first (several means the name is ambiguous)."""
        low = token.lower()
        out: list[Match] = []
        for k in kinds:
            lower = self._lower.get(k, {})
            if k == "image" and low in self._image_parts():
                out += [Match(k, n, "part", 0.95) for n in self._image_parts()[low]]
                continue
            if len(low) >= min_prefix:
                pre = [n for lo, n in lower.items() if lo.startswith(low) and
                       (len(low) >= len(lo) / 3 or min_prefix < 3)]
                if pre:
                    out += [Match(k, n, "prefix", 0.9) for n in pre]
                    continue
            for lo in get_close_matches(low, list(lower), n=3, cutoff=cutoff):
                if lo[0] != low[0] or _numbers(lo) != _numbers(low):
                    continue  # a typo keeps the first letter and the numbers: gpu42 is not gpu02
                out.append(Match(k, lower[lo], "typo", SequenceMatcher(None, low, lo).ratio()))
        out.sort(key=lambda m: -m.score)
        return out

    def closest(self, token: str, kinds: Sequence[str] = KINDS, n: int = 3) -> list[str]:
        """The nearest known names (for asking back), even when none is near enough to use."""
        pool = {lo: name for k in kinds for lo, name in self._lower.get(k, {}).items()}
        near = [pool[c] for c in get_close_matches(token.lower(), list(pool), n=n, cutoff=0.4)]
        if near:
            return near
        return sorted(pool.values())[:n]
