"""Pure, vectorised ranking metrics (ranx style) computed from the 1-based ranks of the relevant items only.

Why ranks: every metric used by LAReQA (AP over the full ranking, AP@k, R@k, nDCG@k, MRR@k, rank distance) depends
only on where the relevant items land, so a block of queries is reduced to a small `(queries, max_relevant)` int
array and the (large) score matrix is never sorted.

Conventions
- `relevant`: int array `(q, R)` of candidate indices, padded with -1 (a query may have fewer relevant items, or none).
- `ranks`: int array `(q, R)` of 1-based ranks aligned with `relevant`; 0 where `relevant` is -1.
- **Ties** (`TIE_MODES`): `expected` (the default) is the exact expected value of each metric when the items of every
  group of equal scores are put in uniformly random order (McSherry & Najork, ECIR 2008); `optimistic` puts the
  relevant items first within each tie (a candidate outranks a relevant item only when its score is strictly higher),
  `pessimistic` puts them last. Without ties the three are identical. The rank functions below (`ranks_from_counts`,
  `relevant_ranks`) give the optimistic ranks; `tie_metrics` computes every metric in any mode from the counts of
  non-relevant candidates strictly above and exactly tied with each relevant item.
- A query with no relevant item gets NaN for every metric (the caller leaves it out and counts it).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hybridbatch.errors import UsageError
from hybridbatch.evaluation.worst_rank import (
    COMPLETE_K,
    complete_at,
    expected_complete_at,
    expected_max_rank,
    max_rank,
)

TIE_MODES = ("expected", "optimistic", "pessimistic")
TIE_RULES = {
    "expected": "expected: every metric is its exact expected value under a uniformly random order within groups of "
                "equal scores (McSherry & Najork 2008); equal to the ordinary value when there are no ties",
    "optimistic": "strict (optimistic): a candidate ranks above a relevant one only when its score is strictly higher; "
                  "relevant items tied with each other take consecutive ranks",
    "pessimistic": "pessimistic: a candidate ranks above a relevant one when its score is higher or equal; relevant "
                   "items tied with each other take consecutive ranks",
}
TIE_RULE = TIE_RULES["optimistic"]


def check_ties(mode: str) -> str:
    """The one check of a tie rule's name; returns it."""
    if mode not in TIE_MODES:
        raise UsageError(f"--ties must be one of {', '.join(TIE_MODES)}, not {mode!r}")
    return mode


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
        "max_rank": max_rank(ranks),
        f"complete{COMPLETE_K}": complete_at(ranks, COMPLETE_K),
    }


# ---- ties ------------------------------------------------------------------------------------------------------------


def _tie_groups(above: np.ndarray, tied: np.ndarray, rel_scores: np.ndarray, valid: np.ndarray):
    """Per relevant item j of each query, the group of equal scores it sits in: `B` items strictly above the group,
    `H` of them relevant, `n` items in the group, `r` of them relevant (all as float64, 0 where not valid)."""
    s = np.where(valid, rel_scores.astype(np.float64), -np.inf)
    both = valid[:, :, None] & valid[:, None, :]
    rel_above = (both & (s[:, None, :] > s[:, :, None])).sum(axis=2)  # relevant items strictly above j
    r = (both & (s[:, None, :] == s[:, :, None])).sum(axis=2)  # relevant items tied with j (itself included)
    f = np.float64
    h = np.where(valid, rel_above, 0).astype(f)
    b = np.where(valid, above, 0).astype(f) + h
    n = np.where(valid, tied, 0).astype(f) + r
    return b, h, n, r.astype(f)


def _harmonic_gap(b: np.ndarray, m: np.ndarray) -> np.ndarray:
    """sum_{k=1..m} 1 / (b + k) = psi(b + m + 1) - psi(b + 1), exactly (no loop over a large tie group)."""
    from scipy.special import digamma

    return np.where(m > 0, digamma(b + m + 1.0) - digamma(b + 1.0), 0.0)


