"""The encode step of an evaluation: texts to L2-normalised embeddings with the model's query / passage prefixes, each
distinct text encoded once in length-sorted blocks by an encoding runtime (`runtimes`), optionally through the on-disk
cache (`cache`); and a whole corpus, every question and candidate of every language, checked (`encode_corpus`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np

from hybridbatch.data.records import QACorpus, passage_text
from hybridbatch.errors import UsageError
from hybridbatch.evaluation.cache import EmbeddingCache
from hybridbatch.evaluation.embedding_checks import check_embeddings
from hybridbatch.evaluation.model_info import embedding_dim, model_identity, texts_sha256
from hybridbatch.evaluation.options import EvalOptions
from hybridbatch.evaluation.runtimes import EncoderRuntime, TorchRuntime, make_encoder
from hybridbatch.models.loading import prefixes
from hybridbatch.provenance import Progress

Kind = Literal["query", "passage"]
Embeddings = dict[str, np.ndarray]  # language -> (rows, dim)
CALIBRATION_STEP = 50  # static int8 calibrates on every 50th question and candidate of every language


def prefix_for(model: Any, kind: Kind) -> str:
    """The query or passage prefix of `model` (models.prefixes: the model's own prompts, else E5 defaults)."""
    if kind not in ("query", "passage"):
        raise UsageError(f"kind must be 'query' or 'passage', not {kind!r}")
    qp, pp = prefixes(model)
    return qp if kind == "query" else pp


def encode_texts(
    model: Any,
    texts: Sequence[str],
    kind: Kind,
    batch_size: int = 64,
    show_progress: bool = False,
    progress: Callable[[int, int], None] | None = None,
    block: int = 1024,
    runner: EncoderRuntime | None = None,
) -> np.ndarray:
    """L2-normalised float32 embeddings `(len(texts), dim)`. Each distinct text is encoded once; distinct texts are
    sorted by length (longest first) before they are cut into blocks, so every batch holds texts of similar length
    and is padded only to its own longest. `runner` is a `runtimes` runtime (default: PyTorch fp32).
    `progress(done, total)` is called after each block of distinct texts (the CLI drives a progress bar with it).
    NaN / inf rows stay NaN and zero rows stay zero (`embedding_checks.check_embeddings` refuses them)."""
    runner = runner if runner is not None else TorchRuntime(model)
    prompt = prefix_for(model, kind) or None
    uniq, inverse = np.unique(np.asarray(list(texts), dtype=object), return_inverse=True)
    order = np.argsort(-np.fromiter((len(t) for t in uniq), dtype=np.int64, count=len(uniq)), kind="stable")
    dim = embedding_dim(model)
    out = np.zeros((len(uniq), dim), dtype=np.float32)
    for start in range(0, len(uniq), block):
        idx = order[start : start + block]
        out[idx] = runner.encode([str(t) for t in uniq[idx]], prompt, batch_size)
        if progress is not None:
            progress(min(start + block, len(uniq)), len(uniq))
    # normalise in float32 so cosine == inner product even for models without a Normalize module
    with np.errstate(invalid="ignore", over="ignore"):
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        out /= np.where(norms > 0, norms, 1.0)
    return out[inverse.reshape(-1)]


def encode_cached(
    model: Any,
    texts: Sequence[str],
    kind: Kind,
    *,
    cache: EmbeddingCache | None,
    identity: dict[str, Any] | None,
    settings: dict[str, Any],
    data_checksum: str = "",
    **encode_kw: Any,
) -> np.ndarray:
    """`encode_texts` through the cache (no cache: plain encode). `settings` names what the caller varied (context
    on/off, ...); prefix, max length, the model identity and a hash of the texts are always part of the key."""
    if cache is None:
        return encode_texts(model, texts, kind, **encode_kw)
    meta = {
        "model": identity or model_identity(model),
        "data_checksum": data_checksum,
        "kind": kind,
        "prefix": prefix_for(model, kind),
        "max_seq_length": getattr(model, "max_seq_length", None),
        "settings": settings,
        "n_texts": len(texts),
        "texts_sha256": texts_sha256(texts),
    }
    return cache.get_or_compute(meta, lambda: encode_texts(model, texts, kind, **encode_kw))


def encode_corpus(model: Any, corpus: QACorpus, options: EvalOptions, *, cache: EmbeddingCache | None,
                  identity: dict[str, Any], progress: Progress | None = None) -> tuple[Embeddings, Embeddings]:
    """Query and passage embeddings per language, encoded as `options` say (context, batch size, runtime,
    precision, devices; passages first: they are what `context` changes). NaN, inf or zero-norm embeddings raise
    `ModelError` naming the model and the first such text (`check_embeddings`)."""
    context = options.context
    runner = make_encoder(model, options.encoder, identity=identity, cache_dir=options.cache_dir,
                          precision=options.precision, devices=options.devices)
    if runner.needs_calibration:
        qp, pp = prefix_for(model, "query"), prefix_for(model, "passage")
        runner.prepare([qp + q.text for lang in corpus.languages for q in corpus.questions[lang][::CALIBRATION_STEP]]
                       + [pp + passage_text(c, context) for lang in corpus.languages
                          for c in corpus.candidates[lang][::CALIBRATION_STEP]])
    q_emb: Embeddings = {}
    c_emb: Embeddings = {}
    for kind, items in (("passage", corpus.candidates), ("query", corpus.questions)):
        for lang in corpus.languages:
            texts = [passage_text(c, context) for c in items[lang]] if kind == "passage" else [
                q.text for q in items[lang]]
            cb = (lambda d, t, _s=f"encode {kind} {lang}": progress(_s, d, t)) if progress else None
            settings: dict[str, Any] = {"context": context} if kind == "passage" else {}
            if runner.key != "torch":  # torch fp32 keys stay as they were: existing cache entries still hit
                settings["encoder"] = runner.key
            emb = encode_cached(
                model, texts, kind, cache=cache, identity=identity, settings=settings,
                data_checksum=corpus.checksum, batch_size=options.batch_size, progress=cb, runner=runner,
            )
            check_embeddings(emb, texts, model=str(identity.get("name")), what=f"{lang} {kind}")
            (c_emb if kind == "passage" else q_emb)[lang] = emb
    return q_emb, c_emb


def run_settings(model: Any, options: EvalOptions, cache: EmbeddingCache | None) -> dict[str, Any]:
    """The encoding settings and cache statistics every result file records."""
    return {
        "context": options.context, "batch_size": options.batch_size, "query_prefix": prefix_for(model, "query"),
        "passage_prefix": prefix_for(model, "passage"), "max_seq_length": getattr(model, "max_seq_length", None),
        "cache": str(options.cache_dir) if options.cache_dir else None,
        "cache_hits": cache.hits if cache else 0, "cache_misses": cache.misses if cache else 0,
        "cache_rejected": cache.rejected if cache else 0, "cache_temps_removed": cache.temps_removed if cache else 0,
    }
