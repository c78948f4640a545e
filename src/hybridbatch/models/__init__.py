"""Models: the embedded default and loading any sentence-transformers / Hugging Face model. `__all__` names what a
user or a later stage needs; the weight-format helpers stay in models/embedded.py."""

from hybridbatch.models.embedded import (
    DEFAULT_MODEL,
    DEFAULT_PASSAGE_PREFIX,
    DEFAULT_QUERY_PREFIX,
    EMBEDDED_NAME,
    build_embedded_model,
    embedded_model_dir,
)
from hybridbatch.models.loading import describe_model, load_model, prefixes, resolve_model, set_prefixes

__all__ = [
    "DEFAULT_MODEL", "DEFAULT_PASSAGE_PREFIX", "DEFAULT_QUERY_PREFIX", "EMBEDDED_NAME", "build_embedded_model",
    "embedded_model_dir", "describe_model", "load_model", "prefixes", "resolve_model", "set_prefixes",
]
