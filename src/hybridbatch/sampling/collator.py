"""A data collator that keeps the samplers' metadata columns away from the loss."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sentence_transformers.sentence_transformer.data_collator import SentenceTransformerDataCollator

from hybridbatch.sampling.dataset import METADATA_COLUMNS

META = "_meta"


@dataclass
class PairCollator(SentenceTransformerDataCollator):
    """`SentenceTransformerDataCollator` that drops the metadata columns (id, languages, groups, source): the
    sentence-transformers collator would otherwise tokenise every column and the loss would take them for more
    texts. With `keep_metadata`, they come back as lists under `batch["_meta"]` (for a batch log; a trainer that
    does not pop them must not get them)."""

    metadata_columns: tuple[str, ...] = METADATA_COLUMNS
    keep_metadata: bool = False

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        if not features:
            return {}
        present = [c for c in self.metadata_columns if c in features[0]]
        meta = {c: [f[c] for f in features] for c in present}
        batch = super().__call__([{k: v for k, v in f.items() if k not in present} for f in features])
        if self.keep_metadata:
            batch[META] = meta
        return batch
