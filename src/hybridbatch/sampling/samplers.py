"""Batch samplers for hybrid-batch training.

The training data is a flat *pair table*: one row per (source, question id, query language, passage language) that
exists, with the text columns `anchor`, `positive` (and `negative` with hard negatives) in a Hugging Face `Dataset`,
and the metadata (source, qid, languages, text keys) kept beside it in numpy arrays. Samplers yield row indices.

Every sampler is a `sentence_transformers` `DefaultBatchSampler` subclass, so it plugs into
`SentenceTransformerTrainer` through the training arguments (`batch_sampler=functools.partial(HybridSampler,
alpha=0.5)` with a dataset made by `build_pair_table`), and is usable on its own (iterate it).

Invariants (each has a test in tests/test_sampling.py):
- no question id twice in one batch, and no text (query, positive or hard negative) twice in one *group* of batches
  that share a step across processes: parallel copies and shared answer sentences would be false negatives;
- only language copies that exist are used (partial parallelism, MLQA-R style);
- the batch type, source and languages of a step are a pure function of (seed, epoch, step): identical on every
  process, reproducible after a resume, with no state carried between batches;
- with several sources, the source of a batch is drawn in proportion to its size (its number of (qid, lang) items).

Multi-process: accelerate's `BatchSamplerShard` (split_batches=False) gives batch `i` of the sampler to rank
`i % world_size`. The sampler therefore draws one decision per *group* of `world_size` consecutive batches and fills
the group with disjoint ids, so every rank trains on the same batch type and languages at a given step, and the
in-batch negatives gathered across ranks are never copies of each other.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import zlib
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sentence_transformers.base.sampler import DefaultBatchSampler

from hybridbatch.data.records import PairSet, TrainItem
from hybridbatch.errors import UsageError

# --------------------------------------------------------------------------------------------------------------------
# The pair table
# --------------------------------------------------------------------------------------------------------------------

_TABLES: dict[str, PairTable] = {}  # dataset fingerprint -> table, so a plain trainer can pass just the Dataset


@dataclass
class PairTable:
    """Rows (source, qid, qlang, plang) with their texts (`dataset`) and metadata arrays (everything else).

    `index[s][q, x, y]` is the row of question `q` of source `s` with query language `x` and passage language `y`,
    or -1 when one of the two copies does not exist. `keys` holds integer ids of each row's texts (query, positive,
    negative; -1 for none) used to keep duplicates out of a batch; the ids are assigned in data order, so they are
    identical on every process (Python's `hash` is not)."""

    dataset: Any  # datasets.Dataset with anchor, positive[, negative]
    sources: list[str]
    source_sizes: list[int]  # (qid, lang) items per source: the weights of the source draw
    languages: list[str]
    qids: list[list[str]]  # per source, qid index -> qid
    index: list[np.ndarray]  # per source, int32 [n_qids, L, L]
    row_source: np.ndarray
    row_qid: np.ndarray
    row_qlang: np.ndarray
    row_plang: np.ndarray
    keys: np.ndarray  # int64 [n_rows, 3]
    cross: bool = True
    hard_negatives: bool = False
    checksums: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.row_source)

    def has(self, s: int) -> np.ndarray:
        """bool [n_qids, L]: which language copies of each question exist in source `s`."""
        idx = self.index[s]
        return np.diagonal(idx, axis1=1, axis2=2) >= 0

    def describe(self, row: int) -> dict[str, Any]:
        s = int(self.row_source[row])
        return {
            "source": self.sources[s],
            "qid": self.qids[s][int(self.row_qid[row])],
            "qlang": self.languages[int(self.row_qlang[row])],
            "plang": self.languages[int(self.row_plang[row])],
        }


def _pick_negative(item: TrainItem, qid: str, lang: str) -> str | None:
    """One hard negative per (qid, passage language), chosen by a stable hash so every process and run agree."""
    negs = [n for n in item.negatives if n != item.positive]
    if not negs:
        return None
    return negs[zlib.crc32(f"{qid}\t{lang}".encode()) % len(negs)]


