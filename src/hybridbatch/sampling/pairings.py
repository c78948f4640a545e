"""What a source can make, read off its rows: every sampler honours it (base.py), the multi-source sampler weights
and restricts each source by it (sources.py).

- passages (question -> a different text: XQuAD-R, XLingHealth, MKQA question -> answer, mMARCO): every kind;
- alignment (query and "passage" one text: MKQA question <-> question, Tatoeba bitext): only X-Y kinds (`xy`,
  `xy-per-pair`), since an X-X row pairs a text with itself (the index keeps those rows: they are the (id,
  language) items every option draws, but no batch may train on them);
- monolingual (no id in two languages: MIRACL): only kinds without cross-lingual pairs (`xx`, `mixed`, `random`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hybridbatch.sampling.index import PairIndex
from hybridbatch.sampling.kinds import BatchKind

ALIGNMENT_KINDS = frozenset({"xy", "xy-per-pair"})  # the kinds that never pair a row's text with itself
SOURCE_PAIRINGS = ("passages", "alignment", "monolingual")
_CHECK_ROWS = 200  # X-X rows per source looked at to tell alignment pairs from question-passage pairs


def kinds_allowed(kind: BatchKind, pairing: str) -> bool:
    """Whether a source of `pairing` can make batches of `kind`."""
    if pairing == "alignment":
        return kind.name in ALIGNMENT_KINDS
    if pairing == "monolingual":
        return not kind.cross
    return True


def _is_alignment(anchors: list[str], positives: list[str]) -> bool:
    """Query and passage are one text behind constant prefixes: after removing their longest common suffix, every
    row leaves the same (query, passage) remainder, the prefixes' own ends, and the shared texts outweigh it (so
    templated pairs such as "question 3 en" / "answer 3 en" are not taken for one text behind two prefixes)."""
    rest = set()
    shared = 0
    for a, p in zip(anchors, positives, strict=True):
        n = 0
        while n < min(len(a), len(p)) and a[len(a) - 1 - n] == p[len(p) - 1 - n]:
            n += 1
        if n == 0:
            return False
        shared += n
        rest.add((a[:len(a) - n], p[:len(p) - n]))
        if len(rest) > 1:
            return False
    if len(anchors) == 1:
        return rest == {("", "")}
    prefix = max(len(x) + len(y) for x, y in rest) if rest else 0
    return len(anchors) >= 2 and shared > prefix * len(anchors)


def source_pairings(dataset: Any, index: PairIndex, anchor_column: str = "anchor",
                    positive_column: str = "positive") -> dict[str, str]:
    """Source name -> 'passages', 'alignment' or 'monolingual' (see the module doc), read off the rows."""
    out = {}
    for s, name in enumerate(index.sources):
        rows = np.nonzero((index.row_source == s) & (index.row_qlang == index.row_plang))[0][:_CHECK_ROWS]
        texts = dataset.select_columns([anchor_column, positive_column]).select(rows.tolist()).to_dict()
        if len(rows) and _is_alignment(texts[anchor_column], texts[positive_column]):
            out[name] = "alignment"
        elif not (index.has(s).sum(axis=1) >= 2).any():
            out[name] = "monolingual"
        else:
            out[name] = "passages"
    return out


def source_label(dataset: Any, name: str) -> str:
    """How a message names a source: its `source` value, else the dataset's name (`pair_dataset` of one PairSet
    records it in `dataset.info.dataset_name`), else 'the dataset'."""
    if name:
        return repr(name)
    own = getattr(getattr(dataset, "info", None), "dataset_name", None)
    return repr(own) if own else "the dataset"
