"""Translation batches: k translations of one answer side by side in a batch, as signal instead of false negatives.

Every other sampler keeps one answer group out of a batch twice (a translation of a query's answer would be a false
negative for MultipleNegativesRankingLoss). Here a batch group is made of *slots*: each slot is one question id in k
rows whose passages are k translations of its answer (k distinct passage languages), and the slots have pairwise
distinct ids, answer groups and hard-negative groups, as in every other batch. A multi-positive loss
(training/multi_positive_loss.py) then treats every translation in the batch as a positive, which is what the
LAReQA Multi pool rewards: rank every copy of the answer above every wrong answer, whatever its language.

Two ways to pick a slot's k rows (`queries`):
- "one": the batch group has one query language X (drawn per batch group, as X-X / X-Y batches do); each slot is
  (id, X, y_1) ... (id, X, y_k): its k rows share the query and differ in the passage language. With `own=True` X is
  one of the y (the query meets its own-language answer and k-1 translations: the comparison the Multi pool makes);
  with `own=False` all y differ from X (an X-Y batch with k passage languages per id).
- "parallel": each slot is (id, x_1, x_1) ... (id, x_k, x_k): k monolingual rows in k distinct languages, so the
  queries are translations of each other too.
With `alpha > 0` a batch group is a plain X-X batch with probability alpha (hybrid's coin; alpha 1 draws exactly the
xx sampler's batches), else a translation batch.

`with_row_labels` adds the integer `label` column the losses read (answer group, query language, passage language):
the collator passes a `label` column through to the loss as `labels`, so no collator change is needed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from hybridbatch.errors import UsageError
from hybridbatch.sampling.base import ItemQueue, KindStream, PairBatchSampler, check_alpha
from hybridbatch.sampling.index import PairColumns, PairIndex
from hybridbatch.sampling.kinds import BatchKind, Option, XXBatch

#: the fields of the `label` column, in order: what `labels[:, i]` holds in the loss
LABEL_FIELDS = ("group", "query_lang", "passage_lang")
GROUP_LABEL, QUERY_LANG_LABEL, PASSAGE_LANG_LABEL = range(3)
QUERY_MODES = ("one", "parallel")


class TranslationBatch(BatchKind):
    """Slots of k rows of one id whose passages are k translations of its answer (see the module docstring).
    Items are ids; an option is (source, query language X) for queries="one", one per source for "parallel"."""

    name = "translations"
    cross = True

    def __init__(self, k: int = 2, queries: str = "one", own: bool = True) -> None:
        if not isinstance(k, int) or k < 2:
            raise UsageError(f"k (translations per answer in a batch) must be an integer >= 2, got {k!r}")
        if queries not in QUERY_MODES:
            raise UsageError(f"queries must be one of {', '.join(QUERY_MODES)}, not {queries!r}")
        self.k, self.queries, self.own = k, queries, bool(own)
        self.allowed: np.ndarray | None = None

    def options(self, index: PairIndex, s: int, allowed: np.ndarray) -> list[Option]:
        self.allowed = allowed
        has = index.has(s) & allowed[None, :]
        if self.queries == "parallel":
            return [self._option(index, s, -1, np.nonzero(has.sum(axis=1) >= self.k)[0])]
        out = []
        for x in np.nonzero(allowed)[0]:
            others = self._others(index, s, int(x))
            need = self.k - 1 if self.own else self.k
            out.append(self._option(index, s, int(x), np.nonzero(has[:, x] & (others.sum(axis=1) >= need))[0]))
        return out

    def _others(self, index: PairIndex, s: int, x: int) -> np.ndarray:
        """bool [n_ids, L]: the passage languages y != x with an (id, x, y) row."""
        ok = (index.index[s][:, x, :] >= 0) & self.allowed[None, :]
        ok[:, x] = False
        return ok

    def _option(self, index: PairIndex, s: int, x: int, ids: np.ndarray) -> Option:
        has = index.has(s)
        first = np.argmax(has[ids], axis=1) if len(ids) else np.zeros(0, np.int64)
        rep = index.index[s][ids, first, first]  # a row of each id: its answer group spreads the queue
        groups = index.keys[rep, 1] if len(ids) else np.zeros(0, np.int64)
        return Option(self.name, s, x, -1, ids, len(np.unique(groups)), ("translations", s, x), groups)

    def slot(self, index: PairIndex, opt: Option, item: int, rng: np.random.Generator | None) -> list[int]:
        """The k dataset rows of id `item` for this option; languages drawn with `rng` (None: the first eligible
        ones, a deterministic representative for the feasibility check)."""
        idx = index.index[opt.source]

        def pick(langs: np.ndarray, m: int) -> list[int]:
            chosen = langs[:m] if rng is None else rng.choice(langs, size=m, replace=False)
            return [int(v) for v in chosen]

        if self.queries == "parallel":
            langs = np.nonzero(index.has(opt.source)[item] & self.allowed)[0]
            return [int(idx[item, lang, lang]) for lang in pick(langs, self.k)]
        x = opt.x
        ok = (np.asarray(idx[item, x, :]) >= 0) & self.allowed  # this id's rows (item, x, y), y != x
        ok[x] = False
        others = np.nonzero(ok)[0]
        ys = ([x] + pick(others, self.k - 1)) if self.own else pick(others, self.k)
        return [int(idx[item, x, y]) for y in ys]


class TranslationSampler(PairBatchSampler):
    """Batches of translation slots (k rows of one id, k translations of its answer; `queries`, `own`: see the
    module docstring), or with probability `alpha` a plain X-X batch. `batch_size` must be a multiple of k; with
    several processes each rank's batch holds whole slots. The epoch has the base sampler's number of steps (equal
    compute against the other samplers), so with queries="one" it draws about 1/k of the (id, X) query items."""

    name = "translations"
    takes: ClassVar[tuple[str, ...]] = ("alpha", "k", "queries", "own")
    needs_cross = True
    same_batches_as: ClassVar[dict[float, str]] = {1.0: "xx"}
    repeats_answers: ClassVar[bool] = True  # k rows of one answer group per slot: positives, not negatives

    @classmethod
    def check_options(cls, k: int = 2, queries: str = "one", own: bool = True) -> None:
        """The checks of k and queries, without a dataset (the registry's sampler_options calls it)."""
        TranslationBatch(k, queries, own)

    def __init__(self, dataset: Any, batch_size: int, *args: Any, k: int = 2, queries: str = "one",
                 own: bool = True, alpha: float = 0.0, **kwargs: Any) -> None:
        check_alpha(alpha)
        self.translations = TranslationBatch(k, queries, own)  # checks k and queries
        if isinstance(batch_size, int) and batch_size % k:
            raise UsageError(f"batch size {batch_size} must be a multiple of k = {k} (whole translation slots)")
        self.k, self.queries, self.own, self.alpha = k, queries, bool(own), float(alpha)
        super().__init__(dataset, batch_size, *args, **kwargs)

    @classmethod
    def needs_cross_rows(cls, alpha: float | None = None) -> bool:
        return alpha != 1.0  # queries="parallel" needs none, but the class cannot know the instance's mode

    def _kinds(self) -> list[BatchKind]:
        return [XXBatch(), self.translations]

    def _kind_probs(self) -> list[float]:
        return [self.alpha, 1.0 - self.alpha]

    @property
    def slots(self) -> int:
        """Translation slots per batch group (all processes)."""
        return self.need // self.k

    def _options(self, kind: BatchKind) -> list[Option]:
        if kind is not self.translations:
            return super()._options(kind)
        keep = []
        for s in range(len(self.index.sources)):
            for opt in kind.options(self.index, s, self._allowed_langs()):
                opt.compatible = self._compatible_slots(opt)
                opt.groups = len(opt.compatible) // self.k
                if opt.groups >= self.slots:
                    keep.append(opt)
                elif len(opt.items):
                    self.dropped.append({"kind": kind.name, "option": opt.label(self.index),
                                         "distinct_groups": opt.groups, "items": int(len(opt.items)),
                                         "needed": self.slots})
        return keep

    def _slot_keys(self, rows: list[int]) -> set[int]:
        return set().union(*(self.index.keys.row(r) for r in rows))

    def _compatible_slots(self, opt: Option) -> np.ndarray:
        """Greedily, up to `slots` slots (their rows, slot by slot) with pairwise disjoint keys: an option offering
        fewer cannot fill a batch group (it is dropped); the slots found are its fallback."""
        used: set[int] = set()
        out: list[int] = []
        for item in opt.items.tolist():
            rows = self.translations.slot(self.index, opt, int(item), None)
            keys = self._slot_keys(rows)
            if used.isdisjoint(keys):
                used |= keys
                out.extend(rows)
                if len(out) == self.slots * self.k:
                    break
        return np.asarray(out, dtype=np.int64)

    def _check_options(self) -> None:
        if self.alpha < 1.0 and not self.options[self.translations.name]:
            best = max((d["distinct_groups"] for d in self.dropped if d["kind"] == self.translations.name),
                       default=0)
            raise UsageError(
                f"batch size {self.batch_size} x {self.world_size} process(es) needs {self.slots} answer groups with "
                f"at least {self.k} languages (and distinct hard-negative groups) per step, but the most any "
                f"option of 'translations' batches offers is {best}; lower --batch-size or k")
        super()._check_options()

    def _fill(self, stream: KindStream, oi: int, queues: dict[tuple[Any, ...], ItemQueue]) -> np.ndarray:
        """`slots` slots of option `oi` with pairwise disjoint keys, as the base class fills rows: ids come off the
        option's queue, one that clashes goes back to its front; the option's compatible slots as the fallback."""
        if stream.kind is not self.translations:
            return super()._fill(stream, oi, queues)
        opt, rng = stream.options[oi], stream.rng
        q = queues.get(opt.queue)
        if q is None:
            q = queues[opt.queue] = ItemQueue(opt.item_groups)
        used: set[int] = set()
        out: list[int] = []
        deferred: list[int] = []
        refills = 0
        while len(out) < self.need:
            if not q.pending:
                if refills == 2:
                    q.pending.extend(reversed(deferred))
                    order = rng.permutation(len(opt.compatible) // self.k)
                    return opt.compatible.reshape(-1, self.k)[order].reshape(-1)
                q.refill(rng)
                refills += 1
            pos = q.pending.pop()
            rows = self.translations.slot(self.index, opt, int(opt.items[pos]), rng)
            keys = self._slot_keys(rows)
            if used.isdisjoint(keys):
                used |= keys
                out.extend(rows)
            else:
                deferred.append(pos)
        q.pending.extend(reversed(deferred))
        return np.asarray(out, dtype=np.int64)

    def config(self) -> dict[str, Any]:
        return {**super().config(), "alpha": self.alpha, "k": self.k, "queries": self.queries, "own": self.own}


def with_row_labels(dataset: Any, languages: Sequence[str] | None = None, *, label_column: str = "label",
                    columns: PairColumns = PairColumns()) -> tuple[Any, list[str]]:
    """The pair dataset with an integer `label` column `[group, query_lang, passage_lang]` per row (LABEL_FIELDS),
    and the language vocabulary used (sorted, or `languages` as given, so that a validation set gets the training
    set's codes). Group codes are dense, by first appearance of (source, group) (a row without a group: its id,
    as the samplers' index reads it); only their equality within a batch matters. The sentence-transformers
    collator hands the column to the loss as `labels` (a (batch, 3) LongTensor); losses that take no labels
    ignore it. Label before `.shuffle` / `.select`: on an index-mapped dataset `add_column` rewrites the whole
    table (30 s for the XQuAD-R train pairs), on a plain one it appends a column."""
    names = set(dataset.column_names)
    need = [columns.id, columns.query_lang, columns.passage_lang]
    missing = [c for c in need if c not in names]
    if missing:
        raise UsageError(f"row labels read the columns {', '.join(map(repr, need))}; missing "
                         f"{', '.join(map(repr, missing))} (columns: {', '.join(sorted(names))})")
    if label_column in names:
        raise UsageError(f"the dataset already has a {label_column!r} column")
    data = dataset.select_columns([c for c in columns.names() if c in names])[:]
    ql = [str(v) for v in data[columns.query_lang]]
    pl = [str(v) for v in data[columns.passage_lang]]
    vocab = sorted(set(ql) | set(pl)) if languages is None else [str(v) for v in languages]
    lpos = {lang: i for i, lang in enumerate(vocab)}
    unknown = sorted((set(ql) | set(pl)) - set(lpos))
    if unknown:
        raise UsageError(f"languages {unknown} are not in the given vocabulary {vocab}")
    src = data.get(columns.source) or [""] * len(ql)
    groups = data.get(columns.group) or [None] * len(ql)
    codes: dict[tuple[str, str], int] = {}
    labels = []
    for qid, g, s, q, p in zip(data[columns.id], groups, src, ql, pl, strict=True):
        key = (str(s), str(g) if g not in (None, "") else str(qid))
        labels.append([codes.setdefault(key, len(codes)), lpos[q], lpos[p]])
    return dataset.add_column(label_column, labels), vocab