def _expected_precision_sum(b, h, n, r, m) -> np.ndarray:
    """Expected sum of precision over the relevant items of one tie group that land in its first `m` positions,
    divided by the group's `r` (so summing over the group's relevant items gives the group's share of AP x #rel).

    Position k of the group (rank b + k) holds a relevant item with probability r / n; given that, the expected
    number of relevant items before it is h + 1 + (k - 1)(r - 1)/(n - 1). Summed over k with the harmonic gap."""
    sg = _harmonic_gap(b, m)
    frac = np.where(n > 1, (r - 1) / np.maximum(n - 1, 1), 0.0)
    total = (r / np.maximum(n, 1)) * ((h + 1) * sg + frac * (m - (b + 1) * sg))
    return total / np.maximum(r, 1)


def _expected_metrics(above, tied, rel_scores, valid) -> dict[str, np.ndarray]:
    b, h, n, r = _tie_groups(above, tied, rel_scores, valid)
    n_rel = valid.sum(axis=1)
    nr = np.maximum(n_rel, 1).astype(np.float64)
    out: dict[str, np.ndarray] = {}
    ap = np.where(valid, _expected_precision_sum(b, h, n, r, n), 0.0).sum(axis=1) / nr
    out["ap"] = _nan_where_empty(ap, n_rel)
    m20 = np.clip(20 - b, 0, n)
    ap20 = np.where(valid, _expected_precision_sum(b, h, n, r, m20), 0.0).sum(axis=1)
    out["ap20"] = _nan_where_empty(ap20 / np.maximum(np.minimum(n_rel, 20), 1), n_rel)
    for k in (1, 10):  # each relevant item is in the top k with probability m / n
        mk = np.clip(k - b, 0, n)
        out[f"r{k}"] = _nan_where_empty(np.where(valid, mk / np.maximum(n, 1), 0.0).sum(axis=1) / nr, n_rel)
    # nDCG@10: each relevant item is equally likely at each of its group's positions
    k = 10
    disc = np.concatenate([[0.0], np.cumsum(1.0 / np.log2(np.arange(2, k + 2)))])
    m10 = np.clip(k - b, 0, n)
    lo = np.clip(b, 0, k).astype(np.int64)
    hi = np.clip(b + m10, 0, k).astype(np.int64)
    dcg = np.where(valid, (disc[hi] - disc[lo]) / np.maximum(n, 1), 0.0).sum(axis=1)
    ideal = disc[np.minimum(n_rel, k)]
    out["ndcg10"] = _nan_where_empty(dcg / np.where(ideal > 0, ideal, 1.0), n_rel)
    # MRR@10 and rank distance use the first (and last) group holding relevant items
    first = valid & (h == 0)
    fb, fn, fr = (np.where(first, x, np.inf).min(axis=1) for x in (b, n, r))
    out["mrr10"] = _nan_where_empty(_expected_first_rr(fb, fn, fr, k), n_rel)
    rel_below = _rel_below(rel_scores, valid)
    last = valid & (rel_below == 0)
    lb, ln, lr = (np.where(last, x, np.inf).min(axis=1) for x in (b, n, r))
    with np.errstate(invalid="ignore"):
        e_min = fb + (fn + 1) / (fr + 1)
    e_max = expected_max_rank(lb, ln, lr)
    out["rank_distance"] = np.where(n_rel >= 2, e_max - e_min, np.nan)
    out["max_rank"] = _nan_where_empty(e_max, n_rel)
    out[f"complete{COMPLETE_K}"] = _nan_where_empty(expected_complete_at(lb, ln, lr, COMPLETE_K), n_rel)
    return out


def _rel_below(rel_scores: np.ndarray, valid: np.ndarray) -> np.ndarray:
    s = np.where(valid, rel_scores.astype(np.float64), np.inf)
    both = valid[:, :, None] & valid[:, None, :]
    return (both & (s[:, None, :] < s[:, :, None])).sum(axis=2)


