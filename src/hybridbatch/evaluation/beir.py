"""BEIR-style single-language retrieval (TyDi GoldP: the domain-shift check): each language's questions against its
own candidate pool, nDCG@10, Recall@100 and MRR@10 per language and their macro mean."""

from __future__ import annotations

from typing import Any

import numpy as np

from hybridbatch.data.records import QACorpus
from hybridbatch.evaluation.embedding_checks import check_and_normalise
from hybridbatch.evaluation.encode import Embeddings
from hybridbatch.evaluation.evaluate import evaluate_model
from hybridbatch.evaluation.metrics import TIE_RULES, nanmean, tie_metrics, tie_recall_at
from hybridbatch.evaluation.options import EvalOptions
from hybridbatch.evaluation.results import BeirResult
from hybridbatch.evaluation.retrieval import choose_backend, segment_counts
from hybridbatch.provenance import Progress, Timer

BEIR_METRICS = ("ndcg10", "recall100", "mrr10")


def evaluate_beir(model: Any, corpus: QACorpus, options: EvalOptions | None = None, *, model_name: str | None = None,
                  progress: Progress | None = None, **settings: Any) -> BeirResult:
    """Each language on its own: its questions against its own candidate pool (for TyDi GoldP, paragraphs).
    Reports nDCG@10, Recall@100, MRR@10 per language and their macro mean (the domain-shift check). `options` (or
    the same names as keywords) are `EvalOptions`."""
    options = EvalOptions.of(options, **settings)
    return evaluate_model(model, corpus, options, lambda q, c: evaluate_beir_embeddings(corpus, q, c, options),
                          model_name=model_name, progress=progress)


def evaluate_beir_embeddings(corpus: QACorpus, q_emb: Embeddings, c_emb: Embeddings,
                             options: EvalOptions | None = None, **settings: Any) -> BeirResult:
    """Single-language retrieval on given embeddings (checked and normalised as for LAReQA)."""
    options = EvalOptions.of(options, **settings)
    ties = options.ties
    q_emb, _ = check_and_normalise(q_emb, {lang: len(corpus.questions[lang]) for lang in corpus.languages},
                                   what="query")
    c_emb, _ = check_and_normalise(c_emb, {lang: len(corpus.candidates[lang]) for lang in corpus.languages},
                                   what="candidate")
    timer = Timer()
    per_language: dict[str, dict[str, float]] = {}
    rows: dict[str, list[np.ndarray]] = {"qid": [], "qlang": [], "rank": [], **{k: [] for k in BEIR_METRICS}}
    qid_names: list[str] = []
    for li, lang in enumerate(corpus.languages):
        qs = corpus.questions[lang]
        pool = np.asarray(c_emb[lang], dtype=np.float32)
        if not qs or not len(pool):
            continue
        rel = np.array([[q.answer] for q in qs], dtype=np.int64)
        with timer("score"):
            counts, rs, tied = segment_counts(q_emb[lang], pool, rel, [0, len(pool)],
                                              backend=choose_backend(options.backend, len(pool)),
                                              chunk_size=options.chunk_size, block_mib=options.block_mib,
                                              return_ties=True)
        with timer("metric"):
            above, t = counts[:, 0, :].astype(np.int64), tied[:, 0, :].astype(np.int64)
            tm, _ = tie_metrics(above, t, rs, np.ones(above.shape, dtype=bool), ties)
            m = {"ndcg10": tm["ndcg10"], "recall100": tie_recall_at(above, t, 100, ties), "mrr10": tm["mrr10"]}
            per_language[lang] = {k: float(np.mean(v)) for k, v in m.items()} | {
                "n_queries": len(qs), "n_candidates": len(pool)}
            rows["qid"].append(np.arange(len(qid_names), len(qid_names) + len(qs), dtype=np.int32))
            qid_names.extend(q.qid for q in qs)
            rows["qlang"].append(np.full(len(qs), li, dtype=np.int16))
            rows["rank"].append((above + 1)[:, 0].astype(np.int32))
            for k, v in m.items():
                rows[k].append(v)
    summary = {k: nanmean(np.array([v[k] for v in per_language.values()])) for k in BEIR_METRICS}
    per_query = {k: np.concatenate(v) if v else np.zeros(0) for k, v in rows.items()}
    per_query["qid_names"] = np.array(qid_names)
    per_query["langs"] = np.array(corpus.languages)
    return BeirResult(
        dataset=corpus.name, checksum=corpus.checksum, languages=list(per_language), per_language=per_language,
        summary=summary,
        counts={"n_queries": sum(len(corpus.questions[lang]) for lang in corpus.languages),
                "n_candidates": sum(len(corpus.candidates[lang]) for lang in corpus.languages)},
        per_query=per_query, settings={"backend": options.backend, "chunk_size": options.chunk_size,
                                       "block_mib": options.block_mib, "ties": ties}, tie_rule=TIE_RULES[ties],
        timings={"score_s": timer.seconds.get("score", 0.0), "metric_s": timer.seconds.get("metric", 0.0)},
    )
