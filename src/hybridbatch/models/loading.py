"""Loading any model: the embedded default, a local folder, or a hub id.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hybridbatch.device import check_device, process_device, resolve_device
from hybridbatch.errors import ModelError, UsageError
from hybridbatch.models.embedded import (
    DEFAULT_MODEL,
    EMBEDDED_ALIASES,
    build_embedded_model,
    embedded_model_dir,
    read_marker,
)

if TYPE_CHECKING:  # importing sentence-transformers pulls in torch: only when a model is really needed
    from sentence_transformers import SentenceTransformer


def prefixes(model: SentenceTransformer) -> tuple[str, str]:
    """(query prefix, passage prefix): the model's own named prompts when it has them ('query'; 'document',
    'passage' or 'corpus', the names sentence-transformers' encode_query / encode_document look up), else none: an E5
    prefix would be wrong input for LaBSE or XLM-R. sentence-transformers 6 gives every model empty 'query' and
    'document' placeholders, so the first non-empty one counts. Training and evaluation both use this: they agree."""
    from hybridbatch.sampling.dataset import model_prefixes  # the rule pairs_from_long(model=) shares

    return model_prefixes(model)


def set_prefixes(model: SentenceTransformer, query: str | None = None, passage: str | None = None
                 ) -> SentenceTransformer:
    """Set the model's query / passage prompts in place (None: keep the model's own; "": no prefix). They are stored
    as the model's named prompts ('query'; 'document' and 'passage'), so sentence-transformers' encode_query /
    encode_document use them too, and a model trained with them saves them and is evaluated with them later."""
    from hybridbatch.sampling.dataset import PASSAGE_PROMPT_NAMES, QUERY_PROMPT_NAMES

    prompts = dict(getattr(model, "prompts", None) or {})
    for value, names in ((query, QUERY_PROMPT_NAMES), (passage, PASSAGE_PROMPT_NAMES)):
        if value is None:
            continue
        if not isinstance(value, str):
            raise UsageError(f"a prefix must be a string, got {type(value).__name__}")
        for n in names:
            if n in prompts or n in ("query", "document", "passage"):
                prompts[n] = value
    model.prompts = prompts
    return model


# ---- loading any model ---------------------------------------------------------------------------------------------


def _looks_like_path(name: str) -> bool:
    """Names that can only be paths: absolute, ./ ../ ~, or more than one '/' (hub ids are `org/name`)."""
    return name.startswith(("/", "./", "../", "~", ".\\")) or name.count("/") > 1 or "\\" in name


def _bad_weights_file(folder: Path) -> str | None:
    """The first `*.safetensors` file of a model folder whose header or tensors cannot be read (a truncated copy),
    relative to the folder; None when every one reads."""
    from safetensors import safe_open

    for p in sorted(folder.rglob("*.safetensors")):
        try:
            with safe_open(str(p), "np") as f:
                for key in f.keys():
                    f.get_slice(key)
        except Exception:  # noqa: BLE001  (SafetensorError, OSError: the file is what we name)
            return str(p.relative_to(folder))
    return None


def _check_model_folder(path: Path) -> None:
    if not path.is_dir():
        raise ModelError(f"{path} is not a model folder: it is a file; pass the folder that holds modules.json "
                         f"or config.json")
    if not ((path / "modules.json").is_file() or (path / "config.json").is_file()):
        raise ModelError(f"{path} is not a model folder: it has neither modules.json (sentence-transformers) nor "
                         f"config.json (Hugging Face); pass a saved model folder, a model id, or `embedded`")


def resolve_model(name: str) -> str:
    """What to hand SentenceTransformer: the embedded model's folder (built on first use) for `embedded` and its
    aliases, a checked absolute folder for local paths, else the name itself (a hub id)."""
    name = str(name).strip()
    if not name:
        raise ModelError("empty model name: pass `embedded`, a local model folder, or a Hugging Face model id")
    if name.lower() in EMBEDDED_ALIASES:
        return str(build_embedded_model())
    path = Path(name).expanduser()
    if path.exists():
        _check_model_folder(path)
        return str(path.resolve())
    if _looks_like_path(name):
        raise ModelError(f"{path}: no such model folder; pass an existing folder, a Hugging Face model id, "
                         f"or `embedded`")
    return name


def _hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the Hugging Face endpoint answers a TCP connect (False in offline mode). Behind a proxy we cannot
    tell cheaply, so assume yes and let huggingface_hub decide."""
    import socket
    from urllib.parse import urlparse

    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE or os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        return False
    if any(os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY",
                                       "all_proxy")):
        return True
    url = urlparse(constants.ENDPOINT)
    try:
        socket.create_connection((url.hostname, url.port or (80 if url.scheme == "http" else 443)), timeout).close()
    except (OSError, ValueError):
        return False
    return True


