"""Log templates: error texts clustered with Drain3 so that messages differing only in
numbers, paths, hex ids and pod hashes share one `template_id`.

Template ids are stable across runs: the miner is re-seeded from the `templates` table (in
id order) and every cluster the miner reports is mapped to its stored id. Drain3's own
persistence (jsonpickle) is deliberately not used: the store is the only state.
"""
from __future__ import annotations

import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from drain3.template_miner_config import TemplateMinerConfig

MASKS = [
    (r"((?<=[^A-Za-z0-9])|^)(/[\w.\-]+)+/?((?=[^A-Za-z0-9])|$)", "PATH"),
    (r"((?<=[^A-Za-z0-9])|^)(0x[a-fA-F0-9]+)((?=[^A-Za-z0-9])|$)", "HEX"),
    ((r"((?<=[^A-Za-z0-9])|^)([a-fA-F0-9]{8}-[a-fA-F0-9]{4}-[a-fA-F0-9]{4}-[a-fA-F0-9]{4}-"
     r"[a-fA-F0-9]{12})((?=[^A-Za-z0-9])|$)"), "UUID"),
    ((r"((?<=[^A-Za-z0-9])|^)([a-z0-9]+(?:-[a-z0-9]+)*-[a-z0-9]{8,10}-[a-z0-9]{5})"
     r"((?=[^A-Za-z0-9])|$)"), "POD"),
    (r"((?<=[^A-Za-z0-9])|^)(\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?)((?=[^A-Za-z0-9])|$)", "IP"),
    (r"((?<=[^A-Za-z0-9])|^)([a-fA-F0-9]{12,})((?=[^A-Za-z0-9])|$)", "HEX"),
    (r"((?<=[^A-Za-z0-9])|^)([\-\+]?\d+(?:\.\d+)?(?:[KMGTP]i?B?|ms|s|%)?)((?=[^A-Za-z0-9])|$)",
     "NUM"),
]
MAX_LEN = 500


def _config() -> TemplateMinerConfig:
    from drain3.masking import MaskingInstruction  # drain3 (and jsonpickle): on first use
    from drain3.template_miner_config import TemplateMinerConfig

    cfg = TemplateMinerConfig()
    cfg.masking_instructions = [MaskingInstruction(p, m) for p, m in MASKS]
    cfg.drain_sim_th = 0.5
    cfg.drain_depth = 4
    cfg.parametrize_numeric_tokens = True
    cfg.profiling_enabled = False
    return cfg


def template_line(text: str, evidence: str | None = None) -> str:
    """The line a failure is templated on: the evidence line, else the first non-empty line."""
    if evidence:
        return evidence.strip()[:MAX_LEN]
    for line in text.splitlines():
        if line.strip():
            return line.strip()[:MAX_LEN]
    return ""


class Templates:
    """A Drain3 miner seeded from, and saved back to, the store's `templates` table."""

    def __init__(self, seed: Iterable[tuple[int, str]] = ()) -> None:
        from drain3 import TemplateMiner

        self.miner = TemplateMiner(config=_config())
        self._by_cluster: dict[int, int] = {}
        self._next = 1
        self._pending: dict[int, list] = {}  # template_id -> [template, count, type, seen]
        for tid, template in seed:
            res = self.miner.add_log_message(template)
            self._by_cluster.setdefault(res["cluster_id"], tid)
            self._next = max(self._next, tid + 1)

    def add(self, text: str, failure_type: str | None = None, seen_at: int | None = None) -> int | None:
        """Template one message; returns its stable template id (None for empty text)."""
        line = text.strip()[:MAX_LEN] if text else ""
        if not line:
            return None
        res = self.miner.add_log_message(line)
        cid = res["cluster_id"]
        tid = self._by_cluster.get(cid)
        if tid is None:
            tid = self._by_cluster[cid] = self._next
            self._next += 1
        entry = self._pending.setdefault(tid, [res["template_mined"], 0, failure_type, seen_at])
        entry[0] = res["template_mined"]
        entry[1] += 1
        entry[3] = max(entry[3] or 0, seen_at or 0) or None
        return tid

    def template_of(self, text: str) -> tuple[int | None, str | None]:
        """Match without learning: (template id, template) of the closest known template."""
        line = text.strip()[:MAX_LEN] if text else ""
        if not line:
            return None, None
        cluster = self.miner.match(line, full_search_strategy="fallback")
        if cluster is None:
            return None, None
        return self._by_cluster.get(cluster.cluster_id), cluster.get_template()

    def drain_pending(self) -> list[tuple[int, str, int, str | None, int | None]]:
        """Rows to save with Store.save_templates (and forget them here)."""
        rows = [(tid, t, n, ft, seen or int(time.time())) for tid, (t, n, ft, seen) in
                self._pending.items()]
        self._pending.clear()
        return rows
