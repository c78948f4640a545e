"""What `lareqa.evaluate_lareqa` and `beir.evaluate_beir` share: encode every question and candidate of a corpus
(through the cache, with the chosen runtime), check the embeddings, score them, and record how."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from hybridbatch.data.records import QACorpus, passage_text
from hybridbatch.evaluation.cache import EmbeddingCache
from hybridbatch.evaluation.embedding_checks import check_embeddings
from hybridbatch.evaluation.embeddings import encode_cached, prefix_for
from hybridbatch.evaluation.model_info import model_identity
from hybridbatch.evaluation.options import EvalOptions
from hybridbatch.evaluation.runtimes import make_encoder, resolve_encoder
from hybridbatch.provenance import Timer

Progress = Callable[[str, int, int], None]  # (stage, done, total)
Embeddings = dict[str, np.ndarray]  # language -> (rows, dim)
R = TypeVar("R")
CALIBRATION_STEP = 50  # static int8 calibrates on every 50th question and candidate of every language


def encode_corpus(model: Any, corpus: QACorpus, *, context: bool, batch_size: int, cache: EmbeddingCache | None,
                  identity: dict[str, Any], progress: Progress | None = None, encoder: str = "torch",
                  cache_dir: Path | str | None = None, precision: str = "fp32", devices: list[str] | None = None
                  ) -> tuple[Embeddings, Embeddings]:
    """Query and passage embeddings per language (passages first: they are what `context` changes). NaN, inf or
    zero-norm embeddings raise `ModelError` naming the model and the first such text (`check_embeddings`).
    `progress` hears of two stages: 'prepare encoder' (an export or calibration can take a while) and 'encode', one
    stage over every text of the corpus, advanced after each block of texts."""
    tick = progress or (lambda stage, done, total: None)
    tick(f"prepare encoder ({encoder})", 0, 1)
    runner = make_encoder(model, encoder, identity=identity, cache_dir=cache_dir, precision=precision,
                          devices=devices)
    if runner.needs_calibration:
        qp, pp = prefix_for(model, "query"), prefix_for(model, "passage")
        runner.prepare([qp + q.text for lang in corpus.languages for q in corpus.questions[lang][::CALIBRATION_STEP]]
                       + [pp + passage_text(c, context) for lang in corpus.languages
                          for c in corpus.candidates[lang][::CALIBRATION_STEP]])
    tick(f"prepare encoder ({encoder})", 1, 1)
    q_emb: Embeddings = {}
    c_emb: Embeddings = {}
    total = sum(len(items[lang]) for items in (corpus.candidates, corpus.questions) for lang in corpus.languages)
    done = 0
    tick("encode", 0, total)
    for kind, items in (("passage", corpus.candidates), ("query", corpus.questions)):
        for lang in corpus.languages:
            texts = [passage_text(c, context) for c in items[lang]] if kind == "passage" else [
                q.text for q in items[lang]]
            cb = (lambda d, t, _o=done, _n=len(texts): tick("encode", _o + _n * d // max(t, 1), total)
                  ) if progress else None
            settings: dict[str, Any] = {"context": context} if kind == "passage" else {}
            if runner.key != "torch":  # torch fp32 keys stay as they were: existing cache entries still hit
                settings["encoder"] = runner.key
            emb = encode_cached(
                model, texts, kind, cache=cache, identity=identity, settings=settings,
                data_checksum=corpus.checksum, batch_size=batch_size, progress=cb, runner=runner,
            )
            check_embeddings(emb, texts, model=str(identity.get("name")), what=f"{lang} {kind}")
            (c_emb if kind == "passage" else q_emb)[lang] = emb
            done += len(texts)
            tick("encode", done, total)
    return q_emb, c_emb


def run_settings(model: Any, context: bool, batch_size: int, cache: EmbeddingCache | None,
                 cache_dir: Path | str | None) -> dict[str, Any]:
    """The encoding settings and cache statistics every result file records."""
    return {
        "context": context, "batch_size": batch_size, "query_prefix": prefix_for(model, "query"),
        "passage_prefix": prefix_for(model, "passage"), "max_seq_length": getattr(model, "max_seq_length", None),
        "cache": str(cache_dir) if cache_dir else None,
        "cache_hits": cache.hits if cache else 0, "cache_misses": cache.misses if cache else 0,
        "cache_rejected": cache.rejected if cache else 0, "cache_temps_removed": cache.temps_removed if cache else 0,
    }


def evaluate_model(model: Any, corpus: QACorpus, options: EvalOptions, score: Callable[[Embeddings, Embeddings], R],
                   *, model_name: str | None = None, progress: Progress | None = None) -> R:
    """Encode `corpus` with `model` as `options` say, then `score(query embeddings, candidate embeddings)` (an
    `EvalResult` / `BeirResult`); the result records the model, the encoding settings and the encoding time."""
    options = EvalOptions.of(options, encoder=resolve_encoder(options.encoder, model))
    timer = Timer()
    identity = model_identity(model, model_name)
    cache = EmbeddingCache(options.cache_dir) if options.cache_dir else None
    with timer("encode"):
        q_emb, c_emb = encode_corpus(model, corpus, context=options.context, batch_size=options.batch_size,
                                     cache=cache, identity=identity, progress=progress, encoder=options.encoder,
                                     cache_dir=options.cache_dir, precision=options.precision,
                                     devices=options.devices)
    result = score(q_emb, c_emb)
    result.timings = {"encode_s": timer.seconds["encode"], **result.timings}
    result.settings.update(run_settings(model, options.context, options.batch_size, cache, options.cache_dir))
    result.settings.update(options.record())
    result.model = identity
    return result
