"""The samplers: one small class per way of mixing batch kinds, and the registry (name -> class).

Each class declares what it takes and needs (`PairBatchSampler.takes`, `needs_cross`, `same_batches_as`), so callers
(training, experiments, reports) ask the registry instead of switching on sampler names: `sampler_class(name)`,
`sampler_options(name, **settings)` (validates alpha, keeps what the class takes), `takes_alpha(name)`,
`same_run(name, alpha)` (the sampler whose batches it draws exactly there), `alpha_of(name)` and
`repeats_answers(name)` (its batches hold several translations of one answer: a loss must take them as positives).
The translation sampler lives in translations.py; it is registered here like the others.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from hybridbatch.errors import UsageError
from hybridbatch.sampling.base import PairBatchSampler, check_alpha
from hybridbatch.sampling.kinds import (
    BatchKind,
    BilingualBatch,
    MixedBatch,
    RandomBatch,
    XXBatch,
    XYBatch,
    XYPerPairBatch,
)
from hybridbatch.sampling.translations import TranslationSampler


class XXSampler(PairBatchSampler):
    """Monolingual batches: every pair has query and passage in one language X, drawn per batch."""

    name = "xx"

    def _kinds(self) -> list[BatchKind]:
        return [XXBatch()]


class XYSampler(PairBatchSampler):
    """Cross-lingual batches: query language X, passage language Y != X, drawn per batch (uniform over ordered
    pairs); `per_pair=True` draws (X, Y) per pair instead (a variant the paper leaves open)."""

    name = "xy"
    takes: ClassVar[tuple[str, ...]] = ("per_pair",)
    needs_cross = True

    def __init__(self, dataset: Any, batch_size: int, *args: Any, per_pair: bool = False, **kwargs: Any) -> None:
        self.per_pair = per_pair
        super().__init__(dataset, batch_size, *args, **kwargs)

    def _kinds(self) -> list[BatchKind]:
        return [XYPerPairBatch() if self.per_pair else XYBatch()]

    def config(self) -> dict[str, Any]:
        return {**super().config(), "per_pair": self.per_pair}


class HybridSampler(PairBatchSampler):
    """The method: each batch is X-X with probability `alpha`, else X-Y (alpha = 1: xx, alpha = 0: xy)."""

    name = "hybrid"
    takes: ClassVar[tuple[str, ...]] = ("alpha", "per_pair")
    needs_cross = True
    # no coin is tossed at alpha 1 (0): exactly the xx (xy) sampler's batches, so a sweep reuses those runs
    same_batches_as: ClassVar[dict[float, str]] = {1.0: "xx", 0.0: "xy"}

    def __init__(self, dataset: Any, batch_size: int, *args: Any, alpha: float = 0.5, per_pair: bool = False,
                 **kwargs: Any) -> None:
        check_alpha(alpha)
        self.alpha = float(alpha)
        self.per_pair = per_pair
        super().__init__(dataset, batch_size, *args, **kwargs)

    @classmethod
    def needs_cross_rows(cls, alpha: float | None = None) -> bool:
        return alpha != 1.0  # alpha 1: X-X batches only

    def _kinds(self) -> list[BatchKind]:
        return [XXBatch(), XYPerPairBatch() if self.per_pair else XYBatch()]

    def _kind_probs(self) -> list[float]:
        return [self.alpha, 1.0 - self.alpha]

    def config(self) -> dict[str, Any]:
        return {**super().config(), "alpha": self.alpha, "per_pair": self.per_pair}


class EnglishSampler(XXSampler):
    """Baseline: English-only batches (En-En)."""

    name = "en"

    def _allowed_langs(self) -> np.ndarray:
        langs = self.index.languages
        if "en" not in langs:
            raise UsageError(f"sampler 'en' needs English data; the training languages are {langs}")
        return np.array([lang == "en" for lang in langs])


class MixedSampler(PairBatchSampler):
    """Baseline: every pair monolingual, but the language drawn per pair, so languages mix within a batch."""

    name = "mixed"

    def _kinds(self) -> list[BatchKind]:
        return [MixedBatch()]


class RandomSampler(PairBatchSampler):
    """Baseline: any existing pair (query language and passage language drawn independently per pair)."""

    name = "random"
    needs_cross = True

    def _kinds(self) -> list[BatchKind]:
        return [RandomBatch()]


class HybridMultiSampler(HybridSampler):
    """Ours, beyond the paper: each batch is X-X with probability `alpha`, else a *multilingual* batch in which every
    pair draws its own query and passage languages (any existing pair, X = Y allowed). Such batches put passages of
    many languages side by side as in-batch negatives, which is what the Multi pool asks of the model: rank the
    relevant copies of all languages above same-language distractors."""

    name = "hybrid-multi"
    same_batches_as: ClassVar[dict[float, str]] = {1.0: "xx"}  # its other kind is random's, not xy's

    def _kinds(self) -> list[BatchKind]:
        return [XXBatch(), RandomBatch()]


class BilingualSampler(HybridSampler):
    """Ours, aimed at language bias: every batch has one query language X and one other language Y; each pair's
    passage is in X with probability `alpha`, else in Y. The share of monolingual pairs is hybrid's at the same
    alpha, but mixed *within* each batch instead of across batches, so a query whose answer is in Y competes with
    wrong answers in its own language - the mistake the multilingual pool punishes."""

    name = "bilingual"
    same_batches_as: ClassVar[dict[float, str]] = {}  # X-X at alpha 1, but over (X, Y) options: not xx's batches

    @classmethod
    def needs_cross_rows(cls, alpha: float | None = None) -> bool:
        return True  # its options are (X, Y) pairs even at alpha 1

    def _kinds(self) -> list[BatchKind]:
        return [BilingualBatch(self.alpha)]

    def _kind_probs(self) -> list[float]:
        return [1.0]


class CurriculumSampler(HybridSampler):
    """Ours, a curriculum over alpha: the chance of an X-X batch moves linearly over `ramp_batches` batch groups
    from min(1, 2 alpha) down to max(0, 2 alpha - 1) (mostly X-X early, mostly X-Y late; `reverse` flips it), so the
    run sees hybrid's share of X-X batches at the same alpha, only ordered. The ramp defaults to one epoch; the
    trainer passes the run's steps, so a run shorter than an epoch still covers the whole ramp."""

    name = "curriculum"
    takes: ClassVar[tuple[str, ...]] = (*HybridSampler.takes, "ramp_batches", "reverse")
    # at alpha 0 too it draws xy's batches, but the grids have always kept that cell as its own run
    same_batches_as: ClassVar[dict[float, str]] = {1.0: "xx"}

    def __init__(self, dataset: Any, batch_size: int, *args: Any, ramp_batches: int | None = None,
                 reverse: bool = False, **kwargs: Any) -> None:
        if ramp_batches is not None and ramp_batches < 1:
            raise UsageError(f"ramp_batches must be at least 1, got {ramp_batches}")
        self.reverse = bool(reverse)
        super().__init__(dataset, batch_size, *args, **kwargs)
        self.ramp_batches = int(ramp_batches or self.num_batches // self.world_size)

    def p_xx(self, epoch: int, group: int) -> float:
        """The chance that batch group `group` of `epoch` is X-X (its mean over the ramp is alpha)."""
        first, last = min(1.0, 2 * self.alpha), max(0.0, 2 * self.alpha - 1)
        if self.reverse:
            first, last = last, first
        pos = epoch * (self.num_batches // self.world_size) + group
        t = min(1.0, (pos + 0.5) / self.ramp_batches)
        return first + (last - first) * t

    _first_kind_prob = p_xx  # the kinds are hybrid's [X-X, X-Y]: the base class tosses the same coin

    def config(self) -> dict[str, Any]:
        return {**super().config(), "ramp_batches": self.ramp_batches, "reverse": self.reverse}


SAMPLERS: dict[str, type[PairBatchSampler]] = {
    c.name: c
    for c in (XXSampler, XYSampler, HybridSampler, EnglishSampler, MixedSampler, RandomSampler, HybridMultiSampler,
              BilingualSampler, CurriculumSampler, TranslationSampler)
}
DEFAULT_SAMPLER = HybridSampler.name  # the paper's method: the default of a run and the curve of an alpha sweep
VALIDATION_SAMPLER = RandomSampler  # draws the fixed validation batches of the loss rule, whatever the run's sampler


def sampler_class(name: str) -> type[PairBatchSampler]:
    """The sampler registered as `name`."""
    cls = SAMPLERS.get(name)
    if cls is None:
        raise UsageError(f"unknown sampler {name!r}; choose one of {', '.join(SAMPLERS)}")
    return cls


def sampler_options(name: str, **settings: Any) -> dict[str, Any]:
    """Of one settings dict, the options sampler `name` takes (alpha for 'xx' is dropped, so callers can pass one
    dict); alpha is checked whenever given, and the options a class checks itself (`check_options`, e.g. k of the
    translation sampler) are checked here too, so a bad value fails before any data is read. The base options
    (world_size, lang_weighting, ...) pass through."""
    cls = sampler_class(name)
    if settings.get("alpha") is not None:
        check_alpha(settings["alpha"])
    own = {o for c in SAMPLERS.values() for o in c.takes}
    kept = {k: v for k, v in settings.items() if k in cls.takes or k not in own}
    check = getattr(cls, "check_options", None)
    if check is not None:
        check(**{k: v for k, v in kept.items() if k in cls.takes and k != "alpha"})
    return kept


def takes_alpha(name: str) -> bool:
    """Whether sampler `name` mixes batch kinds by alpha (a sweep varies it; other samplers get one cell)."""
    return "alpha" in sampler_class(name).takes


def repeats_answers(name: str) -> bool:
    """Whether sampler `name` puts several rows of one answer group in a batch (translations of one answer), which
    InfoNCE would take for negatives: such batches need a multi-positive loss, and that loss needs such batches."""
    return bool(getattr(sampler_class(name), "repeats_answers", False))


def same_run(name: str, alpha: float | None) -> str | None:
    """The sampler whose batches `name` draws exactly at `alpha` (hybrid at 1: 'xx'), None when there is none."""
    return sampler_class(name).same_batches_as.get(alpha) if alpha is not None else None


def alpha_of(name: str) -> float | None:
    """The alpha at which the default sampler draws exactly the batches of `name` (xx: 1, xy: 0), else None."""
    return next((a for a, other in SAMPLERS[DEFAULT_SAMPLER].same_batches_as.items() if other == name), None)


def make_sampler(name: str, dataset: Any, batch_size: int, seed: int = 0, **options: Any) -> PairBatchSampler:
    """A sampler by name; options the class does not take (e.g. alpha for 'xx') are dropped so callers can pass
    one settings dict."""
    return sampler_class(name)(dataset, batch_size, seed=seed, **sampler_options(name, **options))
