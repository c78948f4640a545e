"""One evaluation pass, shared by `lareqa.evaluate_lareqa` and `beir.evaluate_beir`: the options read once at the top,
then encode (`encode.encode_corpus`: runtime + cache), score (the protocol's scorer on the embeddings), and the result
recorded with the model, the encoding settings and the encoding time."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from hybridbatch.data.records import QACorpus
from hybridbatch.evaluation.cache import EmbeddingCache
from hybridbatch.evaluation.encode import Embeddings, encode_corpus, run_settings
from hybridbatch.evaluation.model_info import model_identity
from hybridbatch.evaluation.options import EvalOptions
from hybridbatch.evaluation.runtimes import resolve_encoder
from hybridbatch.provenance import Progress, Timer

R = TypeVar("R")


def evaluate_model(model: Any, corpus: QACorpus, options: EvalOptions, score: Callable[[Embeddings, Embeddings], R],
                   *, model_name: str | None = None, progress: Progress | None = None) -> R:
    """Encode `corpus` with `model` as `options` say, then `score(query embeddings, candidate embeddings)` (an
    `EvalResult` / `BeirResult`); the result records the model, the encoding settings and the encoding time."""
    options = EvalOptions.of(options, encoder=resolve_encoder(options.encoder, model))
    timer = Timer()
    identity = model_identity(model, model_name)
    cache = EmbeddingCache(options.cache_dir) if options.cache_dir else None
    with timer("encode"):
        q_emb, c_emb = encode_corpus(model, corpus, options, cache=cache, identity=identity, progress=progress)
    result = score(q_emb, c_emb)
    result.timings = {"encode_s": timer.seconds["encode"], **result.timings}
    result.settings.update(run_settings(model, options, cache))
    result.settings.update(options.record())
    result.model = identity
    return result