def _in_hf_cache(repo_id: str) -> bool:
    """Whether a hub model was downloaded before (its modules.json or config.json is in the local cache that
    SentenceTransformer would use). An id the hub would reject counts as not cached."""
    from huggingface_hub import try_to_load_from_cache

    folders: list[str | None] = [None]
    if os.environ.get("SENTENCE_TRANSFORMERS_HOME"):
        folders.append(os.environ["SENTENCE_TRANSFORMERS_HOME"])
    for folder in folders:
        for filename in ("modules.json", "config.json"):
            try:
                hit = try_to_load_from_cache(repo_id, filename, cache_dir=folder)
            except Exception:  # HFValidationError (a malformed id) and friends: cannot be in the cache
                return False
            if isinstance(hit, str):
                return True
    return False


def load_model(name: str = DEFAULT_MODEL, device: str | None = "auto", max_seq_length: int | None = None,
               query_prefix: str | None = None, passage_prefix: str | None = None,
               allow_missing_weights: bool = False) -> SentenceTransformer:
    """Load a sentence-transformers model by name ('embedded', a folder or a hub id). Plain Hugging Face models
    (no modules.json) get mean pooling from SentenceTransformer itself. Any failure is a ModelError.

    `device`: auto (CUDA, then MPS, else CPU), cpu, cuda[:N] or mps. `query_prefix` / `passage_prefix` replace the
    model's own prompts (default: keep them; a model without prompts gets no prefix). A model whose weights lack
    tensors its config asks for (e.g. more layers than were saved) is refused: transformers would initialise them
    at random, a different model on every load; `allow_missing_weights=True` accepts that."""
    if max_seq_length is not None and max_seq_length < 1:
        raise UsageError(f"max_seq_length must be a positive number of tokens, got {max_seq_length}")
    check_device(device)  # a bad word fails before anything is loaded
    target = resolve_model(name)
    local = Path(target).is_dir()
    # Offline, huggingface_hub retries every file with backoff for over a minute before failing: when the hub is
    # unreachable, use only the local HF cache (fast success if the model was downloaded before, fast error if not).
    online = local or _hub_reachable()
    if not online and not _in_hf_cache(target):  # fail before importing torch: the CLI answers in a second
        raise ModelError(
            f"could not load model {name!r}: it is not a local folder, the Hugging Face Hub is not reachable and "
            f"it is not in the local Hugging Face cache. This machine may be offline (or the id is misspelt): pass "
            f"a local model folder, or `embedded` for the built-in multilingual-e5-small."
        )
    from sentence_transformers import (
        SentenceTransformer,  # after the cheap checks: a bad path fails in no time
    )

    from hybridbatch.models.centring import needs_trust

    device = process_device(resolve_device(device))
    try:
        with missing_weight_reports() as missing:
            # a per-language centring folder (models.centring) names this package's module: trusted, nothing else
            trust = local and needs_trust(target)
            model = SentenceTransformer(target, device=device, local_files_only=not online, trust_remote_code=trust)
    except Exception as e:  # hub/transformers raise many types (OSError, ValueError, HTTP errors): all mean "cannot"
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0][:300]
        if local:
            bad = _bad_weights_file(Path(target))
            if bad is not None:
                raise ModelError(f"could not load the model folder {target}: its weights file {bad} cannot be read "
                                 f"({reason}): truncated or corrupt? Copy or save the model again") from e
            raise ModelError(f"could not load the model folder {target}: {reason}") from e
        where = ("the Hugging Face Hub is not reachable and it is not in the local Hugging Face cache" if not online
                 else f"fetching it from the Hugging Face Hub failed ({reason})")
        raise ModelError(
            f"could not load model {name!r}: it is not a local folder, and {where}. This machine may be offline "
            f"(or the id is misspelt): pass a local model folder, or `embedded` for the built-in "
            f"multilingual-e5-small."
        ) from e
    if missing and not allow_missing_weights:
        raise ModelError(missing_weights_message(name, missing))
    if max_seq_length is not None:
        limit = getattr(getattr(model[0], "auto_model", None), "config", None)
        limit = getattr(limit, "max_position_embeddings", None)
        if limit and max_seq_length > limit:
            raise UsageError(f"max_seq_length {max_seq_length} exceeds the model's {limit} positions ({name})")
        model.max_seq_length = max_seq_length
    return set_prefixes(model, query_prefix, passage_prefix)


