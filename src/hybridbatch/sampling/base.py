"""The batch-sampler machinery every sampler shares: one epoch's plans drawn from kinds, options and item queues.

Every sampler is a `sentence_transformers` `DefaultBatchSampler` taking the trainer's arguments (`dataset`,
`batch_size`, `drop_last`, `valid_label_columns`, `generator`, `seed`), so
`SentenceTransformerTrainingArguments(batch_sampler=functools.partial(HybridSampler, alpha=0.5))` works on any pair
dataset (see `dataset.py`): the sampler reads the metadata columns of the dataset it is given and nothing else.
A sampler (samplers.py) composes one small `BatchKind` per kind of batch (kinds.py) with the probability of each kind,
and declares what it takes and needs as class attributes (`takes`, `needs_cross`, `same_batches_as`).

Invariants (tests/test_sampling.py):
- one batch *group* = the `world_size` batches of one step across processes: it has one kind, source and
  languages, and no id, answer group or hard-negative group twice (translations of one answer would be false
  negatives);
- within an epoch every option (kind, source, languages) draws its items without replacement, so an epoch covers
  (nearly) every (id, language) item; options without enough answer groups are dropped and reported (`dropped`);
- the plans of an epoch are a deterministic function of (seed, epoch) and the dataset: identical on every process
  and after a resume; hybrid at alpha 1 (0) makes exactly the batches of xx (xy) for the same seed.

Multi-process: accelerate's `BatchSamplerShard` (split_batches=False, what the trainer's `accelerator.prepare`
wraps a batch sampler in) gives batch i to rank i % world_size; the sampler therefore decides once per group of
world_size consecutive batches.
"""

from __future__ import annotations

import math
import os
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
from sentence_transformers.base.sampler import DefaultBatchSampler

from hybridbatch.errors import UsageError
from hybridbatch.sampling.dataset import warn_dropped_languages
from hybridbatch.sampling.index import PairColumns, PairIndex, concat_sources
from hybridbatch.sampling.kinds import PER_PAIR, BatchKind, Option
from hybridbatch.sampling.mix import summarise_plans
from hybridbatch.sampling.rows import ItemStack


def check_alpha(alpha: float) -> None:
    """The one check of alpha (the share of X-X batches): a number in [0, 1]."""
    if not (isinstance(alpha, (int, float)) and 0.0 <= float(alpha) <= 1.0) or math.isnan(float(alpha)):
        raise UsageError(f"alpha must be in [0, 1] (the share of X-X batches), got {alpha}")


def world_size_from_env() -> int:
    """The number of training processes: torch.distributed when initialised, else $WORLD_SIZE (torchrun), else 1."""
    try:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            return dist.get_world_size()
    except ImportError:  # pragma: no cover
        pass
    return max(1, int(os.environ.get("WORLD_SIZE", "1")))


@dataclass(frozen=True)
class BatchPlan:
    """One step's decision and rows: `world_size * batch_size` rows, rank r trains `rows[r*B:(r+1)*B]`."""

    step: int
    kind: str
    source: str
    qlang: str
    plang: str
    rows: np.ndarray


class ItemQueue:
    """The not-yet-drawn items of one option in this epoch (drawn from the end); a new pass when empty. A pass is
    shuffled, then ordered in rounds - one item of every answer group, then a second of every group that has one,
    and so on - so that consecutive items rarely share a group and a large group is spread over the epoch instead
    of being left for its end."""

    def __init__(self, groups: np.ndarray) -> None:
        self.groups = groups
        self.pending = ItemStack()
        self.passes = 0

    def refill(self, rng: np.random.Generator) -> None:
        n = len(self.groups)
        perm = rng.permutation(n)
        g = self.groups[perm]
        by_group = np.argsort(g, kind="stable")
        sg = g[by_group]
        starts = np.r_[0, np.nonzero(sg[1:] != sg[:-1])[0] + 1]
        run = np.repeat(starts, np.diff(np.r_[starts, n]))
        rank = np.empty(n, np.int64)
        rank[by_group] = np.arange(n) - run
        order = perm[np.lexsort((np.arange(n), rank))]
        self.pending = ItemStack(order[::-1])
        self.passes += 1


@dataclass
class KindStream:
    """The batches of one kind within one epoch, drawn in order with their own generator, so that the k-th batch of
    a kind does not depend on how many batches of other kinds came before it."""

    kind: BatchKind
    options: list[Option]
    rng: np.random.Generator
    deck: list[int] = field(default_factory=list)
    round: np.ndarray | None = None


