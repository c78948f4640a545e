"""hybridbatch: hybrid-batch training and LAReQA evaluation for multilingual dense retrievers.

The public API, importable from the top level:

    from hybridbatch import load_model, pairs_from_long, HybridSampler, LAReQAEvaluator, average_precision

Names are imported on first use (module `__getattr__`), so `import hybridbatch` stays cheap: no torch, no
sentence-transformers until a model, sampler or trainer is asked for.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from hybridbatch.errors import DataError, HybridBatchError, ModelError, UsageError  # noqa: F401  (in __all__)

__version__ = "0.1.0"

# public name -> the module that defines it
_LAZY: dict[str, str] = {
    # models
    **dict.fromkeys(("load_model", "prefixes", "set_prefixes", "describe_model"), "hybridbatch.models.loading"),
    "build_embedded_model": "hybridbatch.models.embedded",
    # data
    **dict.fromkeys(("load_corpus", "load_pairs"), "hybridbatch.data.lookup"),
    **dict.fromkeys(("QACorpus", "PairSet", "Question", "Candidate", "TrainItem"), "hybridbatch.data.records"),
    "check_paths": "hybridbatch.data.checks",
    # sampling
    **dict.fromkeys(("SAMPLERS", "HybridSampler", "XXSampler", "XYSampler", "EnglishSampler", "MixedSampler",
                     "RandomSampler", "HybridMultiSampler", "BilingualSampler", "CurriculumSampler", "make_sampler",
                     "sampler_class"),
                    "hybridbatch.sampling.samplers"),
    "PairBatchSampler": "hybridbatch.sampling.base",
    **dict.fromkeys(("pairs_from_long", "pair_dataset"), "hybridbatch.sampling.dataset"),
    "PairCollator": "hybridbatch.sampling.collator",
    "ProportionalGroupSampler": "hybridbatch.sampling.sources",
    **dict.fromkeys(("TranslationSampler", "with_row_labels"), "hybridbatch.sampling.translations"),
    "MultiSourceSampler": "hybridbatch.sampling.sources",
    # training
    "TrainConfig": "hybridbatch.training.config",
    "make_loss": "hybridbatch.training.losses",
    "MultiPositiveRankingLoss": "hybridbatch.training.multi_positive_loss",
    "ConsistencyRankingLoss": "hybridbatch.training.consistency_loss",
    "LanguageAdversarialLoss": "hybridbatch.training.adversarial",
    "train": "hybridbatch.experiments.training",  # training with the LAReQA checkpoint rule composed in
    **dict.fromkeys(("placement", "resolve_device", "resolve_precision"), "hybridbatch.device"),
    # evaluation
    "LAReQAEvaluator": "hybridbatch.evaluation.evaluator",
    "evaluate_lareqa": "hybridbatch.evaluation.lareqa",
    "evaluate_beir": "hybridbatch.evaluation.beir",
    **dict.fromkeys(("EvalResult", "BeirResult"), "hybridbatch.evaluation.results"),
    "EvalOptions": "hybridbatch.evaluation.options",
    "write_eval": "hybridbatch.report.evaluation",
    "encode_texts": "hybridbatch.evaluation.encode",
    **dict.fromkeys(("average_precision", "recall_at", "ndcg_at", "mrr_at", "rank_distance", "relevant_ranks",
                     "all_metrics"), "hybridbatch.evaluation.metrics"),
    **dict.fromkeys(("own_language_share", "own_language_first", "stratified_ndcg", "language_preference"),
                    "hybridbatch.evaluation.preference"),
    **dict.fromkeys(("max_rank", "complete_at", "worst_pool_table"), "hybridbatch.evaluation.worst_rank"),
    # analysis
    "align": "hybridbatch.analysis.alignment_run",
    "run_align": "hybridbatch.experiments.alignment",
    **dict.fromkeys(("compare", "load_run"), "hybridbatch.analysis.significance"),
}

__all__ = sorted(["__version__", "HybridBatchError", "DataError", "ModelError", "UsageError", *_LAZY])


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'hybridbatch' has no attribute {name!r}")
    try:
        value = getattr(importlib.import_module(module), name)
    except ModuleNotFoundError as e:
        if e.name != module:  # a missing dependency (torch, ...) is the user's to see, unchanged
            raise
        raise AttributeError(f"hybridbatch.{name} needs {module}, which this build does not have") from e
    globals()[name] = value  # cache: later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return list(__all__)


if TYPE_CHECKING:  # static type checkers and IDEs see the real objects
    from hybridbatch.analysis.alignment_run import align  # noqa: F401
    from hybridbatch.analysis.significance import compare, load_run  # noqa: F401
    from hybridbatch.data.checks import check_paths  # noqa: F401
    from hybridbatch.data.lookup import load_corpus, load_pairs  # noqa: F401
    from hybridbatch.data.records import Candidate, PairSet, QACorpus, Question, TrainItem  # noqa: F401
    from hybridbatch.device import placement, resolve_device, resolve_precision  # noqa: F401
    from hybridbatch.evaluation.beir import evaluate_beir  # noqa: F401
    from hybridbatch.evaluation.encode import encode_texts  # noqa: F401
    from hybridbatch.evaluation.evaluator import LAReQAEvaluator  # noqa: F401
    from hybridbatch.evaluation.lareqa import evaluate_lareqa  # noqa: F401
    from hybridbatch.evaluation.metrics import (  # noqa: F401
        all_metrics,
        average_precision,
        mrr_at,
        ndcg_at,
        rank_distance,
        recall_at,
        relevant_ranks,
    )
    from hybridbatch.evaluation.options import EvalOptions  # noqa: F401
    from hybridbatch.evaluation.preference import (  # noqa: F401
        language_preference,
        own_language_first,
        own_language_share,
        stratified_ndcg,
    )
    from hybridbatch.evaluation.results import BeirResult, EvalResult  # noqa: F401
    from hybridbatch.evaluation.worst_rank import complete_at, max_rank, worst_pool_table  # noqa: F401
    from hybridbatch.experiments.alignment import run_align  # noqa: F401
    from hybridbatch.experiments.training import train  # noqa: F401
    from hybridbatch.models.embedded import build_embedded_model  # noqa: F401
    from hybridbatch.models.loading import describe_model, load_model, prefixes, set_prefixes  # noqa: F401
    from hybridbatch.report.evaluation import write_eval  # noqa: F401
    from hybridbatch.sampling.base import PairBatchSampler  # noqa: F401
    from hybridbatch.sampling.collator import PairCollator  # noqa: F401
    from hybridbatch.sampling.dataset import pair_dataset, pairs_from_long  # noqa: F401
    from hybridbatch.sampling.samplers import (  # noqa: F401
        SAMPLERS,
        BilingualSampler,
        CurriculumSampler,
        EnglishSampler,
        HybridMultiSampler,
        HybridSampler,
        MixedSampler,
        RandomSampler,
        XXSampler,
        XYSampler,
        make_sampler,
        sampler_class,
    )
    from hybridbatch.sampling.sources import MultiSourceSampler, ProportionalGroupSampler  # noqa: F401
    from hybridbatch.sampling.translations import TranslationSampler, with_row_labels  # noqa: F401
    from hybridbatch.training.adversarial import LanguageAdversarialLoss  # noqa: F401
    from hybridbatch.training.config import TrainConfig  # noqa: F401
    from hybridbatch.training.consistency_loss import ConsistencyRankingLoss  # noqa: F401
    from hybridbatch.training.losses import make_loss  # noqa: F401
    from hybridbatch.training.multi_positive_loss import MultiPositiveRankingLoss  # noqa: F401
