"""A data collator that keeps the samplers' metadata columns away from the loss."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

from sentence_transformers.sentence_transformer.data_collator import SentenceTransformerDataCollator

from hybridbatch.sampling.dataset import METADATA_COLUMNS, model_prefixes

META = "_meta"


@dataclass
class PairCollator(SentenceTransformerDataCollator):
    """`SentenceTransformerDataCollator` that drops the metadata columns (id, languages, groups, source): the
    sentence-transformers collator would otherwise tokenise every column and the loss would take them for more
    texts. With `keep_metadata`, they come back as lists under `batch["_meta"]` (for a batch log; a trainer that
    does not pop them must not get them).

    On its first batch it warns when the model has prompts (`query: ` / `passage: ` for E5) that the training texts
    lack and no `prompts=` adds: the evaluator encodes with them, so training without them trains another input."""

    metadata_columns: tuple[str, ...] = METADATA_COLUMNS
    keep_metadata: bool = False
    _prompts_checked: bool = field(default=False, init=False, repr=False)

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        if not features:
            return {}
        if not self._prompts_checked:
            self._prompts_checked = True
            self._check_prompts(features[0])
        present = [c for c in self.metadata_columns if c in features[0]]
        meta = {c: [f[c] for f in features] for c in present}
        batch = super().__call__([{k: v for k, v in f.items() if k not in present} for f in features])
        if self.keep_metadata:
            batch[META] = meta
        return batch

    def _check_prompts(self, row: dict[str, Any]) -> None:
        model = getattr(self.preprocess_fn, "__self__", None)  # preprocess_fn=model.preprocess
        if model is None or self.prompts:
            return
        texts = [v for v in row.values() if isinstance(v, str)]
        missing = [(side, p) for side, p, text in zip(("query", "passage"), model_prefixes(model), texts[:2],
                                                       strict=False) if p and not text.startswith(p)]
        if missing:
            warnings.warn(f"the training texts lack the model's {' and '.join(f'{s} prompt {p!r}' for s, p in missing)}"
                          f", which LAReQAEvaluator and `hybridbatch eval` add to every text: build the pairs with "
                          f"pairs_from_long(..., model=model) so that training and evaluation see the same input",
                          UserWarning, stacklevel=3)
