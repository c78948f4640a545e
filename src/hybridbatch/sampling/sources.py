"""Several training sources at once, each with its own batch kinds and a weight: the multi-source training set.

sentence-transformers trains on several datasets by giving each its own batch sampler and letting a multi-dataset
sampler pick the dataset of each batch (`MultiDatasetBatchSamplers.PROPORTIONAL`: in proportion to size;
`ROUND_ROBIN`: equally). `MultiSourceSampler` does the same inside one batch sampler over the pair dataset (whose
`source` column names the source of each row, as `pair_dataset` of several PairSets writes it): one hybridbatch
sampler per source, and per batch group (the `world_size` batches of one step) a source drawn with its weight, then
that source's next batch group. So every step has one source, one kind and one language pair, and the source is in
each plan, the batch log and mix.json. For a DatasetDict given to the sentence-transformers trainer, its
`multi_dataset_batch_sampler`: `ProportionalGroupSampler` (each source in proportion to its batches) and
`WeightedGroupSampler` (the same weighted draw as `MultiSourceSampler`).

What a source can make (its kinds) is read off its rows:
- passages (question -> a different text: XQuAD-R, XLingHealth, MKQA question -> answer, mMARCO): every kind;
- alignment (query and "passage" one text: MKQA question <-> question, Tatoeba bitext): only X-Y kinds (`xy`,
  `xy-per-pair`), since an X-X row pairs a text with itself;
- monolingual (no id in two languages: MIRACL): only kinds without cross-lingual pairs (`xx`, `mixed`, `random`).
A sampler's kinds the source cannot make are left out for it (hybrid on Tatoeba is X-Y only; its alpha applies
within the sources that make both); a source that can make none of them is dropped and reported.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import accumulate
from typing import Any

import numpy as np
from sentence_transformers.base.sampler import DefaultBatchSampler, MultiDatasetDefaultBatchSampler

from hybridbatch.errors import UsageError
from hybridbatch.sampling.base import BatchPlan, PairBatchSampler, world_size_from_env
from hybridbatch.sampling.index import PairColumns, PairIndex, concat_sources
from hybridbatch.sampling.kinds import BatchKind
from hybridbatch.sampling.mix import summarise_plans
from hybridbatch.sampling.samplers import sampler_class, sampler_options

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
    row leaves the same (query, passage) remainder, the prefixes' own ends."""
    rest = set()
    for a, p in zip(anchors, positives, strict=True):
        n = 0
        while n < min(len(a), len(p)) and a[len(a) - 1 - n] == p[len(p) - 1 - n]:
            n += 1
        if n == 0:
            return False
        rest.add((a[:len(a) - n], p[:len(p) - n]))
        if len(rest) > 1:
            return False
    return len(anchors) >= 2 or (len(anchors) == 1 and rest == {("", "")})


def source_pairings(dataset: Any, index: PairIndex, anchor_column: str = "anchor",
                    positive_column: str = "positive") -> dict[str, str]:
    """Source name -> 'passages', 'alignment' or 'monolingual' (see the module doc), read off the rows."""
    out = {}
    for s, name in enumerate(index.sources):
        rows = np.nonzero((index.row_source == s) & (index.row_qlang == index.row_plang))[0][:_CHECK_ROWS]
        texts = dataset.select(rows.tolist()).select_columns([anchor_column, positive_column]).to_dict()
        if len(rows) and _is_alignment(texts[anchor_column], texts[positive_column]):
            out[name] = "alignment"
        elif not (index.has(s).sum(axis=1) >= 2).any():
            out[name] = "monolingual"
        else:
            out[name] = "passages"
    return out


_RESTRICTED: dict[tuple[type, str], type] = {}


class NoKindsError(UsageError):
    """A sampler makes no batch kind that a source can make (that source is dropped, not the run)."""


