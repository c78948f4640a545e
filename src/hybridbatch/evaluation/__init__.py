"""Evaluation: encoding runtimes and embeddings, exact scoring, ranking metrics, the LAReQA protocol, single-language
retrieval and the domain-shift pools. Each name is defined in the module named beside it."""

from hybridbatch.evaluation.beir import BEIR_METRICS, evaluate_beir, evaluate_beir_embeddings  # noqa: F401
from hybridbatch.evaluation.cache import EmbeddingCache  # noqa: F401
from hybridbatch.evaluation.corpus_embeddings import (  # noqa: F401
    Progress,
    encode_corpus,
    evaluate_model,
    run_settings,
)
from hybridbatch.evaluation.embedding_checks import (  # noqa: F401
    COLLAPSE_SPREAD,
    check_and_normalise,
    check_embeddings,
    score_spread,
)
from hybridbatch.evaluation.embeddings import Kind, encode_cached, encode_texts, prefix_for  # noqa: F401
from hybridbatch.evaluation.exported import ExportedRuntime, OnnxRuntime, OpenVinoRuntime  # noqa: F401
from hybridbatch.evaluation.lareqa import (  # noqa: F401
    cell_means,
    evaluate_lareqa,
    evaluate_lareqa_embeddings,
    macro_from_cells,
    relevant_matrix,
    summarise,
)
from hybridbatch.evaluation.metrics import (  # noqa: F401
    TIE_MODES,
    TIE_RULE,
    TIE_RULES,
    all_metrics,
    average_precision,
    check_ties,
    count_above,
    mrr_at,
    n_relevant,
    nanmean,
    ndcg_at,
    order_among,
    rank_distance,
    ranks_from_counts,
    recall_at,
    relevant_ranks,
    tie_metrics,
    tie_recall_at,
)
from hybridbatch.evaluation.model_info import embedding_dim, model_identity, texts_sha256  # noqa: F401
from hybridbatch.evaluation.options import EvalOptions  # noqa: F401
from hybridbatch.evaluation.results import (  # noqa: F401
    EVAL_FILES,
    METRICS,
    MULTI,
    PER_QUERY_FIELDS,
    PROTOCOL_NOTES,
    BeirResult,
    EvalResult,
    load_per_query,
    write_results,
)
from hybridbatch.evaluation.retrieval import (  # noqa: F401
    BACKENDS,
    BYTES_PER_SCORE,
    DEFAULT_BLOCK_MIB,
    DEFAULT_CHUNK,
    EXACT_BLOCK,
    FAISS_AUTO_THRESHOLD,
    Backend,
    block_queries,
    check_backend,
    choose_backend,
    exact_mib,
    exact_pair_scores,
    relevant_scores,
    search,
    segment_counts,
    tie_band,
)
from hybridbatch.evaluation.runtimes import (  # noqa: F401
    DEFAULT_ENCODER,
    ENCODERS,
    PRECISIONS,
    RUNTIMES,
    EncoderRuntime,
    TorchRuntime,
    check_encoder,
    check_precision,
    default_encoder,
    drop_exports,
    length_batches,
    make_encoder,
    resolve_encoder,
)
from hybridbatch.evaluation.shift import (  # noqa: F401
    ShiftResult,
    evaluate_shift,
    evaluate_task_embeddings,
    run_shift,
    summary_row,
    write_shift,
)
from hybridbatch.evaluation.shift_tasks import TASKS, ShiftTask, load_tasks, tatoeba_task, tydi_task  # noqa: F401
from hybridbatch.evaluation.worst_rank import (  # noqa: F401
    WORST_METRICS,
    complete_at,
    max_rank,
    worst_copy,
    worst_pool_table,
)


def __getattr__(name: str):
    """`LAReQAEvaluator` imports sentence-transformers: load it on first use, not with the package."""
    if name == "LAReQAEvaluator":
        from hybridbatch.evaluation.evaluator import LAReQAEvaluator

        return LAReQAEvaluator
    raise AttributeError(name)
