"""Sampling: batch samplers for hybrid-batch training (sentence-transformers `DefaultBatchSampler`s) and the pair
dataset they read."""

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
from hybridbatch.sampling.samplers import (  # noqa: F401
    MIX_SAMPLERS,
    SAMPLERS,
    BatchPlan,
    BilingualSampler,
    CurriculumSampler,
    EnglishSampler,
    HybridMultiSampler,
    HybridSampler,
    MixedSampler,
    PairBatchSampler,
    RandomSampler,
    XXSampler,
    XYSampler,
    check_alpha,
    make_sampler,
    world_size_from_env,
)
