"""A small learned text classifier that backs the diagnose rules.

Hashed word unigrams and bigrams (numbers masked, log counts, L2-normalised) and a
multinomial logistic regression trained on the TRAIN split of the corpus of real error output
(tests/data/diagnose_corpus.jsonl). The model ships as package data in a plain npz file (arrays
only, loaded with allow_pickle=False): the class names, the intercepts, the hashed feature ids
seen in training and their weights. It is loaded lazily, on the first text the rules leave
undecided, and it also names the line that weighs most for its answer.

Train (scikit-learn is needed only here):  python -m jobmedic.knowledge.textclf CORPUS [OUT]
"""
from __future__ import annotations

import itertools
import json
import math
import re
import sys
import threading
import time
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

ARTIFACT = Path(__file__).with_name("textclf.npz")
DIM = 1 << 18
_WORD = re.compile(r"[a-z][a-z0-9_]*(?:[./:-][a-z0-9_]+)*")
_NUM = re.compile(r"\d+")
_LOCK = threading.Lock()
_MODEL: dict[str, TextModel | None] = {}


def tokens(text: str) -> list[str]:
    """Lower-cased words with digits masked, then the bigrams of neighbouring words."""
    words = [_NUM.sub("0", w) for w in _WORD.findall(text.lower())]
    return words + [f"{a} {b}" for a, b in itertools.pairwise(words)]


def featurize(text: str) -> dict[int, float]:
    """Hashed, log-scaled, L2-normalised token counts of one text."""
    counts: dict[int, float] = {}
    for tok in tokens(text):
        idx = zlib.crc32(tok.encode("utf-8")) & (DIM - 1)
        counts[idx] = counts.get(idx, 0.0) + 1.0
    vec = {k: 1.0 + math.log(v) for k, v in counts.items()}
    norm = math.sqrt(sum(v * v for v in vec.values())) or 1.0
    return {k: v / norm for k, v in vec.items()}


@dataclass
class TextModel:
    classes: list[str]
    intercept: np.ndarray  # (n_classes,)
    rows: dict[int, int]  # hashed feature id -> row of `weights`
    weights: np.ndarray  # (n_features, n_classes)

    def scores(self, feats: dict[int, float]) -> np.ndarray:
        import numpy as np
        out = self.intercept.astype(np.float64).copy()
        for k, v in feats.items():
            r = self.rows.get(k)
            if r is not None:
                out += v * self.weights[r]
        return out

    def predict(self, text: str) -> list[tuple[str, float]]:
        """(code, probability) for every class, most probable first."""
        import numpy as np
        s = self.scores(featurize(text))
        p = np.exp(s - s.max())
        p /= p.sum()
        order = np.argsort(-p)
        return [(self.classes[i], float(p[i])) for i in order]

    def best_line(self, lines: Iterable[str], code: str) -> str | None:
        """The line whose own words weigh most for `code` (None when no line has any)."""
        if code not in self.classes:
            return None
        c = self.classes.index(code)
        best, best_score = None, 0.0
        for line in lines:
            s = line.strip()
            if not s:
                continue
            score = sum(self.weights[r][c] for r in
                        (self.rows.get(k) for k in featurize(s)) if r is not None)
            if score > best_score:
                best, best_score = s, score
        return best


def load(path: Path = ARTIFACT) -> TextModel | None:
    """The shipped model (cached; None when the artifact is missing)."""
    import numpy as np
    key = str(path)
    with _LOCK:
        if key not in _MODEL:
            if not path.exists():
                _MODEL[key] = None
            else:
                with np.load(path, allow_pickle=False) as z:
                    feats = z["features"].tolist()
                    _MODEL[key] = TextModel(
                        [str(c) for c in z["classes"]], z["intercept"].astype(np.float64),
                        {int(f): i for i, f in enumerate(feats)}, z["weights"].astype(np.float64))
        return _MODEL[key]


def train(rows: list[dict[str, Any]], c: float = 20.0) -> dict[str, np.ndarray]:
    """Fit on rows with "text" and "label" (callers pass the TRAIN split only); returns the
    arrays of the artifact."""
    import numpy as np
    from scipy.sparse import csr_matrix
    from sklearn.linear_model import LogisticRegression

    feats = [featurize(r["text"]) for r in rows]
    used = sorted({k for f in feats for k in f})
    col = {k: i for i, k in enumerate(used)}
    data, ind, ptr = [], [], [0]
    for f in feats:
        for k, v in sorted(f.items()):
            ind.append(col[k])
            data.append(v)
        ptr.append(len(ind))
    x = csr_matrix((data, ind, ptr), shape=(len(rows), len(used)))
    y = [r["label"] for r in rows]
    clf = LogisticRegression(C=c, max_iter=5000)
    clf.fit(x, y)
    return {"classes": np.array(clf.classes_, dtype=str),
            "intercept": clf.intercept_.astype(np.float32),
            "features": np.array(used, dtype=np.int64),
            "weights": clf.coef_.T.astype(np.float32)}


def save(arrays: dict[str, np.ndarray], path: Path = ARTIFACT) -> None:
    import numpy as np
    with open(path, "wb") as fh:
        np.savez_compressed(fh, **arrays)
    _MODEL.pop(str(path), None)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    with open(args[0], encoding="utf-8") as fh:
        rows = [r for r in map(json.loads, fh) if r["split"] == "train"]
    t0 = time.perf_counter()
    arrays = train(rows)
    secs = time.perf_counter() - t0
    out = Path(args[1]) if len(args) > 1 else ARTIFACT
    save(arrays, out)
    print(f"trained on {len(rows)} train cases, {len(arrays['features'])} features, "
          f"{len(arrays['classes'])} classes in {secs:.2f} s -> {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
