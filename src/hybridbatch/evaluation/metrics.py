"""Pure, vectorised ranking metrics (ranx style) computed from the 1-based ranks of the relevant items only.

Why ranks: every metric used by LAReQA (AP over the full ranking, AP@k, R@k, nDCG@k, MRR@k, rank distance) depends
only on where the relevant items land, so a block of queries is reduced to a small `(queries, max_relevant)` int
array and the (large) score matrix is never sorted.

Conventions
- `relevant`: int array `(q, R)` of candidate indices, padded with -1 (a query may have fewer relevant items, or none).
- `ranks`: int array `(q, R)` of 1-based ranks aligned with `relevant`; 0 where `relevant` is -1.
- **Tie rule (strict / optimistic)**: a candidate ranks above a relevant item only when its score is *strictly*
  higher. Relevant items tied with each other take consecutive ranks (higher score first, then column order), so the
  ranks of one query are always distinct and equal those of a real permutation that puts relevant items first
  within any tie. Without ties this is the ordinary rank.
- A query with no relevant item gets NaN for every metric (the caller leaves it out and counts it).
"""

from __future__ import annotations

import numpy as np

TIE_RULE = (
    "strict (optimistic): a candidate ranks above a relevant one only when its score is strictly higher; "
    "relevant items tied with each other take consecutive ranks"
)