@contextlib.contextmanager
def missing_weight_reports() -> Iterator[list[str]]:
    """While a model loads, collect the tensors transformers initialises at random because the checkpoint lacks
    them (its own loading report: `missing_keys` and size-mismatched keys), as '<source>: <tensor>' strings. An
    unused BERT-style `pooler.` is not counted: sentence-transformers pooling never reads it."""
    import transformers.modeling_utils as mu

    found: list[str] = []
    original = getattr(mu, "log_state_dict_report", None)
    if original is None:  # another transformers layout: nothing to hook (tests/test_reliability_inputs.py notices)
        yield found
        return

    def spy(*args: Any, **kwargs: Any) -> Any:
        info = kwargs.get("loading_info", args[3] if len(args) > 3 else None)
        keys = set(getattr(info, "missing_keys", ())) | {k[0] for k in getattr(info, "mismatched_keys", ())}
        source = kwargs.get("pretrained_model_name_or_path", args[1] if len(args) > 1 else "?")
        found.extend(f"{source}: {k}" for k in sorted(keys) if not k.startswith("pooler."))
        return original(*args, **kwargs)

    mu.log_state_dict_report = spy
    try:
        yield found
    finally:
        mu.log_state_dict_report = original


def missing_weights_message(name: str, missing: list[str]) -> str:
    """One line naming the missing tensors, grouped by layer ('encoder.layer.2.* (16 tensors)')."""
    groups: dict[str, int] = {}
    for entry in missing:
        key = entry.rsplit(": ", 1)[-1]
        parts = key.split(".")
        head = ".".join(parts[:3]) + ".*" if len(parts) > 3 and parts[2].isdigit() else key
        groups[head] = groups.get(head, 0) + 1
    shown = ", ".join(f"{g} ({n} tensors)" if n > 1 else g for g, n in list(groups.items())[:6])
    more = f" and {len(groups) - 6} more" if len(groups) > 6 else ""
    return (f"model {name}: its weights lack {len(missing)} tensor(s) its config asks for: {shown}{more}. They "
            f"would be initialised at random (a different model on every load): fix config.json (e.g. "
            f"num_hidden_layers) or the weight files, or pass --allow-missing-weights (allow_missing_weights=True) "
            f"to accept random tensors")


def describe_model(model: SentenceTransformer, name: str) -> dict[str, Any]:
    """What `hybridbatch model info` prints: architecture, dimension, lengths, prompts, size, location."""
    first = model[0]
    auto = getattr(first, "auto_model", None)
    config = getattr(auto, "config", None)
    arch = (getattr(config, "architectures", None) or [type(auto).__name__ if auto is not None else "?"])[0]
    target = resolve_model(name) if name.lower() not in EMBEDDED_ALIASES else str(embedded_model_dir())
    location = target if Path(target).is_dir() else f"Hugging Face Hub id {target} (local HF cache)"
    pooling = [m for m in model if type(m).__name__ == "Pooling"]
    return {
        "name": name,
        "location": location,
        "architecture": arch,
        "modules": [type(m).__name__ for m in model],
        "pooling": getattr(pooling[0], "pooling_mode", None) if pooling else None,
        "dimension": model.get_embedding_dimension(),
        "max_seq_length": model.max_seq_length,
        "max_positions": getattr(config, "max_position_embeddings", None),
        "layers": getattr(config, "num_hidden_layers", None),
        "vocab_size": getattr(config, "vocab_size", None),
        "prompts": dict(model.prompts or {}),
        "parameters": sum(p.numel() for p in model.parameters()),
        "embedded_build": read_marker(Path(target)) if Path(target).is_dir() else None,
    }
