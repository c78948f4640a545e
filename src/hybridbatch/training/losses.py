"""The loss of a run: InfoNCE with in-batch negatives (+ the hard negative column when present), and what
train.json records of it."""

from __future__ import annotations

from typing import Any

from hybridbatch.training.config import TrainConfig


def make_loss(model: Any, config: TrainConfig, world_size: int = 1) -> Any:
    """MNRL, or the GradCache variant (constant memory in the batch size). `symmetric` adds the passage -> query
    direction (own softmax, averaged); with several processes the in-batch negatives are gathered across ranks."""
    from sentence_transformers.sentence_transformer.losses import (
        CachedMultipleNegativesRankingLoss,
        MultipleNegativesRankingLoss,
    )

    kw: dict[str, Any] = {
        "scale": config.scale,
        "gather_across_devices": world_size > 1,
        "directions": ("query_to_doc", "doc_to_query") if config.symmetric else ("query_to_doc",),
        "partition_mode": "per_direction" if config.symmetric else "joint",
    }
    if config.cached_loss:
        return CachedMultipleNegativesRankingLoss(model, mini_batch_size=config.mini_batch_size, **kw)
    return MultipleNegativesRankingLoss(model, **kw)


def loss_record(loss: Any, config: TrainConfig) -> dict[str, Any]:
    """The loss as train.json states it."""
    return {"type": type(loss).__name__, "scale": config.scale, "directions": list(loss.directions),
            "gather_across_devices": bool(loss.gather_across_devices), "hard_negatives": config.hard_negatives,
            "hard_negative_lang": config.hard_negative_lang if config.hard_negatives else None,
            "mini_batch_size": config.mini_batch_size if config.cached_loss else None}
