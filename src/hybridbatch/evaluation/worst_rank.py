"""Where the worst rank comes from: pure, vectorised figures on a query's relevant copies in the Multi pool.

The rank distance (metrics.rank_distance) is worst minus best rank; the own-language measures (preference.py) move
the best one. These look at the other end:

- **Max@R** (`max_rank`): the worst rank of any relevant copy, i.e. how deep one must read to retrieve every parallel
  gold item (Hong et al. 2026, arXiv 2604.05684, use it as their headline cross-lingual figure; it is scikit-learn's
  `coverage_error` per query). Lower is better.
- **Complete@k** (`complete_at`): 1 when every relevant copy is in the top k, else 0; its mean is the share of queries
  fully served by a top k. Higher is better.
- **Worst pool** (`worst_copy`, `worst_pool_table`): which copy (for the Multi pool: which pool language) holds the
  worst rank, tabulated as (query language x worst pool language) shares and the mean Max@R per worst pool language.

Ranks follow metrics.py: `(queries, R)`, 1-based, 0 = absent; a query without a relevant item gets NaN. Under ties
the `expected_*` functions give the exact expectation over a uniformly random order within groups of equal scores
(the evaluation's default tie rule, metrics.TIE_MODES), from the last group holding a relevant item: `b` items above
it, `n` items in it, `r` of them relevant.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "COMPLETE_K",
    "WORST_METRICS",
    "complete_at",
    "expected_complete_at",
    "expected_max_rank",
    "max_rank",
    "worst_copy",
    "worst_pool_table",
]

COMPLETE_K = 10
# per-query columns of per_query.npz beside the rank distance (every row; reported for the Multi pool)
WORST_METRICS = ("max_rank", f"complete{COMPLETE_K}")


def _present(ranks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r = np.asarray(ranks, dtype=np.int64)
    r = r[:, None] if r.ndim == 1 else r
    return r, r > 0


def max_rank(ranks: np.ndarray) -> np.ndarray:
    """Max@R per query: the worst rank of its relevant items, NaN without one.

    MaxR_i = max_{j: rank_ij > 0} rank_ij  (mean over queries = the reported Max@R; lower is better)."""
    r, present = _present(ranks)
    return np.where(present.any(axis=1), np.where(present, r, 0).max(axis=1).astype(np.float64), np.nan)


def complete_at(ranks: np.ndarray, k: int) -> np.ndarray:
    """Complete@k per query: 1.0 when every relevant item is in the top k, else 0.0; NaN without one.

    Complete@k_i = [MaxR_i <= k] = prod_j [rank_ij <= k]  (mean over queries = share of queries complete in the top k;
    equal to [R@k_i = 1])."""
    m = max_rank(ranks)
    return np.where(np.isnan(m), np.nan, (m <= k).astype(np.float64))


def worst_copy(ranks: np.ndarray) -> np.ndarray:
    """Column index of each query's worst-ranked relevant item, -1 without one.

    worst_i = argmax_{j: rank_ij > 0} rank_ij. In the evaluation's Multi rows column j is pool language j, so this
    is the pool language of the worst copy (ranks under the strict rule: relevant items tied with each other keep
    their column order, metrics.order_among)."""
    r, present = _present(ranks)
    return np.where(present.any(axis=1), np.argmax(np.where(present, r, 0), axis=1), -1).astype(np.int64)


def expected_max_rank(b: np.ndarray, n: np.ndarray, r: np.ndarray) -> np.ndarray:
    """E[Max@R] when the last group holding relevant items (b above, n items, r relevant) is in random order: the
    largest of r positions drawn without replacement from 1..n has mean r (n + 1) / (r + 1), so

    E[MaxR] = b + r (n + 1) / (r + 1)."""
    b, n, r = (np.asarray(x, dtype=np.float64) for x in (b, n, r))
    with np.errstate(invalid="ignore"):
        return b + r * (n + 1) / (r + 1)


def expected_complete_at(b: np.ndarray, n: np.ndarray, r: np.ndarray, k: int) -> np.ndarray:
    """E[Complete@k] for the same last group: every relevant item is in the top k iff the group's r relevant items
    all land in its first m = clip(k - b, 0, n) positions (earlier groups end at rank <= b < k), so

    P = C(m, r) / C(n, r) = prod_{i=0..r-1} (m - i) / (n - i)."""
    b, n, r = (np.asarray(x, dtype=np.float64) for x in (b, n, r))
    ok = np.isfinite(b) & (r >= 1)
    b, n, r = (np.where(ok, x, 0.0) for x in (b, n, r))
    m = np.clip(k - b, 0, n)
    i = np.arange(int(max(r.max(initial=1), 1)), dtype=np.float64)[None, :]
    factors = np.where(i < r[:, None], np.clip(m[:, None] - i, 0, None) / np.maximum(n[:, None] - i, 1), 1.0)
    return np.where(ok, factors.prod(axis=1), np.nan)


def worst_pool_table(qlang: np.ndarray, worst: np.ndarray, worst_rank: np.ndarray, n_languages: int
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Where the worst rank comes from, over the Multi rows (one per query with a relevant copy; `worst` -1 left out):

    - share `(L, L)`: share[x, p] = #{i: lang(q_i) = x, worst_i = p} / #{i: lang(q_i) = x}  (rows sum to 1);
    - pool_share `(L,)`: mean over query languages of share[:, p] (macro, like every Multi figure);
    - mean_worst `(L,)`: mean Max@R of the queries whose worst copy is in pool p (NaN where none is):
      mean_worst[p] = sum_{i: worst_i = p} MaxR_i / #{i: worst_i = p}."""
    q = np.asarray(qlang, dtype=np.int64)
    w = np.asarray(worst, dtype=np.int64)
    m = np.asarray(worst_rank, dtype=np.float64)
    ok = (w >= 0) & ~np.isnan(m)
    q, w, m = q[ok], w[ok], m[ok]
    counts = np.zeros((n_languages, n_languages))
    np.add.at(counts, (q, w), 1.0)
    per_q = counts.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(per_q > 0, counts / np.maximum(per_q, 1), np.nan)
        n_p = np.bincount(w, minlength=n_languages)
        mean_worst = np.where(n_p > 0, np.bincount(w, weights=m, minlength=n_languages) / np.maximum(n_p, 1), np.nan)
    rows = ~np.isnan(share).all(axis=1)
    pool_share = share[rows].mean(axis=0) if rows.any() else np.full(n_languages, np.nan)
    return share, pool_share, mean_worst