def build_pair_table(
    pairsets: PairSet | Sequence[PairSet],
    query_prefix: str = "",
    passage_prefix: str = "",
    hard_negatives: bool = False,
    cross: bool = True,
) -> PairTable:
    """Flatten one or more PairSets into a pair table. `cross=False` keeps only monolingual rows (enough for the
    xx / en / mixed samplers, and 1/L the size). With `hard_negatives`, a row whose item has no negative borrows the
    positive of a neighbouring question in the same language (the duplicate-text rule keeps the two apart)."""
    from datasets import Dataset

    if isinstance(pairsets, PairSet):
        pairsets = [pairsets]
    if not pairsets:
        raise UsageError("no training data given")
    languages = sorted({lang for ps in pairsets for lang in ps.languages})
    lpos = {lang: i for i, lang in enumerate(languages)}
    L = len(languages)
    text_ids: dict[str, int] = {}

    def key(text: str | None) -> int:
        if text is None:
            return -1
        return text_ids.setdefault(text, len(text_ids))

    anchors: list[str] = []
    positives: list[str] = []
    negatives: list[str] = []
    meta: list[tuple[int, int, int, int]] = []
    keys: list[tuple[int, int, int]] = []
    qids_all: list[list[str]] = []
    index_all: list[np.ndarray] = []
    sizes: list[int] = []
    for s, ps in enumerate(pairsets):
        qids = list(ps.items)
        qids_all.append(qids)
        index = np.full((len(qids), L, L), -1, dtype=np.int32)
        sizes.append(len(ps))
        fallback: dict[str, str] = {}  # last positive seen per language, for items without negatives
        for qi, qid in enumerate(qids):
            by_lang = ps.items[qid]
            langs = [lang for lang in languages if lang in by_lang]
            negs: dict[str, str | None] = {}
            if hard_negatives:
                for lang in langs:
                    neg = _pick_negative(by_lang[lang], qid, lang)
                    if neg is None and fallback.get(lang) != by_lang[lang].positive:
                        neg = fallback.get(lang)
                    negs[lang] = neg
                for lang in langs:
                    fallback[lang] = by_lang[lang].positive
            for ql in langs:
                q = by_lang[ql].query
                for pl in langs:
                    if not cross and pl != ql:
                        continue
                    pos = by_lang[pl].positive
                    index[qi, lpos[ql], lpos[pl]] = len(meta)
                    meta.append((s, qi, lpos[ql], lpos[pl]))
                    anchors.append(query_prefix + q)
                    positives.append(passage_prefix + pos)
                    neg = negs.get(pl) if hard_negatives else None
                    if hard_negatives:
                        if neg is None:  # very first item of a language without negatives: any other positive
                            neg = next((by_lang2[pl].positive for q2, by_lang2 in ps.items.items()
                                        if q2 != qid and pl in by_lang2 and by_lang2[pl].positive != pos), None)
                            if neg is None:
                                raise UsageError(f"{ps.name}: --hard-negatives needs at least two different "
                                                 f"passages in {pl}")
                        negatives.append(passage_prefix + neg)
                    keys.append((key("q:" + q), key("p:" + pos), key("p:" + neg) if neg is not None else -1))
        index_all.append(index)
    if not meta:
        raise UsageError("the training data has no (question, passage) pairs")
    columns: dict[str, list[str]] = {"anchor": anchors, "positive": positives}
    if hard_negatives:
        columns["negative"] = negatives
    dataset = Dataset.from_dict(columns)
    m = np.asarray(meta, dtype=np.int32)
    table = PairTable(
        dataset=dataset,
        sources=[ps.name for ps in pairsets],
        source_sizes=sizes,
        languages=languages,
        qids=qids_all,
        index=index_all,
        row_source=m[:, 0].astype(np.int16),
        row_qid=m[:, 1],
        row_qlang=m[:, 2].astype(np.int16),
        row_plang=m[:, 3].astype(np.int16),
        keys=np.asarray(keys, dtype=np.int64),
        cross=cross,
        hard_negatives=hard_negatives,
        checksums=[ps.checksum for ps in pairsets],
    )
    _TABLES[dataset._fingerprint] = table
    return table


