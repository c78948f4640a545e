"""Exact inner-product scoring, NumPy or FAISS: per query, pool segment and relevant item, how many non-relevant
candidates score strictly above (and exactly equal to) the relevant item.

Why two backends: NumPy scores query blocks against the whole pool (the default, `auto`); FAISS (`IndexFlatIP`,
exact) range-searches only the candidates that could outrank a relevant item (an independent implementation to
cross-check against; slower in our measurements, and it holds a copy of the pool). Both return identical ranks:
float32 scores decide every comparison that they can decide for certain, and the few within the float32 error bound
of a relevant item's score (`tie_band`) are settled with exact float64 scores (`exact_pair_scores`), so results do
not depend on the backend, block size, thread count or BLAS. Query blocks are sized so that the working memory stays
under `block_mib` whatever the pool size (docs/EVALUATION.md, "Resource bounds").
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np

from hybridbatch.errors import UsageError
from hybridbatch.evaluation.preference import (
    block_language_counts,
    language_onehot,
    topk_language_counts_from_embeddings,
)

Backend = Literal["auto", "numpy", "faiss"]
BACKENDS = ("auto", "numpy", "faiss")
# backend="auto" is NumPy at every pool size: with query blocks sized to `block_mib` its memory is bounded like
# FAISS's, and it measured 2-4x faster at 1x-16x the XQuAD-R pool (benchmarks/results/eval_scale.json).
FAISS_AUTO_THRESHOLD = None
DEFAULT_CHUNK = 512  # at most this many queries scored at once (512 x 13014 float32 = 27 MB)
DEFAULT_BLOCK_MIB = 64.0  # working-memory budget of one query block; bounds the block for large pools
# peak bytes per (query, candidate) of a block: numpy = float32 score + comparison masks; faiss = worst case of a
# range-search result (score, id, FAISS's copy of both, query index, segment, masks) when every candidate comes back
BYTES_PER_SCORE = {"numpy": 8, "faiss": 48}  # numpy needs 6 (4 + 2 masks) + near-tie indices (<= block / 8)
EXACT_BLOCK = 1024  # pairs per exact re-scoring step: 1024 x dim x 24 bytes (9 MiB at dim 384), see exact_mib


def check_backend(backend: str) -> None:
    """The one check of a scoring backend's name."""
    if backend not in BACKENDS:
        raise UsageError(f"--backend must be auto, numpy or faiss, not {backend!r}")


def choose_backend(backend: str, pool_size: int) -> str:
    """The backend to use: 'numpy' or 'faiss' as asked; 'auto' is NumPy (see FAISS_AUTO_THRESHOLD)."""
    check_backend(backend)
    return "numpy" if backend == "auto" else backend


def tie_band(queries: np.ndarray, pool: np.ndarray) -> float:
    """How far apart two float32 scores of one query must be for their order to be certain.

    A float32 dot product of dimension d, summed in any order with or without FMA, is within
    gamma_d * |q| * |c| of the exact value (gamma_d = d u / (1 - d u), u = 2^-24; Higham 2002, sec. 3.1; Cauchy-Schwarz
    bounds the sum of |q_i c_i|). Comparing two scores doubles it; 8 u |q| |c| more covers rounding the thresholds to
    float32. For normalised 384-d embeddings this is 4.7e-5."""
    if not len(queries) or not len(pool):
        return 0.0
    d = queries.shape[1]
    u = 2.0**-24
    gamma = d * u / (1 - d * u)
    qn = float(np.sqrt(np.max(np.einsum("ij,ij->i", queries, queries, dtype=np.float64))))
    cn = float(np.sqrt(np.max(np.einsum("ij,ij->i", pool, pool, dtype=np.float64))))
    return (2 * gamma * 1.01 + 8 * u) * qn * cn