def _expected_first_rr(b: np.ndarray, n: np.ndarray, r: np.ndarray, k: int) -> np.ndarray:
    """E[1 / rank of the first relevant item, 0 beyond k] when the first group (b above it, n items, r relevant) is
    in random order: P(first relevant after position t) = C(n - t, r) / C(n, r)."""
    ok = np.isfinite(b)
    b, n, r = (np.where(ok, x, 0.0) for x in (b, n, r))
    t = np.arange(0, k + 1, dtype=np.float64)[None, :, None]  # positions 0..k within the group
    i = np.arange(int(max(r.max(initial=1), 1)), dtype=np.float64)[None, None, :]
    factors = np.clip((n[:, None, None] - t - i) / np.maximum(n[:, None, None] - i, 1), 0, None)
    factors = np.where(i < r[:, None, None], factors, 1.0)
    surv = factors.prod(axis=2)  # (q, k + 1): P(first relevant is after position t)
    p_at = surv[:, :-1] - surv[:, 1:]  # P(first relevant at position t = 1..k)
    rank = b[:, None] + np.arange(1, k + 1)[None, :]
    rr = np.where(rank <= k, p_at / rank, 0.0).sum(axis=1)
    return np.where(ok, rr, 0.0)


def tie_metrics(above: np.ndarray, tied: np.ndarray, rel_scores: np.ndarray, valid: np.ndarray,
                mode: str = "expected") -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Every per-query metric of `all_metrics` under tie rule `mode`, and the optimistic rank of the first relevant
    item. Inputs `(q, R)`: non-relevant candidates strictly above / exactly tied with each relevant item, the
    relevant items' (exact) scores, and which entries are real (`valid`)."""
    check_ties(mode)
    above = np.asarray(above, dtype=np.int64)
    tied = np.asarray(tied, dtype=np.int64)
    valid = np.asarray(valid, dtype=bool)
    rel_scores = np.asarray(rel_scores, dtype=np.float64)
    opt = ranks_from_counts(above, rel_scores, valid)
    first = np.where(valid, opt, np.iinfo(np.int64).max).min(axis=1, initial=np.iinfo(np.int64).max)
    first = np.where(valid.any(axis=1), first, 0)
    has_tie = (np.where(valid, tied, 0) > 0).any(axis=1)
    if mode == "optimistic" or not has_tie.any():
        return all_metrics(opt), first
    if mode == "pessimistic":
        return all_metrics(np.where(valid, opt + tied, 0)), first
    out = all_metrics(opt)  # rows without a tie keep their ordinary values, bit for bit
    exp = _expected_metrics(above[has_tie], tied[has_tie], rel_scores[has_tie], valid[has_tie])
    for k, v in exp.items():
        out[k][has_tie] = v
    return out, first


def tie_recall_at(above: np.ndarray, tied: np.ndarray, k: int, mode: str = "expected") -> np.ndarray:
    """R@k for one relevant item per query (single-language retrieval) under tie rule `mode`: in a group of
    `tied + 1` equal scores starting after `above` items, the item is in the top k with probability
    clip(k - above, 0, tied + 1) / (tied + 1)."""
    a = np.asarray(above, dtype=np.float64)[:, 0]
    t = np.asarray(tied, dtype=np.float64)[:, 0]
    if mode == "optimistic":
        return (a + 1 <= k).astype(np.float64)
    if mode == "pessimistic":
        return (a + t + 1 <= k).astype(np.float64)
    return np.clip(k - a, 0, t + 1) / (t + 1)


def nanmean(values: Any) -> float:
    """Mean over the values that are not NaN; NaN when none is (no warning, unlike `np.nanmean` on an empty slice).

    mean = sum(x_i for x_i not NaN) / #{x_i not NaN}
    """
    x = np.asarray(values, dtype=np.float64)
    x = x[~np.isnan(x)]
    return float(x.mean()) if len(x) else float("nan")