@dataclass
class _Epoch:
    """An epoch's plans so far, the kinds' streams, and the item queues: X-X and X-Y options of query language X
    share one queue of ids, so a hybrid epoch covers the (id, X) items once whichever kind draws them."""

    plans: list[BatchPlan]
    streams: dict[str, KindStream]
    queues: dict[tuple[Any, ...], ItemQueue] = field(default_factory=dict)


class PairBatchSampler(DefaultBatchSampler):
    """Base class. Beyond DefaultBatchSampler's arguments: `world_size` (default: from the environment),
    `num_batches` (the batches of one epoch, a multiple of world_size; default: about one pass over the (id,
    language) items), `lang_weighting` ('uniform' over the languages / language pairs of a source, or 'size': in
    proportion to their ids) and the metadata column names (`id_column`, `query_lang_column`, `passage_lang_column`,
    `group_column`, `negative_group_column`, `source_column`). `generator` is not used: the draws are seeded from
    `seed` (the trainer passes `args.seed`) and the epoch, like `GroupByLabelBatchSampler` seeds its generator."""

    # What a sampler declares (samplers.py): nothing outside sampling/ decides by a sampler's name.
    name = "base"
    takes: ClassVar[tuple[str, ...]] = ()  # its own keyword options (alpha, per_pair, ...): what callers may pass
    needs_cross = False  # it trains on cross-lingual (X-Y) rows: the pair dataset must hold them
    # alpha -> the sampler whose run a sweep reuses for it there (it draws exactly that sampler's batches)
    same_batches_as: ClassVar[dict[float, str]] = {}

    def __init__(
        self,
        dataset: Any,
        batch_size: int,
        drop_last: bool = True,
        valid_label_columns: list[str] | None = None,
        generator: Any = None,
        seed: int = 0,
        *,
        world_size: int | None = None,
        num_batches: int | None = None,
        lang_weighting: str = "uniform",
        id_column: str = "id",
        query_lang_column: str = "query_lang",
        passage_lang_column: str = "passage_lang",
        group_column: str = "group",
        negative_group_column: str = "negative_group",
        source_column: str = "source",
    ) -> None:
        if not isinstance(batch_size, int) or batch_size < 1:
            raise UsageError(f"batch size must be at least 1, got {batch_size}")
        if lang_weighting not in ("uniform", "size"):
            raise UsageError(f"lang_weighting must be 'uniform' or 'size', got {lang_weighting!r}")
        self.columns = PairColumns(id_column, query_lang_column, passage_lang_column, group_column,
                                   negative_group_column, source_column)
        self.dataset = concat_sources(dataset, source_column)
        super().__init__(self.dataset, batch_size=batch_size, drop_last=True, valid_label_columns=valid_label_columns,
                         generator=generator, seed=int(seed or 0))
        self.index = PairIndex.from_dataset(self.dataset, self.columns)
        self.world_size = int(world_size or world_size_from_env())
        self.lang_weighting = lang_weighting
        self.need = self.batch_size * self.world_size
        self.kinds = self._kinds()
        self.probs = self._kind_probs()
        self.dropped: list[dict[str, Any]] = []
        # kinds that are never drawn (hybrid at alpha 0 / 1) have no options and report nothing dropped
        self.options = {k.name: self._options(k) if p > 0 else [] for k, p in zip(self.kinds, self.probs, strict=True)}
        self._check_options()
        warn_dropped_languages(self)  # a language none of whose options can fill a batch group: say so
        allowed = self._allowed_langs()
        items = sum(int((self.index.has(s) & allowed[None, :]).sum()) for s in range(len(self.index.sources)))
        if num_batches is None:
            num_batches = max(1, items // self.need) * self.world_size
        if num_batches < 1 or num_batches % self.world_size:
            raise UsageError(f"num_batches ({num_batches}) must be a positive multiple of the world size "
                             f"({self.world_size})")
        self.num_batches = int(num_batches)
        self._epoch_state: dict[int, _Epoch] = {}

    # -- what a subclass decides ------------------------------------------------------------------------------------
    def _kinds(self) -> list[BatchKind]:
        raise NotImplementedError

    def _kind_probs(self) -> list[float]:
        return [1.0]

    def _allowed_langs(self) -> np.ndarray:
        return np.ones(len(self.index.languages), dtype=bool)

    # -- options --------------------------------------------------------------------------------------------------
    def _options(self, kind: BatchKind) -> list[Option]:
        """The options of `kind` with enough answer groups for a batch group; the others are reported."""
        keep = []
        for s in range(len(self.index.sources)):
            for opt in kind.options(self.index, s, self._allowed_langs()):
                opt.compatible = self._compatible(opt.rows if opt.rows is not None else np.zeros(0, np.int64))
                opt.groups = len(opt.compatible)
                opt.rows = None  # read only by this check (10M ids: 40 MB per option)
                if opt.groups >= self.need:
                    keep.append(opt)
                elif len(opt.items):
                    self.dropped.append({"kind": kind.name, "option": opt.label(self.index),
                                         "distinct_groups": opt.groups, "items": int(len(opt.items)),
                                         "needed": self.need})
        return keep

    def _compatible(self, rows: np.ndarray) -> np.ndarray:
        """Greedily, up to `need` of `rows` whose keys (id, answer group, negative group) are pairwise distinct: an
        option offering fewer cannot fill a batch group (it is dropped); the rows found are its fallback."""
        used: set[int] = set()
        out: list[int] = []
        for k, r in self.index.keys.items(rows):  # a chunk at a time: the loop stops after `need` rows
            k = [v for v in k if v >= 0]
            if used.isdisjoint(k):
                used.update(k)
                out.append(r)
                if len(out) == self.need:
                    break
        return np.asarray(out, dtype=np.int64)

    def _check_options(self) -> None:
        ix = self.index
        for kind, prob in zip(self.kinds, self.probs, strict=True):
            if prob <= 0 or self.options[kind.name]:
                continue
            if kind.cross:
                multi = any((ix.has(s).sum(axis=1) >= 2).any() for s in range(len(ix.sources)))
                if len(ix.languages) < 2 or not multi:
                    raise UsageError(
                        f"sampler {self.name!r} needs at least two languages with shared question ids, but the "
                        f"training data has only {ix.languages}; use --sampler xx or en, or add languages")
            best = max((d["distinct_groups"] for d in self.dropped if d["kind"] == kind.name), default=0)
            raise UsageError(
                f"batch size {self.batch_size} x {self.world_size} process(es) needs {self.need} pairs with distinct "
                f"answer (and hard-negative) groups per step, but the most any option of {kind.name!r} batches "
                f"offers is {best}; lower --batch-size")

    # -- the sampler interface ------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return self.num_batches

    def __iter__(self) -> Iterator[list[int]]:
        B = self.batch_size
        for i in range(self.num_batches):
            plan = self.plan(i // self.world_size)
            r = i % self.world_size
            yield plan.rows[r * B:(r + 1) * B].tolist()

    def set_epoch(self, epoch: int) -> None:
        super().set_epoch(epoch)
        self._epoch_state = {e: st for e, st in self._epoch_state.items() if e == epoch}

    def plan(self, group: int, epoch: int | None = None) -> BatchPlan:
        """The decision and rows of batch group `group` (= step, counting micro-batches) of `epoch`."""
        epoch = self.epoch if epoch is None else epoch
        st = self._epoch_state.get(epoch)
        if st is None:
            st = self._epoch_state[epoch] = _Epoch([], {})
        while len(st.plans) <= group:
            st.plans.append(self._next_plan(epoch, len(st.plans), st))
        return st.plans[group]

    def _first_kind_prob(self, epoch: int, group: int) -> float:
        """The chance that batch group `group` of `epoch` is of the first kind (a curriculum varies it)."""
        return self.probs[0]

    def _kind_of(self, epoch: int, group: int) -> BatchKind:
        # The coin is tossed only when both kinds are possible, so that hybrid at alpha 1 (0) draws exactly the
        # batches of xx (xy) for the same seed: the sweep's end points are those runs, not look-alikes.
        p = self._first_kind_prob(epoch, group)
        if len(self.kinds) == 1 or p >= 1.0:
            return self.kinds[0]
        if p <= 0.0:
            return self.kinds[1]
        rng = np.random.default_rng([int(self.seed), int(epoch), int(group), 0x4B42])
        return self.kinds[int(rng.random() >= p)]

    def _stream(self, st: _Epoch, kind: BatchKind, epoch: int) -> KindStream:
        if kind.name not in st.streams:
            tag = zlib.crc32(kind.name.encode())
            st.streams[kind.name] = KindStream(kind, self.options[kind.name],
                                                np.random.default_rng([int(self.seed), int(epoch), tag, 0x5354]))
        return st.streams[kind.name]

    def _deck(self, options: list[Option]) -> np.ndarray:
        """How often each option appears in one shuffled round of the option draw: sources in proportion to their
        (id, language) items, options within a source uniformly (or by their items with lang_weighting='size').
        Drawing rounds without replacement spreads an epoch evenly over the options, so each exhausts its queue
        about once."""
        w = np.zeros(len(options))
        for s in {o.source for o in options}:
            mine = [i for i, o in enumerate(options) if o.source == s]
            sizes = np.array([len(options[i].items) if self.lang_weighting == "size" else 1.0 for i in mine])
            w[mine] = self.index.items(s) * sizes / sizes.sum()
        counts = np.maximum(1, np.round(w / w.min())).astype(np.int64)
        if counts.sum() > 4096:
            counts = np.maximum(1, np.round(counts * 4096 / counts.sum())).astype(np.int64)
        return np.repeat(np.arange(len(options)), counts)

    def _pick_option(self, stream: KindStream) -> int:
        if not stream.deck:
            if stream.round is None:
                stream.round = self._deck(stream.options)
            stream.deck = stream.rng.permutation(stream.round).tolist()
        return stream.deck.pop()

    def _next_plan(self, epoch: int, group: int, st: _Epoch) -> BatchPlan:
        kind = self._kind_of(epoch, group)
        stream = self._stream(st, kind, epoch)
        oi = self._pick_option(stream)
        opt = stream.options[oi]
        rows = self._fill(stream, oi, st.queues)
        ix = self.index
        return BatchPlan(group, kind.name, ix.sources[opt.source],
                         ix.languages[opt.x] if opt.x >= 0 else PER_PAIR,
                         ix.languages[opt.y] if opt.y >= 0 else PER_PAIR, rows)

    def _fill(self, stream: KindStream, oi: int, queues: dict[tuple[Any, ...], ItemQueue]) -> np.ndarray:
        """`need` rows of option `oi` whose keys (id, answer group, negative group) are all distinct: items come
        off the option's queue; an item that clashes with the group so far goes back to the front of the queue."""
        opt, rng = stream.options[oi], stream.rng
        key = opt.queue or (stream.kind.name, oi)
        q = queues.get(key)
        if q is None:
            groups = opt.item_groups if opt.item_groups is not None else np.arange(len(opt.items))
            q = queues[key] = ItemQueue(groups)
        used: set[int] = set()
        out: list[int] = []
        deferred: list[int] = []
        refills = 0
        while len(out) < self.need:
            if not q.pending:
                if refills == 2:  # the queue order cannot complete this group: the option's compatible rows can
                    q.pending.extend(reversed(deferred))
                    return rng.permutation(opt.compatible).astype(np.int64)
                q.refill(rng)
                refills += 1
            pos = q.pending.pop()
            row = stream.kind.row(self.index, opt, int(opt.items[pos]), rng)
            keys = self.index.keys.row(row) if row >= 0 else ()
            if row >= 0 and used.isdisjoint(keys):
                used.update(keys)
                out.append(row)
            else:
                deferred.append(pos)
        q.pending.extend(reversed(deferred))
        return np.asarray(out, dtype=np.int64)

    # -- what happened ------------------------------------------------------------------------------------------
    def mix(self, n_groups: int | None = None, epoch: int | None = None) -> dict[str, Any]:
        """Counts of batch kinds, sources and language pairs over the first `n_groups` steps (default: one epoch)."""
        n = self.num_batches // self.world_size if n_groups is None else n_groups
        return summarise_plans(self.plan(g, epoch) for g in range(n))

    def coverage(self, n_groups: int | None = None, epoch: int | None = None) -> dict[str, Any]:
        """Share of the (id, language) items seen as a query and as a passage in the first `n_groups` steps of an
        epoch (default: all of it), and the most passes any option made over its items."""
        ix = self.index
        n = self.num_batches // self.world_size if n_groups is None else n_groups
        rows = np.concatenate([self.plan(g, epoch).rows for g in range(n)]) if n else np.zeros(0, np.int64)
        allowed = self._allowed_langs()
        total = sum(int((ix.has(s) & allowed[None, :]).sum()) for s in range(len(ix.sources)))
        L = len(ix.languages)

        def seen(lang: np.ndarray) -> int:
            keys = (ix.row_source[rows].astype(np.int64) * (len(ix.row_id) + 1) + ix.row_id[rows]) * L + lang[rows]
            return len(np.unique(keys))

        st = self._epoch_state.get(self.epoch if epoch is None else epoch)
        passes = max((q.passes for q in (st.queues.values() if st else [])), default=0)
        return {"steps": n, "items": total, "query_items": seen(ix.row_qlang) / total if total else 0.0,
                "passage_items": seen(ix.row_plang) / total if total else 0.0, "max_passes": passes}

    @classmethod
    def needs_cross_rows(cls, alpha: float | None = None) -> bool:
        """Whether the pair dataset must hold cross-lingual rows for this sampler at `alpha`."""
        return cls.needs_cross

    def config(self) -> dict[str, Any]:
        return {"sampler": self.name, "batch_size": self.batch_size, "world_size": self.world_size,
                "seed": self.seed, "num_batches": self.num_batches, "lang_weighting": self.lang_weighting,
                "columns": dict(zip(("id", "query_lang", "passage_lang", "group", "negative_group", "source"),
                                    self.columns.names(), strict=True)),
                "dropped": self.dropped}