def restricted(cls: type[PairBatchSampler], pairing: str) -> type[PairBatchSampler]:
    """`cls` making only the kinds a source of `pairing` can make (the others' probabilities dropped, the rest
    rescaled); `cls` itself for passages."""
    if pairing == "passages":
        return cls
    if (cls, pairing) not in _RESTRICTED:

        class Restricted(cls):  # type: ignore[valid-type, misc]
            def _kinds(self) -> list[BatchKind]:
                every = super()._kinds()
                self._kept = [kinds_allowed(k, pairing) for k in every]
                return [k for k, keep in zip(every, self._kept, strict=True) if keep]

            def _kind_probs(self) -> list[float]:
                probs = [p for p, keep in zip(super()._kind_probs(), self._kept, strict=True) if keep]
                total = sum(probs)
                if not probs or total <= 0:
                    raise NoKindsError(f"sampler {self.name!r} makes no batch kind a source of {pairing} pairs can "
                                     f"make (its X-Y kinds for alignment pairs, X-X kinds for monolingual data)")
                return [p / total for p in probs]

        Restricted.__name__ = Restricted.__qualname__ = f"{cls.__name__}[{pairing}]"
        _RESTRICTED[(cls, pairing)] = Restricted
    return _RESTRICTED[(cls, pairing)]


@dataclass
class _Source:
    name: str
    pairing: str
    rows: np.ndarray  # rows of the whole dataset, in the sub-sampler's row order
    sampler: PairBatchSampler
    weight: float


def _weights(names: list[str], weights: Mapping[str, float] | Sequence[float] | None) -> dict[str, float] | None:
    if weights is None:
        return None
    if isinstance(weights, Mapping):
        unknown = sorted(set(weights) - set(names))
        if unknown:
            raise UsageError(f"weights name unknown sources {unknown}; the sources are {names}")
        out = {n: float(weights.get(n, 0.0)) for n in names}
    else:
        if len(weights) != len(names):
            raise UsageError(f"{len(weights)} weights for {len(names)} sources ({', '.join(names)}); give one per "
                             f"source, in their order")
        out = dict(zip(names, (float(w) for w in weights), strict=True))
    bad = {n: w for n, w in out.items() if not math.isfinite(w) or w < 0}
    if bad or not any(out.values()):
        raise UsageError(f"source weights must be finite, >= 0 and not all 0, got {out}")
    return out


