"""Several sources given as a `DatasetDict` to the sentence-transformers trainer."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import accumulate

import numpy as np
from sentence_transformers.base.sampler import MultiDatasetDefaultBatchSampler


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


