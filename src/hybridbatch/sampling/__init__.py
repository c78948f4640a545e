"""Sampling: batch samplers for hybrid-batch training (sentence-transformers `DefaultBatchSampler`s), the registry
of samplers by name with what each takes and needs, and the pair dataset they read. `__all__` names what a user or a
later stage needs; the helpers stay in the module named beside them."""

from hybridbatch.sampling.base import BatchPlan, PairBatchSampler
from hybridbatch.sampling.collator import PairCollator
from hybridbatch.sampling.dataset import long_dataset, pair_dataset, pairs_from_long
from hybridbatch.sampling.index import PairIndex, batch_info
from hybridbatch.sampling.mix import save_mix
from hybridbatch.sampling.samplers import (
    DEFAULT_SAMPLER,
    SAMPLERS,
    BilingualSampler,
    CurriculumSampler,
    EnglishSampler,
    HybridMultiSampler,
    HybridSampler,
    MixedSampler,
    RandomSampler,
    XXSampler,
    XYSampler,
    make_sampler,
    sampler_class,
)
from hybridbatch.sampling.sources import MultiSourceSampler, ProportionalGroupSampler, WeightedGroupSampler
from hybridbatch.sampling.translations import TranslationSampler, with_row_labels

__all__ = [
    "BatchPlan", "PairBatchSampler", "PairCollator", "long_dataset", "pair_dataset", "pairs_from_long",
    "PairIndex", "batch_info", "save_mix",
    "DEFAULT_SAMPLER", "SAMPLERS", "make_sampler", "sampler_class",
    "BilingualSampler", "CurriculumSampler", "EnglishSampler", "HybridMultiSampler", "HybridSampler", "MixedSampler",
    "RandomSampler", "XXSampler", "XYSampler", "TranslationSampler", "with_row_labels",
    "ProportionalGroupSampler", "MultiSourceSampler", "WeightedGroupSampler",
]
