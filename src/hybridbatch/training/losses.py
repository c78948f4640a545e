"""The loss of a run: InfoNCE with in-batch negatives (+ the hard negative column when present) or the multi-positive
form over translation batches (with the ranking-consistency term: loss 'consistency'), optionally wrapped in the
language-adversarial term; and what train.json records of it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hybridbatch.errors import UsageError
from hybridbatch.sampling.translations import PASSAGE_LANG_LABEL, QUERY_LANG_LABEL
from hybridbatch.training.adversarial import LanguageAdversarialLoss
from hybridbatch.training.config import TrainConfig
from hybridbatch.training.consistency_loss import ConsistencyRankingLoss
from hybridbatch.training.multi_positive_loss import MultiPositiveRankingLoss


def base_loss(model: Any, config: TrainConfig, world_size: int = 1) -> Any:
    """MNRL, its GradCache variant (constant memory in the batch size) or MultiPositiveRankingLoss. `symmetric` adds
    the passage -> query direction (own softmax, averaged); with several processes the in-batch negatives are
    gathered across ranks."""
    from sentence_transformers.sentence_transformer.losses import (
        CachedMultipleNegativesRankingLoss,
        MultipleNegativesRankingLoss,
    )

    directions = ("query_to_doc", "doc_to_query") if config.symmetric else ("query_to_doc",)
    if config.loss == "consistency":
        sides = ("query", "passage") if config.consistency_sides == "both" else (config.consistency_sides,)
        return ConsistencyRankingLoss(model, scale=config.scale, weight=config.consistency_weight,
                                      temperature=config.consistency_temperature,
                                      divergence=config.consistency_divergence, sides=sides,
                                      form=config.multi_positive_form, directions=directions,
                                      gather_across_devices=world_size > 1)
    if config.loss == "multi-positive":
        return MultiPositiveRankingLoss(model, scale=config.scale, form=config.multi_positive_form,
                                        directions=directions, gather_across_devices=world_size > 1)
    kw: dict[str, Any] = {
        "scale": config.scale,
        "gather_across_devices": world_size > 1,
        "directions": directions,
        "partition_mode": "per_direction" if config.symmetric else "joint",
    }
    if config.cached_loss:
        return CachedMultipleNegativesRankingLoss(model, mini_batch_size=config.mini_batch_size, **kw)
    return MultipleNegativesRankingLoss(model, **kw)


def make_loss(model: Any, config: TrainConfig, world_size: int = 1, languages: Sequence[str] = ()) -> Any:
    """The run's loss: `base_loss`, wrapped in LanguageAdversarialLoss when `adversarial_weight` > 0 (its classifier
    tells `languages`, the codes of the dataset's `label` column; the hard negative is classified in the language
    it is in)."""
    loss = base_loss(model, config, world_size)
    if config.adversarial_weight <= 0:
        return loss
    if len(languages) < 2:
        raise UsageError(f"adversarial training needs at least two training languages to tell apart, got "
                         f"{list(languages)}")
    negative = QUERY_LANG_LABEL if config.hard_negative_lang == "query" else PASSAGE_LANG_LABEL
    return LanguageAdversarialLoss(model, loss, list(languages), weight=config.adversarial_weight,
                                   hidden=config.adversarial_hidden, memory=config.adversarial_memory,
                                   label_columns=(QUERY_LANG_LABEL, PASSAGE_LANG_LABEL, negative))


def loss_record(loss: Any, config: TrainConfig) -> dict[str, Any]:
    """The loss as train.json states it: the keys every run has had (read off the base loss under a wrapper), and
    for the multi-positive or adversarial loss also its `get_config_dict()` under "config"."""
    base = loss.loss if isinstance(loss, LanguageAdversarialLoss) else loss
    record = {"type": type(loss).__name__, "scale": config.scale, "directions": list(base.directions),
              "gather_across_devices": bool(base.gather_across_devices), "hard_negatives": config.hard_negatives,
              "hard_negative_lang": config.hard_negative_lang if config.hard_negatives else None,
              "mini_batch_size": config.mini_batch_size if config.cached_loss else None}
    if base is not loss or isinstance(base, MultiPositiveRankingLoss):
        record["config"] = loss.get_config_dict()
    return record
