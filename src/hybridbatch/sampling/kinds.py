"""Batch kinds: one small object per kind of batch, composed by the samplers.

A kind lists its *options* (what is decided once per batch group: the source and, for X-X / X-Y, the languages)
and turns one queued item of an option into a dataset row (per-pair kinds draw the passage language there).
Items are ids (per-batch languages) or (id, query language) pairs (per-pair languages), so drawing the items of an
option without replacement covers the (id, language) items of an epoch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hybridbatch.sampling.columns import n_distinct
from hybridbatch.sampling.index import PairIndex

PER_PAIR = "*"


@dataclass
class Option:
    """One thing a batch group can be: `kind` from source `source` with query language `x` and passage language
    `y` (-1: drawn per pair). `items` are what is drawn without replacement."""

    kind: str
    source: int
    x: int
    y: int
    items: np.ndarray
    groups: int  # distinct answer groups among the option's pairs: at most this many pairs per batch group
    queue: tuple = ()  # options with the same key draw from one queue of items
    item_groups: np.ndarray | None = None  # answer-group code of each item (a queue spreads a group's items)
    rows: np.ndarray | None = None  # rows this option can yield (one per item): for the feasibility check
    compatible: np.ndarray | None = None  # `need` rows with pairwise distinct keys (set by the sampler)

    def label(self, index: PairIndex) -> str:
        lang = (lambda i: index.languages[i] if i >= 0 else PER_PAIR)
        src = index.sources[self.source]
        return f"{self.kind}{' ' + src if src else ''} {lang(self.x)}-{lang(self.y)}"


class BatchKind:
    """Base: a kind with per-batch languages (items are ids)."""

    name = "base"
    cross = False  # its pairs are cross-lingual: it needs two languages with shared ids

    def options(self, index: PairIndex, s: int, allowed: np.ndarray) -> list[Option]:
        raise NotImplementedError

    def row(self, index: PairIndex, opt: Option, item: int, rng: np.random.Generator) -> int:
        """The dataset row of `item` for this option, -1 when the id lacks the option's passage language."""
        return int(index.index[opt.source][item, opt.x, opt.y])

    def _pair_option(self, index: PairIndex, s: int, x: int, y: int) -> Option:
        """Items are the ids in query language x, one queue per (source, x): the X-Y options of one X share it, so
        an epoch draws each (id, X) query item about once whatever Y it is paired with."""
        both = np.nonzero(index.index[s][:, x, y] >= 0)[0]  # the (x, y) row exists (not so without cross rows)
        rows = index.index[s][both, x, y]
        ids, item_groups = index.lang_items(s, x) if len(both) else (both, both)  # shared by the options of (s, x)
        return Option(self.name, s, x, y, ids, n_distinct(index.keys[rows, 1]), ("ids", s, x),
                      item_groups, rows)


class XXBatch(BatchKind):
    """Query and passage in one language X, the same for the whole batch group."""

    name = "xx"

    def options(self, index: PairIndex, s: int, allowed: np.ndarray) -> list[Option]:
        return [self._pair_option(index, s, x, x) for x in np.nonzero(allowed)[0]]


class XYBatch(BatchKind):
    """Query language X, passage language Y != X, the same for the whole batch group."""

    name = "xy"
    cross = True

    def options(self, index: PairIndex, s: int, allowed: np.ndarray) -> list[Option]:
        langs = np.nonzero(allowed)[0]
        return [self._pair_option(index, s, x, y) for x in langs for y in langs if x != y]


class _PerPairBatch(BatchKind):
    """Languages drawn per pair: one option per source; items are (id, query language)."""

    min_langs = 1

    def options(self, index: PairIndex, s: int, allowed: np.ndarray) -> list[Option]:
        has = index.has(s) & allowed[None, :]
        ok = has.sum(axis=1) >= self.min_langs
        ids, langs = np.nonzero(has & ok[:, None])
        L = len(index.languages)
        rows = index.index[s][ids, langs, langs]
        example = rows
        if self.min_langs > 1:  # a cross-lingual row per item: its first other language
            idx = index.index[s]
            example = np.array([next(int(idx[i, x, y]) for y in np.nonzero(has[i])[0] if y != x)
                                for i, x in zip(ids.tolist(), langs.tolist(), strict=True)], dtype=np.int64)
        return [Option(self.name, s, -1, -1, ids * L + langs, n_distinct(index.keys[rows, 1]), (self.name, s),
                       index.keys[rows, 1], example)]

    def passage_lang(self, x: int, langs: np.ndarray, rng: np.random.Generator) -> int:
        raise NotImplementedError

    def row(self, index: PairIndex, opt: Option, item: int, rng: np.random.Generator) -> int:
        L = len(index.languages)
        i, x = divmod(int(item), L)
        cache = self.__dict__.setdefault("_langs", {})
        if opt.source not in cache:  # per id: the languages it exists in (computed once per source)
            has = index.has(opt.source)
            cache[opt.source] = [np.nonzero(h)[0] for h in has]
        return int(index.index[opt.source][i, x, self.passage_lang(x, cache[opt.source][i], rng)])


class MixedBatch(_PerPairBatch):
    """Every pair monolingual, its language drawn per pair: languages mix within a batch."""

    name = "mixed"

    def passage_lang(self, x: int, langs: np.ndarray, rng: np.random.Generator) -> int:
        return x


class RandomBatch(_PerPairBatch):
    """Any existing pair: the passage language drawn per pair among the id's languages (X = Y allowed)."""

    name = "random"

    def __init__(self, allowed: np.ndarray | None = None) -> None:
        self.allowed = allowed

    def passage_lang(self, x: int, langs: np.ndarray, rng: np.random.Generator) -> int:
        if self.allowed is not None:
            langs = langs[self.allowed[langs]]
        return int(langs[int(rng.random() * len(langs))])


class XYPerPairBatch(RandomBatch):
    """Cross-lingual pairs with (X, Y) drawn per pair: Y among the id's other languages."""

    name = "xy-per-pair"
    cross = True
    min_langs = 2

    def passage_lang(self, x: int, langs: np.ndarray, rng: np.random.Generator) -> int:
        if self.allowed is not None:
            langs = langs[self.allowed[langs]]
        others = langs[langs != x]
        return int(others[int(rng.random() * len(others))])


class BilingualBatch(XYBatch):
    """X-Y's options (query language X, one other language Y for the whole batch group), but each pair's passage is
    in X with probability `mono_share`, else in Y. A query whose answer is in Y then meets wrong answers in its own
    language among the in-batch negatives (and one whose answer is in X meets wrong answers in Y): the comparison the
    multilingual pool makes, and where language bias shows, is made inside every batch."""

    name = "bilingual"

    def __init__(self, mono_share: float = 0.5) -> None:
        self.mono_share = float(mono_share)

    def row(self, index: PairIndex, opt: Option, item: int, rng: np.random.Generator) -> int:
        y = opt.x if rng.random() < self.mono_share else opt.y
        return int(index.index[opt.source][item, opt.x, y])


KINDS: dict[str, type[BatchKind]] = {k.name: k for k in (XXBatch, XYBatch, MixedBatch, RandomBatch, XYPerPairBatch,
                                                         BilingualBatch)}
