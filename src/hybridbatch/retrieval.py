"""Encoding (with an on-disk cache) and exact inner-product scoring, NumPy or FAISS.

Why the cache: evaluating a sweep re-evaluates the same model/data/settings; encoding is the slow part on CPU, so
embeddings are keyed by everything that changes them (model weights, data, context on/off, prefix, max length, the
texts themselves) and re-used. Files are written atomically and verified on load (shape + checksum): a truncated or
stale file is detected and recomputed, never trusted.

Why two scoring backends: NumPy scores query blocks against the whole pool (fast for pools up to ~10^5); FAISS
(`IndexFlatIP`, exact) keeps memory bounded for huge pools by range-searching only the candidates that could outrank
a relevant item. Both return identical ranks (up to float rounding of scores within ~1e-6 of each other).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from .errors import UsageError
from .provenance import atomic_path, write_json

log = logging.getLogger(__name__)

Kind = Literal["query", "passage"]
Backend = Literal["auto", "numpy", "faiss"]
FAISS_AUTO_THRESHOLD = 200_000  # pool size from which backend="auto" picks FAISS
DEFAULT_CHUNK = 512  # queries scored at once: 512 x 13014 float32 = 27 MB


# ---- encoding --------------------------------------------------------------------------------------------------------


def prefix_for(model: Any, kind: Kind) -> str:
    """The query or passage prefix of `model` (models.prefixes: the model's own prompts, else E5 defaults)."""
    from .models import prefixes

    if kind not in ("query", "passage"):
        raise UsageError(f"kind must be 'query' or 'passage', not {kind!r}")
    qp, pp = prefixes(model)
    return qp if kind == "query" else pp


def encode_texts(
    model: Any,
    texts: Sequence[str],
    kind: Kind,
    batch_size: int = 64,
    show_progress: bool = False,
    progress: Callable[[int, int], None] | None = None,
    block: int = 1024,
) -> np.ndarray:
    """L2-normalised float32 embeddings `(len(texts), dim)`; each distinct text is encoded once. `progress(done,
    total)` is called after each block of distinct texts (the CLI drives a rich progress bar with it)."""
    prompt = prefix_for(model, kind) or None
    uniq, inverse = np.unique(np.asarray(list(texts), dtype=object), return_inverse=True)
    parts: list[np.ndarray] = []
    for start in range(0, len(uniq), block):
        part = [str(t) for t in uniq[start : start + block]]
        emb = model.encode(
            part, prompt=prompt, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True,
            show_progress_bar=show_progress,
        )
        parts.append(np.asarray(emb, dtype=np.float32))
        if progress is not None:
            progress(min(start + block, len(uniq)), len(uniq))
    if not parts:
        return np.zeros((0, model.get_sentence_embedding_dimension() or 0), dtype=np.float32)
    out = np.concatenate(parts)
    # normalise again in float32 so cosine == inner product even for models without a Normalize module
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    out /= np.where(norms > 0, norms, 1.0)
    return out[inverse.reshape(-1)]


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
    h = hashlib.sha256()
    for t in texts:
        b = t.encode("utf-8")
        h.update(len(b).to_bytes(8, "little"))
        h.update(b)
    return h.hexdigest()


class EmbeddingCache:
    """Embeddings on disk under `root`: `<key>.npy` plus `<key>.json` (the settings it was made with, shape, dtype,
    sha256 of the array bytes). `key` hashes the settings, so any change of model, data or setting is a miss."""

    def __init__(self, root: Path | str):
        self.root = Path(root)
        self.hits = 0
        self.misses = 0

    @staticmethod
    def key(meta: dict[str, Any]) -> str:
        return hashlib.sha256(json.dumps(meta, sort_keys=True, default=str).encode()).hexdigest()[:32]

    def paths(self, meta: dict[str, Any]) -> tuple[Path, Path]:
        k = self.key(meta)
        return self.root / f"{k}.npy", self.root / f"{k}.json"

    def load(self, meta: dict[str, Any]) -> np.ndarray | None:
        """The cached array, or None when missing, stale (settings differ) or corrupt (bad size/checksum)."""
        npy, side = self.paths(meta)
        if not npy.exists() or not side.exists():
            return None
        try:
            info = json.loads(side.read_text(encoding="utf-8"))
            if json.loads(json.dumps(meta, sort_keys=True, default=str)) != info.get("meta"):
                log.warning("embedding cache %s is stale (settings differ); recomputing", npy.name)
                return None
            arr = np.load(npy, allow_pickle=False)
            if list(arr.shape) != info["shape"] or str(arr.dtype) != info["dtype"]:
                raise ValueError("shape/dtype mismatch")
            if hashlib.sha256(np.ascontiguousarray(arr).tobytes()).hexdigest() != info["sha256"]:
                raise ValueError("checksum mismatch")
            return arr
        except (OSError, ValueError, KeyError, EOFError, json.JSONDecodeError) as e:
            log.warning("embedding cache %s is corrupt (%s); recomputing", npy.name, e)
            return None

    def save(self, meta: dict[str, Any], arr: np.ndarray) -> None:
        npy, side = self.paths(meta)
        arr = np.ascontiguousarray(arr)
        with atomic_path(npy) as tmp, open(tmp, "wb") as f:
            np.save(f, arr, allow_pickle=False)
        write_json(side, {
            "meta": meta, "shape": list(arr.shape), "dtype": str(arr.dtype),
            "sha256": hashlib.sha256(arr.tobytes()).hexdigest(),
        })

    def get_or_compute(self, meta: dict[str, Any], compute: Callable[[], np.ndarray]) -> np.ndarray:
        arr = self.load(meta)
        if arr is not None:
            self.hits += 1
            return arr
        self.misses += 1
        arr = compute()
        self.save(meta, arr)
        return arr


def encode_cached(
    model: Any,
    texts: Sequence[str],
    kind: Kind,
    *,
    cache: EmbeddingCache | None,
    identity: dict[str, Any] | None,
    settings: dict[str, Any],
    data_checksum: str = "",
    **encode_kw: Any,
) -> np.ndarray:
    """`encode_texts` through the cache (no cache: plain encode). `settings` names what the caller varied (context
    on/off, ...); prefix, max length, the model identity and a hash of the texts are always part of the key."""
    if cache is None:
        return encode_texts(model, texts, kind, **encode_kw)
    meta = {
        "model": identity or model_identity(model),
        "data_checksum": data_checksum,
        "kind": kind,
        "prefix": prefix_for(model, kind),
        "max_seq_length": getattr(model, "max_seq_length", None),
        "settings": settings,
        "n_texts": len(texts),
        "texts_sha256": texts_sha256(texts),
    }
    return cache.get_or_compute(meta, lambda: encode_texts(model, texts, kind, **encode_kw))


# ---- scoring ---------------------------------------------------------------------------------------------------------


def choose_backend(backend: str, pool_size: int) -> str:
    if backend == "auto":
        return "faiss" if pool_size >= FAISS_AUTO_THRESHOLD else "numpy"
    if backend not in ("numpy", "faiss"):
        raise UsageError(f"backend must be auto, numpy or faiss, not {backend!r}")
    return backend


def relevant_scores(queries: np.ndarray, pool: np.ndarray, relevant: np.ndarray) -> np.ndarray:
    """Inner product of each query with each of its relevant candidates; -inf where `relevant` is -1."""
    valid = relevant >= 0
    rel = pool[np.where(valid, relevant, 0)]  # (q, R, d)
    s = np.einsum("qd,qrd->qr", queries, rel, dtype=np.float32)
    return np.where(valid, s, -np.inf).astype(np.float32)


def segment_counts(
    queries: np.ndarray,
    pool: np.ndarray,
    relevant: np.ndarray,
    bounds: Sequence[int],
    *,
    backend: str = "numpy",
    chunk_size: int = DEFAULT_CHUNK,
) -> tuple[np.ndarray, np.ndarray]:
    """For each query i, pool segment p (`bounds[p]:bounds[p+1]`, e.g. one language) and relevant item j: the
    number of *non-relevant* candidates of segment p whose score is strictly above relevant item j's score.

    Returns `(counts (q, P, R) int32, rel_scores (q, R) float32)`. These two arrays hold every rank the LAReQA
    protocol needs: rank of j in pool p = counts[i, p, j] + its order among the relevant items in p, and in the union
    the counts summed over p. Queries are processed `chunk_size` at a time so memory stays bounded."""
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    pool = np.ascontiguousarray(pool, dtype=np.float32)
    relevant = np.asarray(relevant, dtype=np.int64)
    bounds = list(bounds)
    n_q, n_r = relevant.shape
    counts = np.zeros((n_q, len(bounds) - 1, n_r), dtype=np.int32)
    rel_all = np.empty((n_q, n_r), dtype=np.float32)
    backend = choose_backend(backend, len(pool))
    index = None
    if backend == "faiss":
        import faiss

        index = faiss.IndexFlatIP(pool.shape[1])
        index.add(pool)
    for a in range(0, n_q, chunk_size):
        b = min(a + chunk_size, n_q)
        rel = relevant[a:b]
        valid = rel >= 0
        if backend == "numpy":
            scores = queries[a:b] @ pool.T
            rs = np.take_along_axis(scores, np.where(valid, rel, 0), axis=1)
            rows = np.nonzero(valid)[0]
            scores[rows, rel[valid]] = -np.inf
            thr = np.where(valid, rs, np.inf).astype(np.float32)
            for p in range(len(bounds) - 1):
                seg = scores[:, bounds[p] : bounds[p + 1]]
                for j in range(n_r):
                    counts[a:b, p, j] = np.count_nonzero(seg > thr[:, j, None], axis=1)
        else:
            rs = relevant_scores(queries[a:b], pool, rel)
            counts[a:b] = _faiss_counts(index, queries[a:b], rel, rs, bounds)
        rel_all[a:b] = np.where(valid, rs, -np.inf)
    return counts, rel_all


def _faiss_counts(index: Any, q: np.ndarray, rel: np.ndarray, rs: np.ndarray, bounds: Sequence[int]) -> np.ndarray:
    """Exact counts from `IndexFlatIP.range_search` (which keeps results with score strictly above the radius): only
    candidates above the lowest relevant score of the block come back, so memory follows how good the model is."""
    valid = rel >= 0
    n, n_r = rel.shape
    n_p = len(bounds) - 1
    out = np.zeros((n, n_p, n_r), dtype=np.int32)
    if not valid.any():
        return out
    radius = float(np.min(rs[valid])) - 1e-5  # margin: FAISS and NumPy may round a dot product differently
    lims, dist, ids = index.range_search(q, radius)
    qi = np.repeat(np.arange(n), np.diff(lims).astype(np.int64))
    seg = np.searchsorted(np.asarray(bounds), ids, side="right") - 1
    nonrel = ~(ids[:, None] == rel[qi]).any(axis=1)
    thr = np.where(valid, rs, np.inf)
    for j in range(n_r):
        above = nonrel & (dist > thr[qi, j])
        out[:, :, j] = np.bincount(qi[above] * n_p + seg[above], minlength=n * n_p).reshape(n, n_p)
    return out


def search(
    queries: np.ndarray, pool: np.ndarray, k: int, *, backend: str = "numpy", chunk_size: int = DEFAULT_CHUNK
) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k by inner product: `(scores (q, k), indices (q, k))`, best first."""
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    pool = np.ascontiguousarray(pool, dtype=np.float32)
    k = min(k, len(pool))
    if choose_backend(backend, len(pool)) == "faiss":
        import faiss

        index = faiss.IndexFlatIP(pool.shape[1])
        index.add(pool)
        d, i = index.search(queries, k)
        return d, i.astype(np.int64)
    ds, is_ = [], []
    for a in range(0, len(queries), chunk_size):
        s = queries[a : a + chunk_size] @ pool.T
        top = np.argpartition(-s, k - 1, axis=1)[:, :k]
        ts = np.take_along_axis(s, top, axis=1)
        order = np.argsort(-ts, axis=1, kind="stable")
        is_.append(np.take_along_axis(top, order, axis=1))
        ds.append(np.take_along_axis(ts, order, axis=1))
    if not ds:
        return np.empty((0, k), np.float32), np.empty((0, k), np.int64)
    return np.concatenate(ds), np.concatenate(is_).astype(np.int64)