def table_for(dataset: Any) -> PairTable:
    """The PairTable behind `dataset` (a PairTable, or a Dataset made by `build_pair_table` in this process)."""
    if isinstance(dataset, PairTable):
        return dataset
    table = _TABLES.get(getattr(dataset, "_fingerprint", None) or "")
    if table is None:
        raise UsageError(
            "hybridbatch samplers need a dataset made by hybridbatch.sampling.build_pair_table "
            "(they read the qid / language metadata kept beside it)"
        )
    return table


def world_size_from_env() -> int:
    """The number of training processes: torch.distributed when initialised, else $WORLD_SIZE (torchrun), else 1."""
    try:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            return dist.get_world_size()
    except ImportError:  # pragma: no cover
        pass
    return max(1, int(os.environ.get("WORLD_SIZE", "1")))


# --------------------------------------------------------------------------------------------------------------------
# Samplers
# --------------------------------------------------------------------------------------------------------------------

XX, XY, MIXED, RANDOM, XY_PAIR = "xx", "xy", "mixed", "random", "xy-per-pair"
PER_PAIR = "*"


@dataclass(frozen=True)
class BatchPlan:
    """One step's decision and its rows: `world_size * batch_size` rows, rank r trains `rows[r*B:(r+1)*B]`.
    `qlang` / `plang` are language codes, or '*' when each pair has its own languages."""

    step: int
    kind: str
    source: str
    qlang: str
    plang: str
    rows: np.ndarray


@dataclass
class _Option:
    kind: str
    source: int
    x: int  # -1: per pair
    y: int
    cand: np.ndarray  # qid indices eligible for this option
    weight: float