def count_above(scores: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """`out[i, j]` = number of entries of `scores[i]` strictly greater than `thresholds[i, j]`.

    One vectorised comparison pass per threshold column (numpy's SIMD compare + count is faster on 2 cores than
    sorting the rows or a batched searchsorted; see benchmarks/bench_eval.py)."""
    scores = np.asarray(scores)
    thresholds = np.asarray(thresholds, dtype=scores.dtype)
    out = np.empty(thresholds.shape, dtype=np.int64)
    for j in range(thresholds.shape[1]):
        out[:, j] = np.count_nonzero(scores > thresholds[:, j, None], axis=1)
    return out


def order_among(rel_scores: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """1-based position of each relevant item among its query's relevant items (higher score first, ties by column
    order); 0 where not valid."""
    key = np.where(valid, -rel_scores.astype(np.float64), np.inf)
    order = np.argsort(key, axis=1, kind="stable")
    pos = np.empty_like(order)
    np.put_along_axis(pos, order, np.arange(1, order.shape[1] + 1)[None, :].repeat(order.shape[0], 0), axis=1)
    return np.where(valid, pos, 0)


def ranks_from_counts(nonrel_above: np.ndarray, rel_scores: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Ranks under the strict tie rule from the number of *non-relevant* candidates strictly above each relevant
    item plus its position among the relevant items."""
    return np.where(valid, nonrel_above + order_among(rel_scores, valid), 0).astype(np.int64)


def relevant_ranks(scores: np.ndarray, relevant: np.ndarray) -> np.ndarray:
    """1-based ranks `(q, R)` of the relevant candidates of each query in `scores` `(q, n)` (strict tie rule)."""
    scores = np.asarray(scores)
    relevant = np.asarray(relevant, dtype=np.int64)
    if relevant.ndim == 1:
        relevant = relevant[:, None]
    valid = relevant >= 0
    safe = np.where(valid, relevant, 0)
    rel_scores = np.take_along_axis(scores, safe, axis=1)
    masked = scores.astype(np.float32 if scores.dtype == np.float16 else scores.dtype, copy=True)
    rows = np.nonzero(valid)[0]
    masked[rows, relevant[valid]] = -np.inf  # relevant items never count as "non-relevant above"
    thresholds = np.where(valid, rel_scores, np.inf)
    nonrel = count_above(masked, thresholds)
    return ranks_from_counts(nonrel, rel_scores, valid)


def _sorted_ranks(ranks: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ranks sorted ascending with absent (0) pushed to the end, their 1-based hit index, and relevant counts."""
    r = _as2d(ranks)
    big = np.iinfo(np.int64).max
    s = np.sort(np.where(r > 0, r, big), axis=1)
    present = s != big
    hits = np.cumsum(present, axis=1)
    return np.where(present, s, 0), np.where(present, hits, 0), present.sum(axis=1)


def _nan_where_empty(values: np.ndarray, n_rel: np.ndarray) -> np.ndarray:
    return np.where(n_rel > 0, values, np.nan)


def _as2d(ranks: np.ndarray) -> np.ndarray:
    """A 1-D ranks array means one relevant item per query."""
    r = np.asarray(ranks, dtype=np.int64)
    return r[:, None] if r.ndim == 1 else r


def n_relevant(ranks: np.ndarray) -> np.ndarray:
    """Number of relevant items per query."""
    return (_as2d(ranks) > 0).sum(axis=1)


def average_precision(ranks: np.ndarray, k: int | None = None) -> np.ndarray:
    """AP per query over the full ranking (`k=None`, LAReQA) or AP@k (XTREME-R mAP@20: precision at each hit within
    the top k, divided by min(#relevant, k))."""
    s, hits, n = _sorted_ranks(ranks)
    with np.errstate(divide="ignore", invalid="ignore"):
        prec = np.where(s > 0, hits / np.maximum(s, 1), 0.0)
    if k is not None:
        prec = np.where((s > 0) & (s <= k), prec, 0.0)
        denom = np.minimum(n, k)
    else:
        denom = n
    with np.errstate(divide="ignore", invalid="ignore"):
        return _nan_where_empty(prec.sum(axis=1) / np.maximum(denom, 1), n)


def recall_at(ranks: np.ndarray, k: int) -> np.ndarray:
    """Share of the query's relevant items found in the top k (R@1 with one relevant item is hit@1)."""
    s, _, n = _sorted_ranks(ranks)
    found = ((s > 0) & (s <= k)).sum(axis=1)
    return _nan_where_empty(found / np.maximum(n, 1), n)


def ndcg_at(ranks: np.ndarray, k: int) -> np.ndarray:
    """nDCG@k with binary gains and log2 discount; ideal DCG puts all min(#relevant, k) items first."""
    s, _, n = _sorted_ranks(ranks)
    gains = np.where((s > 0) & (s <= k), 1.0 / np.log2(np.maximum(s, 1) + 1.0), 0.0).sum(axis=1)
    disc = np.concatenate([[0.0], np.cumsum(1.0 / np.log2(np.arange(2, k + 2)))])
    ideal = disc[np.minimum(n, k)]
    with np.errstate(divide="ignore", invalid="ignore"):
        return _nan_where_empty(gains / np.where(ideal > 0, ideal, 1.0), n)


def mrr_at(ranks: np.ndarray, k: int) -> np.ndarray:
    """Reciprocal rank of the first relevant item if it is within the top k, else 0."""
    s, _, n = _sorted_ranks(ranks)
    first = s[:, 0]
    return _nan_where_empty(np.where((first > 0) & (first <= k), 1.0 / np.maximum(first, 1), 0.0), n)


def rank_distance(ranks: np.ndarray) -> np.ndarray:
    """Language bias of one query (Huang et al. 2023): max minus min rank of its relevant copies. NaN with fewer than
    two relevant items (no spread to measure)."""
    r = _as2d(ranks)
    present = r > 0
    n = present.sum(axis=1)
    hi = np.where(present, r, 0).max(axis=1)
    lo = np.where(present, r, np.iinfo(np.int64).max).min(axis=1)
    return np.where(n >= 2, (hi - lo).astype(np.float64), np.nan)


def all_metrics(ranks: np.ndarray) -> dict[str, np.ndarray]:
    """Every per-query metric the LAReQA report needs, from one ranks array."""
    return {
        "ap": average_precision(ranks),
        "ap20": average_precision(ranks, 20),
        "r1": recall_at(ranks, 1),
        "r10": recall_at(ranks, 10),
        "ndcg10": ndcg_at(ranks, 10),
        "mrr10": mrr_at(ranks, 10),
        "rank_distance": rank_distance(ranks),
    }
