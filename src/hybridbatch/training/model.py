"""The model a run trains: loaded by name like everywhere else (models/loading.py), with the freezing a config asks
for. Any loader failure becomes a ModelError, so a wrong name is one readable message before anything is written."""

from __future__ import annotations

from typing import Any

from hybridbatch.device import Placement
from hybridbatch.errors import HybridBatchError, ModelError, UsageError
from hybridbatch.models.loading import load_model as load_any_model
from hybridbatch.training.config import TrainConfig


def load_st_model(name: str, max_seq_length: int | None = None, device: str = "auto", **options: Any) -> Any:
    """`models.load_model(name, ...)`; any failure becomes a ModelError (e.g. a hub id while offline)."""
    try:
        model = load_any_model(name, device=device, max_seq_length=max_seq_length, **options)
    except HybridBatchError:
        raise
    except Exception as e:  # noqa: BLE001 - any loader failure is the user's model name / network
        raise ModelError(f"cannot load model {name!r}: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
                         " (a hub id needs network; offline, pass a local sentence-transformers folder)") from None
    if max_seq_length:
        model.max_seq_length = max_seq_length
    return model


def freeze_word_embeddings(model: Any) -> int:
    """Stop training the word embeddings (most of a multilingual model's parameters: ~9 s instead of ~11 s a step
    on CPU for e5-small). Returns the number of frozen parameters."""
    inner = getattr(model[0], "auto_model", None)
    if inner is None or not hasattr(inner, "get_input_embeddings"):
        raise UsageError("--freeze-embeddings needs a transformer model as the first module")
    emb = inner.get_input_embeddings()
    n = 0
    for p in emb.parameters():
        p.requires_grad_(False)
        n += p.numel()
    return n


def freeze_unused_pooler(model: Any) -> int:
    """A BERT-style `pooler` is never used by sentence-transformers pooling: freeze it so the optimizer skips it
    (and DDP does not wait for its gradients)."""
    inner = getattr(model[0], "auto_model", None)
    n = 0
    for name, p in (inner.named_parameters() if inner is not None else []):
        if name.startswith("pooler."):
            p.requires_grad_(False)
            n += p.numel()
    return n


def load_for_training(config: TrainConfig, place: Placement) -> Any:
    """The model to train, on the run's device, with the freezing the config asks for."""
    model = load_st_model(config.model, config.max_seq_length, device=place.device,
                          query_prefix=config.query_prefix, passage_prefix=config.passage_prefix,
                          allow_missing_weights=config.allow_missing_weights)
    if config.freeze_embeddings:
        freeze_word_embeddings(model)
    freeze_unused_pooler(model)
    return model