def exact_pair_scores(queries: np.ndarray, qi: np.ndarray, pool: np.ndarray, ci: np.ndarray) -> np.ndarray:
    """`queries[qi[k]] . pool[ci[k]]` in float64 for each pair k. Each product of two float32 numbers is exact in
    float64 and each row is summed in one fixed order (numpy's pairwise sum over a contiguous row), so the value
    depends only on the two vectors: identical vectors get identical scores whatever backend, block size, thread
    count or BLAS computed the float32 scores. Memory: `EXACT_BLOCK` pairs at a time."""
    qi = np.asarray(qi, dtype=np.int64)
    ci = np.asarray(ci, dtype=np.int64)
    out = np.empty(len(qi), dtype=np.float64)
    for s in range(0, len(qi), EXACT_BLOCK):
        x = queries[qi[s : s + EXACT_BLOCK]].astype(np.float64)
        x *= pool[ci[s : s + EXACT_BLOCK]].astype(np.float64)
        out[s : s + EXACT_BLOCK] = x.sum(axis=1)
    return out


def relevant_scores(queries: np.ndarray, pool: np.ndarray, relevant: np.ndarray) -> np.ndarray:
    """Exact (float64, `exact_pair_scores`) inner product of each query with each of its relevant candidates; -inf
    where `relevant` is -1."""
    relevant = np.asarray(relevant, dtype=np.int64)
    valid = relevant >= 0
    rows, cols = np.nonzero(valid)
    out = np.full(relevant.shape, -np.inf, dtype=np.float64)
    out[rows, cols] = exact_pair_scores(queries, rows, pool, relevant[rows, cols])
    return out


