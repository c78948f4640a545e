"""What evaluation needs to know about a model besides its outputs: its embedding width and what identifies its
embeddings (the key of the embedding cache and of exported runtimes, recorded in every result file)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any


def embedding_dim(model: Any) -> int:
    """Output width of a sentence-transformers model (the method was renamed in sentence-transformers 6)."""
    fn = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    return int(fn() or 0)


def model_identity(model: Any, name: str | None = None) -> dict[str, Any]:
    """What identifies a model's embeddings: its name/path, a checksum of every weight, max length and prompts."""
    import torch

    h = hashlib.sha256()
    for key, t in sorted(model.state_dict().items()):
        t = t.detach().cpu().contiguous().reshape(-1)
        h.update(f"{key}:{tuple(t.shape)}:{t.dtype}".encode())
        h.update(t.view(torch.uint8).numpy().tobytes())
    return {
        "name": str(name) if name is not None else type(model).__name__,
        "weights_sha256": h.hexdigest(),
        "max_seq_length": getattr(model, "max_seq_length", None),
        "prompts": dict(getattr(model, "prompts", {}) or {}),
    }


def texts_sha256(texts: Sequence[str]) -> str:
    """Checksum of a list of texts (length-prefixed, so ['ab'] and ['a', 'b'] differ)."""
    h = hashlib.sha256()
    for t in texts:
        b = t.encode("utf-8")
        h.update(len(b).to_bytes(8, "little"))
        h.update(b)
    return h.hexdigest()
