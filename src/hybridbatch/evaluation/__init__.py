"""Evaluation: encoding runtimes and embeddings, exact scoring, ranking metrics, the LAReQA protocol, single-language
retrieval and the domain-shift pools. `__all__` names what a user or a later stage needs; each name is defined in the
module named beside it, the helpers stay there."""

from hybridbatch.evaluation.beir import evaluate_beir
from hybridbatch.evaluation.cache import EmbeddingCache
from hybridbatch.evaluation.encode import encode_texts
from hybridbatch.evaluation.evaluate import evaluate_model
from hybridbatch.evaluation.lareqa import evaluate_lareqa, evaluate_lareqa_embeddings
from hybridbatch.evaluation.metrics import (
    TIE_RULES,
    all_metrics,
    average_precision,
    mrr_at,
    ndcg_at,
    rank_distance,
    recall_at,
    relevant_ranks,
)
from hybridbatch.evaluation.options import EvalOptions
from hybridbatch.evaluation.preference import language_preference
from hybridbatch.evaluation.results import BeirResult, EvalResult, load_per_query, write_eval_numbers
from hybridbatch.evaluation.retrieval import BACKENDS, search
from hybridbatch.evaluation.runtimes import DEFAULT_ENCODER, ENCODERS, make_encoder
from hybridbatch.evaluation.shift import ShiftResult, evaluate_shift, run_shift, write_shift_numbers

__all__ = [
    "LAReQAEvaluator", "EvalOptions", "evaluate_lareqa", "evaluate_lareqa_embeddings", "evaluate_model",
    "evaluate_beir", "evaluate_shift", "run_shift", "EvalResult", "BeirResult", "ShiftResult",
    "load_per_query", "write_eval_numbers", "write_shift_numbers",
    "encode_texts", "EmbeddingCache", "make_encoder", "DEFAULT_ENCODER", "ENCODERS", "BACKENDS", "search",
    "TIE_RULES", "all_metrics", "average_precision", "mrr_at", "ndcg_at", "rank_distance", "recall_at",
    "relevant_ranks", "language_preference",
]


def __getattr__(name: str):
    """`LAReQAEvaluator` imports sentence-transformers: load it on first use, not with the package."""
    if name == "LAReQAEvaluator":
        from hybridbatch.evaluation.evaluator import LAReQAEvaluator

        return LAReQAEvaluator
    raise AttributeError(name)