def block_queries(pool_size: int, backend: str, chunk_size: int = DEFAULT_CHUNK,
                  block_mib: float = DEFAULT_BLOCK_MIB) -> int:
    """Queries per scoring block: at most `chunk_size`, and few enough that one block's working memory
    (`BYTES_PER_SCORE[backend]` bytes per query x candidate) stays under `block_mib` MiB; at least 1 (a pool so big
    that one query's row exceeds `block_mib` takes one row: the bound is then that row)."""
    if chunk_size < 1:
        raise UsageError(f"chunk_size must be >= 1, not {chunk_size}")
    per_query = max(1, pool_size) * BYTES_PER_SCORE[backend]
    return max(1, min(int(chunk_size), int(block_mib * 2**20 // per_query)))


def segment_counts(
    queries: np.ndarray,
    pool: np.ndarray,
    relevant: np.ndarray,
    bounds: Sequence[int],
    *,
    backend: str = "numpy",
    chunk_size: int = DEFAULT_CHUNK,
    block_mib: float = DEFAULT_BLOCK_MIB,
    return_ties: bool = False,
    topk: tuple[np.ndarray, int, int] | None = None,
) -> tuple[np.ndarray, ...]:
    """For each query i, pool segment p (`bounds[p]:bounds[p+1]`, e.g. one language) and relevant item j: the
    number of *non-relevant* candidates of segment p whose score is strictly above relevant item j's score.

    Returns `(counts (q, P, R) int32, rel_scores (q, R) float64 exact scores, -inf where padded)`. These two
    arrays hold every rank the LAReQA protocol needs: rank of j in pool p = counts[i, p, j] + its order among
    the relevant items in p, and in the union the counts summed over p. "Above" is decided on exact scores
    (float32 where it is certain, `exact_pair_scores` within `tie_band`), so the counts are the same on both
    backends and for any block size. Queries are processed `block_queries(...)` at a time so working memory
    stays under `block_mib` MiB plus the inputs and outputs.

    `return_ties=True` adds a third array `(q, P, R) int32`: the non-relevant candidates of segment p whose exact
    score *equals* relevant item j's (what `metrics.tie_metrics` needs for the expected / pessimistic tie rules).

    `topk=(cand_lang, n_languages, k)` adds, last, each query's expected language counts in its top k of the whole
    pool `(q, n_languages)` (`preference.block_language_counts`), read off the same score block as the ranks on NumPy,
    so each block is scored once (FAISS keeps no score block: there it is one extra matrix product per block)."""
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    pool = np.ascontiguousarray(pool, dtype=np.float32)
    relevant = np.asarray(relevant, dtype=np.int64)
    bounds = list(bounds)
    n_q, n_r = relevant.shape
    n_p = len(bounds) - 1
    counts = np.zeros((n_q, n_p, n_r), dtype=np.int32)
    ties = np.zeros((n_q, n_p, n_r), dtype=np.int32)
    rel_all = np.full((n_q, n_r), -np.inf, dtype=np.float64)
    backend = choose_backend(backend, len(pool))
    top = None
    if topk is not None:
        cand_lang, n_languages, k = topk
        top = (language_onehot(np.asarray(cand_lang, dtype=np.int64), n_languages), k,
               np.zeros((n_q, n_languages), dtype=np.float64))
    out = (counts, rel_all) + ((ties,) if return_ties else ()) + ((top[2],) if top else ())
    if n_q == 0 or len(pool) == 0:
        return out
    band = tie_band(queries, pool)
    step = block_queries(len(pool), backend, chunk_size, block_mib)
    index = None
    if backend == "faiss":
        import faiss

        index = faiss.IndexFlatIP(pool.shape[1])
        index.add(pool)
    for a in range(0, n_q, step):
        b = min(a + step, n_q)
        rel = relevant[a:b]
        rows, cols = np.nonzero(rel >= 0)
        rs = np.full(rel.shape, -np.inf, dtype=np.float64)
        rs[rows, cols] = exact_pair_scores(queries, a + rows, pool, rel[rows, cols])
        if backend == "numpy":
            _numpy_counts(queries, a, b, pool, rel, rs, bounds, band, counts, block_mib, ties, top)
        else:
            counts[a:b], ties[a:b] = _faiss_counts(index, queries, a, b, pool, rel, rs, bounds, band)
            if top:
                top[2][a:b] = topk_language_counts_from_embeddings(queries[a:b], pool, topk[0], topk[1], top[1])
        rel_all[a:b] = rs
    return out


def _settle(queries: np.ndarray, qrows: np.ndarray, pool: np.ndarray, cands: np.ndarray, thr: np.ndarray
            ) -> tuple[np.ndarray, np.ndarray]:
    """Which near-tie candidates are strictly above / exactly tied with their relevant item: exact scores against
    exact thresholds."""
    exact = exact_pair_scores(queries, qrows, pool, cands)
    return exact > thr, exact == thr


def exact_mib(dim: int) -> float:
    """Memory of one exact re-scoring step (`exact_pair_scores`): float32 gathers and float64 copies of
    `EXACT_BLOCK` query and candidate vectors. A constant on top of `block_mib`."""
    return EXACT_BLOCK * dim * 24 / 2**20


def _numpy_counts(queries, a, b, pool, rel, rs, bounds, band, counts, block_mib: float = DEFAULT_BLOCK_MIB,
                  ties: np.ndarray | None = None, top: tuple[np.ndarray, int, np.ndarray] | None = None) -> None:
    """One block on NumPy: float32 scores against the whole pool; candidates more than `band` above a relevant item
    count at once, those within `band` of it are settled exactly. Peak per (query, candidate): the float32 score
    (4 B) + two comparison masks (2 B); near-tie index pairs are handled in row ranges of at most
    `block_mib / 8` MiB of indices, so even a degenerate model (every score within the band) stays in budget.
    `top` (onehot, k, out): the top-k language counts of the same scores, taken first, a quarter of the rows at a
    time (its temporaries stay within the masks' budget)."""
    valid = rel >= 0
    safe = np.where(valid, rel, 0)
    scores = queries[a:b] @ pool.T
    if top is not None:
        onehot, k, out = top
        step = max(1, len(scores) // 4)
        for s in range(0, len(scores), step):
            out[a + s:a + s + step] = block_language_counts(scores[s:s + step], onehot, k)
    rs32 = np.take_along_axis(scores, safe, axis=1)
    rows, cols = np.nonzero(valid)
    scores[rows, rel[rows, cols]] = -np.inf  # relevant items never count as "non-relevant above"
    hi = np.where(valid, rs32 + np.float32(band), np.inf).astype(np.float32)
    lo = np.where(valid, rs32 - np.float32(band), np.inf).astype(np.float32)
    del rs32
    bounds_arr = np.asarray(bounds)
    cap = max(pool.shape[0], int(block_mib * 2**20 / 8 / 16))  # near pairs per step (2 int64 indices each)
    for j in range(rel.shape[1]):
        if not valid[:, j].any():
            continue
        h = hi[:, j, None]
        for p in range(len(bounds) - 1):
            counts[a:b, p, j] = np.count_nonzero(scores[:, bounds[p] : bounds[p + 1]] > h, axis=1)
        near = np.count_nonzero(scores > lo[:, j, None], axis=1) - counts[a:b, :, j].sum(axis=1)
        if not near.any():
            continue
        cum = np.cumsum(near)
        start = 0
        while start < len(near):  # contiguous row ranges (views, no copy) with at most `cap` near pairs
            base = cum[start - 1] if start else 0
            end = max(start + 1, int(np.searchsorted(cum, base + cap, side="right")))
            if cum[end - 1] > base:
                blk = scores[start:end]
                m = blk > lo[start:end, j, None]
                m &= blk <= hi[start:end, j, None]
                r_, c_ = np.nonzero(m)
                del m
                qr = start + r_
                above, equal = _settle(queries, a + qr, pool, c_, rs[qr, j])
                seg = np.searchsorted(bounds_arr, c_, side="right") - 1
                np.add.at(counts, (a + qr[above], seg[above], j), 1)
                if ties is not None and equal.any():
                    np.add.at(ties, (a + qr[equal], seg[equal], j), 1)
            start = end


def _faiss_counts(index, queries, a, b, pool, rel, rs, bounds, band) -> tuple[np.ndarray, np.ndarray]:
    """One block on FAISS: `IndexFlatIP.range_search` (scores strictly above the radius) returns only candidates
    that could be above the lowest relevant score of the block, so memory follows how good the model is; the same
    sure / near-tie split as on NumPy."""
    q = queries[a:b]
    valid = rel >= 0
    n, n_r = rel.shape
    n_p = len(bounds) - 1
    out = np.zeros((n, n_p, n_r), dtype=np.int32)
    tied = np.zeros((n, n_p, n_r), dtype=np.int32)
    if not valid.any():
        return out, tied
    thr = np.where(valid, rs, np.inf).astype(np.float32)  # exact scores rounded: within u of exact
    radius = np.nextafter(np.float32(np.min(thr[valid]) - np.float32(band)), np.float32(-np.inf))
    lims, dist, ids = index.range_search(q, float(radius))
    qi = np.repeat(np.arange(n, dtype=np.int32), np.diff(lims).astype(np.int64))
    seg = (np.searchsorted(np.asarray(bounds), ids, side="right") - 1).astype(np.int32)
    nonrel = np.ones(len(ids), dtype=bool)
    for j in range(n_r):
        nonrel &= ids != rel[qi, j]
    for j in range(n_r):
        t = thr[qi, j]
        above = nonrel & (dist > t + np.float32(band))
        near = np.nonzero(nonrel & ~above & (dist > t - np.float32(band)))[0]
        equal = np.zeros(len(ids), dtype=bool)
        if len(near):
            up, eq = _settle(queries, a + qi[near], pool, ids[near], rs[qi[near], j])
            above[near[up]] = True
            equal[near[eq]] = True
        out[:, :, j] = np.bincount(qi[above].astype(np.int64) * n_p + seg[above], minlength=n * n_p).reshape(n, n_p)
        tied[:, :, j] = np.bincount(qi[equal].astype(np.int64) * n_p + seg[equal], minlength=n * n_p).reshape(n, n_p)
    return out, tied


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
