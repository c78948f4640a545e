"""Sampling: batch samplers for hybrid-batch training (sentence-transformers `DefaultBatchSampler`s), the registry
of samplers by name with what each takes and needs, and the pair dataset they read."""

from hybridbatch.sampling.base import BatchPlan, PairBatchSampler, check_alpha, world_size_from_env  # noqa: F401
from hybridbatch.sampling.collator import PairCollator  # noqa: F401
from hybridbatch.sampling.dataset import (  # noqa: F401
    METADATA_COLUMNS,
    long_dataset,
    pair_dataset,
    pairs_from_long,
)
from hybridbatch.sampling.index import (  # noqa: F401
    PairColumns,
    PairIndex,
    batch_fingerprint,
    batch_info,
    describe_batch,
)
from hybridbatch.sampling.kinds import (  # noqa: F401
    KINDS,
    PER_PAIR,
    BatchKind,
    BilingualBatch,
    MixedBatch,
    Option,
    RandomBatch,
    XXBatch,
    XYBatch,
    XYPerPairBatch,
)
from hybridbatch.sampling.mix import dump_plans, save_mix, summarise_plans  # noqa: F401
from hybridbatch.sampling.multi import ProportionalGroupSampler  # noqa: F401
from hybridbatch.sampling.sources import MultiSourceSampler, WeightedGroupSampler, source_pairings  # noqa: F401
from hybridbatch.sampling.samplers import (  # noqa: F401
    DEFAULT_SAMPLER,
    SAMPLERS,
    VALIDATION_SAMPLER,
    BilingualSampler,
    CurriculumSampler,
    EnglishSampler,
    HybridMultiSampler,
    HybridSampler,
    MixedSampler,
    RandomSampler,
    XXSampler,
    XYSampler,
    alpha_of,
    make_sampler,
    same_run,
    sampler_class,
    sampler_options,
    takes_alpha,
)
from hybridbatch.sampling.translations import TranslationSampler, with_row_labels  # noqa: F401