class PairBatchSampler(DefaultBatchSampler):
    """Base class: draws, per group of `world_size` batches, a batch kind (`_kinds`), a source, languages and
    `world_size * batch_size` distinct question ids, as a pure function of (seed, epoch, group).

    Args beyond DefaultBatchSampler's: `world_size` (default: from the environment), `num_batches` (the length of one
    epoch in batches, a multiple of world_size; default: about one pass over the (qid, lang) items),
    `lang_weighting` ('uniform' over languages / language pairs, or 'size': in proportion to the ids available),
    `dedup_texts` (also keep repeated texts out of a group)."""

    name = "base"
    needs_cross = False

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
        dedup_texts: bool = True,
    ) -> None:
        self.table = table_for(dataset)
        data = self.table.dataset
        super().__init__(data, batch_size=batch_size, drop_last=True, valid_label_columns=valid_label_columns,
                         generator=generator, seed=int(seed or 0))
        if batch_size < 1:
            raise UsageError(f"batch size must be at least 1, got {batch_size}")
        if lang_weighting not in ("uniform", "size"):
            raise UsageError(f"lang_weighting must be 'uniform' or 'size', got {lang_weighting!r}")
        self.world_size = int(world_size or world_size_from_env())
        self.lang_weighting = lang_weighting
        self.dedup_texts = dedup_texts
        self.need = self.batch_size * self.world_size
        self._options = {kind: self._build_options(kind) for kind in self._kinds()}
        self._check_options()
        if num_batches is None:
            items = sum(self.table.source_sizes)
            num_batches = max(1, items // self.need) * self.world_size
        if num_batches < 1 or num_batches % self.world_size:
            raise UsageError(f"num_batches ({num_batches}) must be a positive multiple of the world size "
                             f"({self.world_size})")
        self.num_batches = int(num_batches)
        self._cache: tuple[tuple[int, int], BatchPlan] | None = None
        self._choice = {kind: self._choice_tables(kind) for kind in self._kinds() if self._options[kind]}
        self._row_keys: list[tuple[int, ...]] | None = None
        self._lang_lists: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    # -- what a subclass decides ------------------------------------------------------------------------------------
    def _kinds(self) -> list[str]:
        raise NotImplementedError

    def _kind_probs(self) -> list[float]:
        return [1.0]

    def _allowed_langs(self) -> list[int]:
        return list(range(len(self.table.languages)))

    # -- options: (kind, source, X, Y) with enough ids ------------------------------------------------------------
    def _build_options(self, kind: str) -> list[_Option]:
        t = self.table
        allowed = self._allowed_langs()
        opts: list[_Option] = []
        for s in range(len(t.sources)):
            has = t.has(s)
            if kind in (XX, XY):
                for x in allowed:
                    for y in allowed:
                        if (kind == XX) != (x == y):
                            continue
                        cand = np.flatnonzero(t.index[s][:, x, y] >= 0).astype(np.int32)
                        if len(cand) >= self.need:
                            opts.append(_Option(kind, s, x, y, cand, float(len(cand))))
            else:
                n_langs = has[:, allowed].sum(axis=1)
                cand = np.flatnonzero(n_langs >= (2 if kind == XY_PAIR else 1)).astype(np.int32)
                if kind in (XY_PAIR, RANDOM) and not t.cross:
                    cand = cand[:0]
                if len(cand) >= self.need:
                    opts.append(_Option(kind, s, -1, -1, cand, float(len(cand))))
        return opts

    def _choice_tables(self, kind: str) -> tuple[list[int], np.ndarray, dict[int, tuple[list[_Option], np.ndarray]]]:
        """Precomputed cumulative weights for the per-step draws (source, then option)."""
        opts = self._options[kind]
        srcs = sorted({o.source for o in opts})
        src_cum = np.cumsum([float(self.table.source_sizes[s]) for s in srcs])
        by_src = {}
        for s in srcs:
            mine = [o for o in opts if o.source == s]
            w = [o.weight if self.lang_weighting == "size" else 1.0 for o in mine]
            by_src[s] = (mine, np.cumsum(w))
        return srcs, src_cum, by_src

    def _check_options(self) -> None:
        t = self.table
        for kind, prob in zip(self._kinds(), self._kind_probs(), strict=True):
            if prob <= 0 or self._options[kind]:
                continue
            if kind in (XY, XY_PAIR):
                if not t.cross:
                    raise UsageError(f"sampler {self.name!r} needs cross-lingual rows: build the pair table with "
                                     "cross=True")
                multi = [t.sources[s] for s in range(len(t.sources)) if (t.has(s).sum(axis=1) >= 2).any()]
                if len(t.languages) < 2 or not multi:
                    raise UsageError(
                        f"sampler {self.name!r} needs at least two languages with shared question ids, but the "
                        f"training data has only {t.languages}; use --sampler xx or en, or add languages")
            best = self._max_ids(kind)
            raise UsageError(
                f"batch size {self.batch_size} x {self.world_size} process(es) needs {self.need} distinct question "
                f"ids per step, but the most any {'language pair' if kind == XY else 'language'} of the training "
                f"data offers for {kind!r} batches is {best}; lower --batch-size")

    def _max_ids(self, kind: str) -> int:
        t = self.table
        best = 0
        for s in range(len(t.sources)):
            idx = t.index[s]
            L = idx.shape[1]
            for x in range(L):
                for y in range(L):
                    if kind == XX and x != y or kind == XY and x == y:
                        continue
                    best = max(best, int((idx[:, x, y] >= 0).sum()))
        return best

    # -- the sampler interface --------------------------------------------------------------------------------------
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
        self._cache = None

    def plan(self, group: int, epoch: int | None = None) -> BatchPlan:
        """The decision and rows of group `group` (= step, counting micro-batches): a pure function of
        (seed, epoch, group)."""
        epoch = self.epoch if epoch is None else epoch
        if self._cache is not None and self._cache[0] == (epoch, group):
            return self._cache[1]
        rng = np.random.default_rng([int(self.seed), int(epoch), int(group), 0x4B42])
        kinds, p_first = self._kinds(), self._kind_probs()[0]
        # The coin is tossed only when both kinds are possible, so that hybrid at alpha 1 (0) draws exactly the
        # batches of xx (xy) for the same seed: the sweep's end points are those runs, not look-alikes.
        if len(kinds) == 1 or p_first >= 1.0:
            kind = kinds[0]
        elif p_first <= 0.0:
            kind = kinds[1]
        else:
            kind = kinds[int(rng.random() >= p_first)]
        # The source: in proportion to its size, among the sources that can make this kind of batch; then the
        # languages (uniform, or by available ids) among that source's options.
        srcs, src_cum, by_src = self._choice[kind]
        s = srcs[int(np.searchsorted(src_cum, rng.random() * src_cum[-1], side="right"))] if len(srcs) > 1 else srcs[0]
        opts, opt_cum = by_src[s]
        opt = opts[int(np.searchsorted(opt_cum, rng.random() * opt_cum[-1], side="right"))] if len(opts) > 1 \
            else opts[0]
        rows = self._draw(rng, opt)
        langs = self.table.languages
        plan = BatchPlan(group, kind, self.table.sources[s], langs[opt.x] if opt.x >= 0 else PER_PAIR,
                         langs[opt.y] if opt.y >= 0 else PER_PAIR, rows)
        self._cache = ((epoch, group), plan)
        return plan

    def _langs_of(self, s: int) -> tuple[np.ndarray, np.ndarray]:
        """Per qid of source `s`: its existing (allowed) languages, left-aligned in a padded matrix, and their count."""
        if s not in self._lang_lists:
            has = self.table.has(s).copy()
            allowed = np.zeros(has.shape[1], dtype=bool)
            allowed[self._allowed_langs()] = True
            has &= allowed
            n = has.sum(axis=1)
            order = np.argsort(~has, axis=1, kind="stable")  # existing languages first, in language order
            self._lang_lists[s] = (order.astype(np.int64), n.astype(np.int64))
        return self._lang_lists[s]

    def _draw(self, rng: np.random.Generator, opt: _Option) -> np.ndarray:
        """`need` distinct ids of the option, in a random order, skipping ids whose texts are already in the group."""
        t = self.table
        index = t.index[opt.source]
        cand = opt.cand[rng.permutation(len(opt.cand))]
        if opt.x >= 0:
            rows = index[cand, opt.x, opt.y]
        else:
            lang_mat, n_langs = self._langs_of(opt.source)
            u = rng.random((len(cand), 2))
            n = n_langs[cand]
            i = (u[:, 0] * n).astype(np.int64)
            x = lang_mat[cand, i]
            if opt.kind == MIXED:
                y = x
            elif opt.kind == RANDOM:
                y = lang_mat[cand, (u[:, 1] * n).astype(np.int64)]
            else:  # xy per pair: y uniform among the question's other languages
                k = (u[:, 1] * (n - 1)).astype(np.int64)
                y = lang_mat[cand, k + (k >= i)]
            rows = index[cand, x, y]
        if not self.dedup_texts:
            return rows[: self.need].astype(np.int64)
        keys = t.keys
        head = rows[: self.need]
        k = keys[head]
        flat = k[k >= 0]
        if len(np.unique(flat)) == len(flat):  # the common case: no repeated text, no loop needed
            return head.astype(np.int64)
        if self._row_keys is None:  # built once: Python tuples make the greedy loop below ~10x faster
            self._row_keys = [tuple(v for v in row if v >= 0) for row in keys.tolist()]
        row_keys = self._row_keys
        used: set[int] = set()
        out: list[int] = []
        skipped: list[int] = []
        for r in rows.tolist():
            rk = row_keys[r]
            if used.isdisjoint(rk):
                used.update(rk)
                out.append(r)
                if len(out) == self.need:
                    break
            else:
                skipped.append(r)
        if len(out) < self.need:  # not enough text-distinct ids: accept repeats rather than fail (ids stay distinct)
            out.extend(skipped[: self.need - len(out)])
        return np.asarray(out, dtype=np.int64)

    # -- the realised mix -------------------------------------------------------------------------------------------
    def mix(self, n_groups: int | None = None, epoch: int | None = None) -> dict[str, Any]:
        """Counts of batch kinds, sources and language pairs over the first `n_groups` steps (default: one epoch),
        recomputed from the pure plan function."""
        n = self.num_batches // self.world_size if n_groups is None else n_groups
        return summarise_plans(self.plan(g, epoch) for g in range(n))

    def config(self) -> dict[str, Any]:
        return {"sampler": self.name, "batch_size": self.batch_size, "world_size": self.world_size,
                "seed": self.seed, "num_batches": self.num_batches, "lang_weighting": self.lang_weighting,
                "dedup_texts": self.dedup_texts}


def summarise_plans(plans: Any) -> dict[str, Any]:
    """The realised mix of a sequence of plans (or of dicts with kind / source / qlang / plang)."""
    kinds: Counter[str] = Counter()
    sources: Counter[str] = Counter()
    pairs: Counter[str] = Counter()
    n = 0
    for p in plans:
        get = p.get if isinstance(p, dict) else lambda k, p=p: getattr(p, k)
        kinds[get("kind")] += 1
        sources[get("source")] += 1
        pairs[f"{get('qlang')}-{get('plang')}"] += 1
        n += 1
    return {
        "steps": n,
        "kinds": dict(sorted(kinds.items())),
        "xx_share": kinds.get(XX, 0) / n if n else 0.0,
        "sources": dict(sorted(sources.items())),
        "lang_pairs": dict(sorted(pairs.items())),
    }


def save_mix(path: Path | str, mix: dict[str, Any], **extra: Any) -> Path:
    from hybridbatch.provenance import write_json

    return write_json(path, {**extra, **mix})


class XXSampler(PairBatchSampler):
    """Monolingual batches: every pair has query and passage in one language X, drawn per batch."""

    name = "xx"

    def _kinds(self) -> list[str]:
        return [XX]


class XYSampler(PairBatchSampler):
    """Cross-lingual batches: query language X, passage language Y != X, drawn per batch (uniform over ordered
    pairs); `per_pair=True` draws (X, Y) per pair instead (a variant the paper leaves open)."""

    name = "xy"
    needs_cross = True

    def __init__(self, dataset: Any, batch_size: int, *args: Any, per_pair: bool = False, **kwargs: Any) -> None:
        self.per_pair = per_pair
        super().__init__(dataset, batch_size, *args, **kwargs)

    def _kinds(self) -> list[str]:
        return [XY_PAIR if self.per_pair else XY]

    def config(self) -> dict[str, Any]:
        return {**super().config(), "per_pair": self.per_pair}


class HybridSampler(PairBatchSampler):
    """The method: each batch is X-X with probability `alpha`, else X-Y (alpha = 1: xx, alpha = 0: xy)."""

    name = "hybrid"
    needs_cross = True

    def __init__(self, dataset: Any, batch_size: int, *args: Any, alpha: float = 0.5, per_pair: bool = False,
                 **kwargs: Any) -> None:
        check_alpha(alpha)
        self.alpha = float(alpha)
        self.per_pair = per_pair
        super().__init__(dataset, batch_size, *args, **kwargs)

    def _kinds(self) -> list[str]:
        return [XX, XY_PAIR if self.per_pair else XY]

    def _kind_probs(self) -> list[float]:
        return [self.alpha, 1.0 - self.alpha]

    def config(self) -> dict[str, Any]:
        return {**super().config(), "alpha": self.alpha, "per_pair": self.per_pair}


class EnglishSampler(XXSampler):
    """Baseline: English-only batches (En-En)."""

    name = "en"

    def _allowed_langs(self) -> list[int]:
        if "en" not in self.table.languages:
            raise UsageError(f"sampler 'en' needs English data; the training languages are {self.table.languages}")
        return [self.table.languages.index("en")]


class MixedSampler(PairBatchSampler):
    """Baseline: every pair monolingual, but the language drawn per pair, so languages mix within a batch."""

    name = "mixed"

    def _kinds(self) -> list[str]:
        return [MIXED]


class RandomSampler(PairBatchSampler):
    """Baseline: any existing pair (query language and passage language drawn independently per pair)."""

    name = "random"
    needs_cross = True

    def _kinds(self) -> list[str]:
        return [RANDOM]


class HybridMultiSampler(HybridSampler):
    """Ours, beyond the paper: each batch is X-X with probability `alpha`, else a *multilingual* batch in which every
    pair draws its own query and passage languages (any existing pair, X = Y allowed). Such batches put passages of
    many languages side by side as in-batch negatives, which is what the Multi pool asks of the model: rank the
    relevant copies of all languages above same-language distractors. Aimed at Multi mAP and language bias; the X-X
    share keeps monolingual quality."""

    name = "hybrid-multi"

    def _kinds(self) -> list[str]:
        return [XX, RANDOM]


SAMPLERS: dict[str, type[PairBatchSampler]] = {
    c.name: c
    for c in (XXSampler, XYSampler, HybridSampler, EnglishSampler, MixedSampler, RandomSampler, HybridMultiSampler)
}


MIX_SAMPLERS = tuple(name for name, cls in SAMPLERS.items() if issubclass(cls, HybridSampler))  # take alpha


def check_alpha(alpha: float) -> None:
    if not (isinstance(alpha, (int, float)) and 0.0 <= float(alpha) <= 1.0) or math.isnan(float(alpha)):
        raise UsageError(f"alpha must be in [0, 1] (the share of X-X batches), got {alpha}")


def make_sampler(name: str, dataset: Any, batch_size: int, seed: int = 0, **options: Any) -> PairBatchSampler:
    """A sampler by name ('hybrid', 'xx', 'xy', 'en', 'mixed', 'random', 'hybrid-multi'); options the class does not take (e.g.
    alpha for 'xx') are dropped so callers can pass one settings dict."""
    cls = SAMPLERS.get(name)
    if cls is None:
        raise UsageError(f"unknown sampler {name!r}; choose one of {', '.join(SAMPLERS)}")
    if "alpha" in options:
        check_alpha(options["alpha"])
    if not issubclass(cls, HybridSampler):
        options.pop("alpha", None)
    if not issubclass(cls, (HybridSampler, XYSampler)):
        options.pop("per_pair", None)
    return cls(dataset, batch_size, seed=seed, **options)


def batch_fingerprint(table: PairTable, rows: Sequence[int]) -> str:
    """A short hash of a batch's (source, qid, qlang, plang) tuples, for batch logs."""
    h = hashlib.sha1()
    for r in rows:
        d = table.describe(int(r))
        h.update(f"{d['source']}\t{d['qid']}\t{d['qlang']}\t{d['plang']}\n".encode())
    return h.hexdigest()[:16]


def batch_info(table: PairTable, rows: Sequence[int]) -> dict[str, Any]:
    """What a batch is: its kind, source and languages ('*' when mixed), read back from the rows themselves."""
    rows = np.asarray(rows, dtype=np.int64)
    ql = {table.languages[int(v)] for v in table.row_qlang[rows]}
    pl = {table.languages[int(v)] for v in table.row_plang[rows]}
    src = {table.sources[int(v)] for v in table.row_source[rows]}
    mono = bool(np.all(table.row_qlang[rows] == table.row_plang[rows]))
    if len(ql) == 1 and len(pl) == 1:
        kind = XX if mono else XY
    else:
        kind = MIXED if mono else (XY_PAIR if not np.any(table.row_qlang[rows] == table.row_plang[rows]) else RANDOM)
    return {
        "kind": kind,
        "source": src.pop() if len(src) == 1 else PER_PAIR,
        "qlang": ql.pop() if len(ql) == 1 else PER_PAIR,
        "plang": pl.pop() if len(pl) == 1 else PER_PAIR,
        "qids": [table.qids[int(s)][int(q)] for s, q in zip(table.row_source[rows], table.row_qid[rows], strict=True)],
        "hash": batch_fingerprint(table, rows),
    }


def dump_plans(sampler: PairBatchSampler, n_groups: int, path: Path | str) -> Path:
    """Write the first `n_groups` plans as JSON lines (for inspection)."""
    from hybridbatch.provenance import write_text

    lines = []
    for g in range(n_groups):
        p = sampler.plan(g)
        lines.append(json.dumps({"step": g, "kind": p.kind, "source": p.source, "qlang": p.qlang,
                                 "plang": p.plang, "hash": batch_fingerprint(sampler.table, p.rows)}))
    return write_text(path, "\n".join(lines) + "\n")
