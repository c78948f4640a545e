"""Evaluation: encoding, ranking metrics and the LAReQA protocol."""

from hybridbatch.evaluation.encoders import (  # noqa: F401
    DEFAULT_ENCODER,
    ENCODERS,
    PRECISIONS,
    ExportedEncoder,
    TorchEncoder,
    default_encoder,
    length_batches,
    make_encoder,
)
from hybridbatch.evaluation.encoding import (  # noqa: F401
    BYTES_PER_SCORE,
    DEFAULT_BLOCK_MIB,
    DEFAULT_CHUNK,
    EXACT_BLOCK,
    FAISS_AUTO_THRESHOLD,
    Backend,
    EmbeddingCache,
    Kind,
    block_queries,
    choose_backend,
    encode_cached,
    encode_texts,
    exact_mib,
    exact_pair_scores,
    log,
    model_identity,
    prefix_for,
    relevant_scores,
    search,
    segment_counts,
    texts_sha256,
    tie_band,
)
from hybridbatch.evaluation.lareqa import (  # noqa: F401
    EVAL_FILES,
    METRICS,
    MULTI,
    PER_QUERY_FIELDS,
    PROTOCOL_NOTES,
    BeirResult,
    EvalResult,
    Progress,
    cell_means,
    encode_corpus,
    evaluate_beir,
    evaluate_beir_embeddings,
    evaluate_lareqa,
    evaluate_lareqa_embeddings,
    load_per_query,
    macro_from_cells,
    relevant_matrix,
    run_settings,
    summarise,
    write_eval,
)
from hybridbatch.evaluation.metrics import (  # noqa: F401
    TIE_MODES,
    TIE_RULE,
    TIE_RULES,
    all_metrics,
    average_precision,
    count_above,
    mrr_at,
    n_relevant,
    ndcg_at,
    order_among,
    rank_distance,
    ranks_from_counts,
    recall_at,
    relevant_ranks,
    tie_metrics,
    tie_recall_at,
)
from hybridbatch.evaluation.sanity import (  # noqa: F401
    COLLAPSE_SPREAD,
    check_and_normalise,
    check_embeddings,
    score_spread,
)
from hybridbatch.evaluation.shift import (  # noqa: F401
    ShiftResult,
    ShiftTask,
    evaluate_shift,
    evaluate_task_embeddings,
    load_tasks,
    run_shift,
    tatoeba_task,
    tydi_task,
    write_shift,
)


def __getattr__(name: str):
    """`LAReQAEvaluator` imports sentence-transformers: load it on first use, not with the package."""
    if name == "LAReQAEvaluator":
        from hybridbatch.evaluation.evaluator import LAReQAEvaluator

        return LAReQAEvaluator
    raise AttributeError(name)