class MultiSourceSampler(DefaultBatchSampler):
    """Batches from several sources: per batch group a source drawn with its weight (default: in proportion to its
    (id, language) items, sentence-transformers' PROPORTIONAL), then the next batch group of that source's own
    `sampler` (restricted to the kinds the source can make). Takes the trainer's arguments like every hybridbatch
    sampler; `weights` is a {source: weight} mapping or one weight per source in dataset order; `pairings`
    overrides what `source_pairings` reads off the rows; the other options go to each source's sampler. An epoch
    is `num_batches` batches (default: the sources' own epochs together). The draws depend only on (seed, epoch),
    so every process and a resumed run make the same plans."""

    name = "multi-source"

    def __init__(self, dataset: Any, batch_size: int, drop_last: bool = True,
                 valid_label_columns: list[str] | None = None, generator: Any = None, seed: int = 0, *,
                 sampler: str = "hybrid", weights: Mapping[str, float] | Sequence[float] | None = None,
                 pairings: Mapping[str, str] | None = None, world_size: int | None = None,
                 num_batches: int | None = None, source_column: str = "source", **options: Any) -> None:
        self.dataset = concat_sources(dataset, source_column)
        super().__init__(self.dataset, batch_size=batch_size, drop_last=True, valid_label_columns=valid_label_columns,
                         generator=generator, seed=int(seed or 0))
        columns = {k: v for k, v in options.items() if k.endswith("_column")}
        self.index = PairIndex.from_dataset(self.dataset, PairColumns(**{k[:-7]: v for k, v in columns.items()},
                                                                      source=source_column))
        names = self.index.sources
        w = _weights(names, weights)
        found = source_pairings(self.dataset, self.index)
        for n, p in (pairings or {}).items():
            if n not in found or p not in SOURCE_PAIRINGS:
                raise UsageError(f"pairings: {n!r} -> {p!r}; the sources are {names}, "
                                 f"pairings {', '.join(SOURCE_PAIRINGS)}")
            found[n] = p
        self.world_size = int(world_size or world_size_from_env())
        self.base_sampler = sampler
        self.sources: list[_Source] = []
        self.dropped_sources: list[dict[str, Any]] = []
        cls = sampler_class(sampler)
        kw = sampler_options(sampler, **options, source_column=source_column, world_size=self.world_size)
        for s, name in enumerate(names):
            rows = np.nonzero(self.index.row_source == s)[0]
            weight = w[name] if w is not None else float(self.index.items(s))
            if weight <= 0:
                self.dropped_sources.append({"source": name, "reason": "weight 0"})
                continue
            try:
                sub = restricted(cls, found[name])(self.dataset.select(rows.tolist()), batch_size, seed=self.seed,
                                                   **kw)
            except NoKindsError as e:
                self.dropped_sources.append({"source": name, "pairing": found[name], "reason": str(e)})
                continue
            except UsageError as e:
                raise UsageError(f"source {name!r}: {e}") from None
            self.sources.append(_Source(name, found[name], rows, sub, weight))
        if not self.sources:
            raise UsageError(f"no source can make {sampler!r} batches: {self.dropped_sources}")
        total = sum(x.weight for x in self.sources)
        self.shares = np.array([x.weight / total for x in self.sources])
        groups = sum(x.sampler.num_batches // self.world_size for x in self.sources)
        self.num_batches = int(num_batches if num_batches is not None else groups * self.world_size)
        if self.num_batches < 1 or self.num_batches % self.world_size:
            raise UsageError(f"num_batches ({self.num_batches}) must be a positive multiple of the world size "
                             f"({self.world_size})")
        self._order: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    @property
    def dropped(self) -> list[dict[str, Any]]:
        """Options the sources' samplers dropped for lack of answer groups, each with its source."""
        return [{"source": x.name, **d} for x in self.sources for d in x.sampler.dropped]

    def order(self, epoch: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(source of each batch group of `epoch`, how many groups of that source came before it)."""
        epoch = self.epoch if epoch is None else epoch
        if epoch not in self._order:
            rng = np.random.default_rng([int(self.seed), int(epoch), 0x535243])
            src = rng.choice(len(self.sources), size=self.num_batches // self.world_size, p=self.shares)
            nth = np.zeros(len(src), np.int64)
            for i in range(len(self.sources)):
                at = np.nonzero(src == i)[0]
                nth[at] = np.arange(len(at))
            self._order = {epoch: (src, nth)}
        return self._order[epoch]

    def plan(self, group: int, epoch: int | None = None) -> BatchPlan:
        """Batch group `group` of `epoch`: the source's own plan, its rows mapped to the whole dataset."""
        epoch = self.epoch if epoch is None else epoch
        src, nth = self.order(epoch)
        x = self.sources[int(src[group])]
        p = x.sampler.plan(int(nth[group]), epoch)
        return BatchPlan(group, p.kind, x.name, p.qlang, p.plang, x.rows[p.rows])

    def __len__(self) -> int:
        return self.num_batches

    def __iter__(self) -> Iterator[list[int]]:
        B = self.batch_size
        for i in range(self.num_batches):
            r = i % self.world_size
            yield self.plan(i // self.world_size).rows[r * B:(r + 1) * B].tolist()

    def set_epoch(self, epoch: int) -> None:
        super().set_epoch(epoch)
        for x in self.sources:
            x.sampler.set_epoch(epoch)

    def mix(self, n_groups: int | None = None, epoch: int | None = None) -> dict[str, Any]:
        """Counts of kinds, sources and language pairs over the first `n_groups` steps (default: one epoch)."""
        n = self.num_batches // self.world_size if n_groups is None else n_groups
        return summarise_plans(self.plan(g, epoch) for g in range(n))

    def coverage(self, n_groups: int | None = None, epoch: int | None = None) -> dict[str, Any]:
        """Each source's coverage over its batch groups among the first `n_groups`, and their item-weighted mean."""
        n = self.num_batches // self.world_size if n_groups is None else n_groups
        src, _ = self.order(epoch)
        per = {x.name: x.sampler.coverage(int((src[:n] == i).sum()), epoch) for i, x in enumerate(self.sources)}
        items = sum(c["items"] for c in per.values())
        mean = {k: sum(c[k] * c["items"] for c in per.values()) / items if items else 0.0
                for k in ("query_items", "passage_items")}
        return {"steps": n, "items": items, **mean, "max_passes": max(c["max_passes"] for c in per.values()),
                "sources": per}

    def config(self) -> dict[str, Any]:
        return {"sampler": self.name, "base_sampler": self.base_sampler, "batch_size": self.batch_size,
                "world_size": self.world_size, "seed": self.seed, "num_batches": self.num_batches,
                "sources": [{"name": x.name, "pairing": x.pairing, "weight": x.weight, "share": float(sh),
                             "kinds": [k.name for k in x.sampler.kinds], "items": x.sampler.index.items(0),
                             "sampler": x.sampler.config()} for x, sh in zip(self.sources, self.shares, strict=True)],
                "dropped_sources": self.dropped_sources, "dropped": self.dropped}


class ProportionalGroupSampler(MultiDatasetDefaultBatchSampler):
    """`multi_dataset_batch_sampler` for a DatasetDict: like sentence-transformers' `ProportionalBatchSampler`
    (each source in proportion to its number of batches, all of them used), but the source is decided once per
    group of `world_size` consecutive batches, so every process trains on the same source, kind and languages at a
    step. The per-source samplers must be hybridbatch samplers (they carry `world_size`). Passing the DatasetDict to
    a hybridbatch sampler directly does the same within one sampler."""

    def __iter__(self) -> Iterator[list[int]]:
        offsets = [0, *accumulate(len(d) for d in self.dataset.datasets)]
        world = max(int(getattr(s, "world_size", 1)) for s in self.batch_samplers)
        groups = [len(s) // world for s in self.batch_samplers]
        order = np.concatenate([np.full(n, i) for i, n in enumerate(groups)]) if groups else np.zeros(0, int)
        order = order[np.random.default_rng([int(self.seed or 0), int(self.epoch), 0x5047]).permutation(len(order))]
        its = [iter(s) for s in self.batch_samplers]
        for i in order.tolist():
            for _ in range(world):
                yield [r + offsets[i] for r in next(its[i])]

    def __len__(self) -> int:
        world = max(int(getattr(s, "world_size", 1)) for s in self.batch_samplers)
        return sum(len(s) // world * world for s in self.batch_samplers)


class WeightedGroupSampler(ProportionalGroupSampler):
    """sentence-transformers' `multi_dataset_batch_sampler` for a DatasetDict, with a weight per dataset: the
    dataset of each group of `world_size` consecutive batches is drawn with the weights (a list in the DatasetDict's
    order; `functools.partial(WeightedGroupSampler, weights=[2, 1])`), so all processes train on one source at a
    step. A source drawn more often than its sampler has batches goes on into its next pass (a hybridbatch sampler's
    `plan`; another sampler restarts). The epoch has as many batches as the samplers together, like PROPORTIONAL."""

    def __init__(self, dataset: Any, batch_samplers: list[Any], generator: Any = None, seed: int = 0, *,
                 weights: Sequence[float]) -> None:
        super().__init__(dataset, batch_samplers, generator, seed)
        names = [str(i) for i in range(len(batch_samplers))]
        w = _weights(names, weights)
        assert w is not None
        self.shares = np.array([w[n] for n in names]) / sum(w.values())

    def __iter__(self) -> Iterator[list[int]]:
        offsets = np.concatenate([[0], np.cumsum([len(d) for d in self.dataset.datasets])])
        world = max(int(getattr(s, "world_size", 1)) for s in self.batch_samplers)
        rng = np.random.default_rng([int(self.seed or 0), int(self.epoch), 0x574753])
        order = rng.choice(len(self.batch_samplers), size=len(self) // world, p=self.shares)
        seen = np.zeros(len(self.batch_samplers), np.int64)
        its: dict[int, Iterator[list[int]]] = {}
        for i in order.tolist():
            s = self.batch_samplers[i]
            for r in range(world):
                if hasattr(s, "plan"):
                    p = s.plan(int(seen[i]))
                    batch = p.rows[r * s.batch_size:(r + 1) * s.batch_size].tolist()
                else:
                    batch = next(its[i], None) if i in its else None
                    if batch is None:
                        its[i] = iter(s)
                        batch = next(its[i])
                yield [int(b) + int(offsets[i]) for b in batch]
            seen[i] += 1

