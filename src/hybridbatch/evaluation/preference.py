"""Language-preference metrics beside rank distance: pure, vectorised functions on scores, top-k weights or ranks.

Rank distance (metrics.rank_distance) says how far apart a query's relevant copies land in the multilingual pool;
these say *which way* the ranking leans: towards the query's own language or not.

- Own-language share of the top k against the pool's share (`topk_language_counts`, `own_language_share`,
  `pool_language_share`, `language_preference`): retrievers prefer documents in the query language (Park & Lee,
  "Investigating Language Preference of Multilingual RAG Systems", Findings of ACL 2025, arXiv 2502.11175); a
  language-blind ranking puts the query's language in its top k about as often as the pool holds it, so
  preference = observed share / pool share is 1 without preference (or observed - pool share: 0).
- Own-language first (`own_language_first`, with `own_copy_share` its no-preference expectation): is the
  best-ranked relevant copy the one in the query's language? In the spirit of the Language Preference Rate of
  MLAIRE (Jang, Hong, Moon & Lim, arXiv 2605.07249, 2026), which measures query-language preference in pools of
  parallel relevant passages, as XQuAD-R's are. (We could read only its abstract: this formula is ours, not a
  transcription of theirs.)
- Language-stratified nDCG (`stratified_ndcg`, `ndcg_by_language`, `language_spread`, `own_language_gap`): nDCG@k
  of each candidate language's relevant copies within the merged ranking; under no preference every language gets
  the same expected value, so the spread between languages and the own-language gap measure the lean (the
  language-aware nDCG of MLAIRE is the idea; again the formula is ours).

Languages are integer codes 0..L-1 (`language_codes` turns labels into codes). Ranks follow metrics.py: 1-based,
`(queries, relevant)`, 0 = absent. Ties in scores at the top-k cut are shared: each of the m candidates tied at the
k-th score gets weight (k - #above) / m, the expected count under a uniformly random order within the tie (the
evaluation's tie rule, docs/EVALUATION.md). Cost: on the full XQuAD-R multilingual pool (13090 queries x 13014
candidates, dim 384) `topk_language_counts_from_embeddings` scores in blocks of `block` queries, never holding the
whole score matrix (measured in tests/test_preference.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def language_codes(*labels: Sequence[Any]) -> tuple[Any, ...]:
    """Integer codes for language label arrays over one shared, sorted vocabulary: `(vocab, codes_1, codes_2, ...)`
    with `vocab[codes_i[j]] == labels_i[j]`."""
    arrays = [np.asarray(a).astype(str) for a in labels]
    vocab, inverse = np.unique(np.concatenate(arrays), return_inverse=True)
    cuts = np.cumsum([len(a) for a in arrays])[:-1]
    return (vocab.tolist(), *np.split(inverse.astype(np.int64), cuts))


def language_onehot(codes: np.ndarray, n_languages: int) -> np.ndarray:
    """(candidates, languages) float32 indicator of each candidate's language code."""
    out = np.zeros((len(codes), n_languages), dtype=np.float32)
    out[np.arange(len(codes)), codes] = 1.0
    return out


def block_language_counts(scores: np.ndarray, onehot: np.ndarray, k: int) -> np.ndarray:
    """Expected language counts in the top k of each row of one block of scores (ties at the cut shared)."""
    kth = -np.partition(-scores, k - 1, axis=1)[:, k - 1]
    above = scores > kth[:, None]
    tied = scores == kth[:, None]
    share = (k - above.sum(axis=1)) / tied.sum(axis=1)
    weights = above.astype(np.float32) + tied * share[:, None].astype(np.float32)
    return (weights @ onehot).astype(np.float64)


def _check_k(k: int, n: int) -> None:
    if not 1 <= k <= n:
        raise ValueError(f"k must be in [1, {n}] (the number of candidates), got {k}")


def topk_language_counts(scores: np.ndarray, cand_lang: np.ndarray, n_languages: int, k: int = 10,
                         block: int = 1024) -> np.ndarray:
    """`(queries, L)`: expected number of each candidate language in each query's top k, from a finite score matrix
    `(queries, candidates)`; rows sum to k.

    count[i, p] = sum_{j: lang(j) = p} w_ij,  w_ij = 1 if s_ij > t_i,  (k - #{s_i > t_i}) / #{s_i = t_i} if s_ij = t_i,
    0 otherwise, with t_i the k-th largest score of row i. Blocked over queries (`block` rows at a time)."""
    scores = np.asarray(scores)
    cand_lang = np.asarray(cand_lang, dtype=np.int64)
    _check_k(k, scores.shape[1])
    onehot = language_onehot(cand_lang, n_languages)
    out = np.empty((scores.shape[0], n_languages), dtype=np.float64)
    for a in range(0, scores.shape[0], block):
        out[a:a + block] = block_language_counts(np.asarray(scores[a:a + block]), onehot, k)
    return out


def topk_language_counts_from_embeddings(queries: np.ndarray, candidates: np.ndarray, cand_lang: np.ndarray,
                                         n_languages: int, k: int = 10, block: int = 1024) -> np.ndarray:
    """`topk_language_counts` of the inner-product scores `queries @ candidates.T` (cosine for normalised
    embeddings), scored `block` queries at a time: memory O(block x candidates), the pool's size never squared."""
    queries = np.asarray(queries, dtype=np.float32)
    candidates = np.asarray(candidates, dtype=np.float32)
    _check_k(k, candidates.shape[0])
    onehot = language_onehot(np.asarray(cand_lang, dtype=np.int64), n_languages)
    out = np.empty((queries.shape[0], n_languages), dtype=np.float64)
    for a in range(0, queries.shape[0], block):
        out[a:a + block] = block_language_counts(queries[a:a + block] @ candidates.T, onehot, k)
    return out


def own_language_share(counts: np.ndarray, query_lang: np.ndarray) -> np.ndarray:
    """Share of each query's top k in its own language: own_i = count[i, lang(q_i)] / sum_p count[i, p]."""
    counts = np.asarray(counts, dtype=np.float64)
    q = np.asarray(query_lang, dtype=np.int64)
    return counts[np.arange(len(q)), q] / counts.sum(axis=1)


def pool_language_share(cand_lang: np.ndarray, query_lang: np.ndarray, n_languages: int) -> np.ndarray:
    """The own-language share a language-blind top k has in expectation: pool_i = #{j: lang(j) = lang(q_i)} / n."""
    cand_lang = np.asarray(cand_lang, dtype=np.int64)
    per_lang = np.bincount(cand_lang, minlength=n_languages) / len(cand_lang)
    return per_lang[np.asarray(query_lang, dtype=np.int64)]


def language_preference(observed: np.ndarray, expected: np.ndarray, kind: str = "ratio") -> np.ndarray:
    """Own-language preference: observed / expected ("ratio": 1 = none, 2 = twice the pool's share) or observed -
    expected ("difference": 0 = none). NaN where the ratio's expected share is 0."""
    observed = np.asarray(observed, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    if kind == "difference":
        return observed - expected
    if kind != "ratio":
        raise ValueError(f"kind must be 'ratio' or 'difference', not {kind!r}")
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(expected > 0, observed / np.where(expected > 0, expected, 1.0), np.nan)


def _present(ranks: np.ndarray, rel_lang: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r = np.asarray(ranks, dtype=np.int64)
    lang = np.asarray(rel_lang, dtype=np.int64)
    if r.ndim == 1:
        r, lang = r[:, None], lang[:, None]
    if r.shape != lang.shape:
        raise ValueError(f"ranks {r.shape} and rel_lang {lang.shape} must have one shape")
    return r, lang, r > 0


def own_language_first(ranks: np.ndarray, rel_lang: np.ndarray, query_lang: np.ndarray) -> np.ndarray:
    """1.0 when the best-ranked relevant copy of the query is in the query's language, else 0.0 (NaN without a
    relevant copy): first_i = [lang(argmin_{j present} rank_ij) = lang(q_i)]. Its mean over queries is the rate at
    which the query's own copy wins; `own_copy_share` is that rate under no language preference."""
    r, lang, present = _present(ranks, rel_lang)
    best = np.argmin(np.where(present, r, np.iinfo(np.int64).max), axis=1)
    first = lang[np.arange(len(r)), best]
    own = (first == np.asarray(query_lang, dtype=np.int64)).astype(np.float64)
    return np.where(present.any(axis=1), own, np.nan)


def own_copy_share(ranks: np.ndarray, rel_lang: np.ndarray, query_lang: np.ndarray) -> np.ndarray:
    """Share of the query's relevant copies in its own language: #{j present: lang_j = lang(q_i)} / #{j present}
    (XQuAD-R: 1/11), the chance of `own_language_first` when the copies' order ignores language. NaN without one."""
    r, lang, present = _present(ranks, rel_lang)
    own = (present & (lang == np.asarray(query_lang, dtype=np.int64)[:, None])).sum(axis=1)
    n = present.sum(axis=1)
    return np.where(n > 0, own / np.maximum(n, 1), np.nan)


def stratified_ndcg(ranks: np.ndarray, rel_lang: np.ndarray, n_languages: int, k: int = 10) -> np.ndarray:
    """`(queries, L)`: nDCG@k of each candidate language's relevant copies within the merged ranking (binary gains,
    log2 discount, ranks in the whole pool), NaN for a language with no relevant copy of the query:

        nDCG_ip = sum_{j: lang_j = p, rank_ij <= k} 1 / log2(1 + rank_ij)  /  sum_{m=1..min(R_ip, k)} 1 / log2(1 + m)

    with R_ip the query's relevant copies in language p. When all of a query's copies share one language this is
    metrics.ndcg_at."""
    r, lang, present = _present(ranks, rel_lang)
    gain = np.where(present & (r <= k), 1.0 / np.log2(1.0 + np.maximum(r, 1)), 0.0)
    onehot = (lang[:, :, None] == np.arange(n_languages)[None, None, :]) & present[:, :, None]  # (q, R, L)
    dcg = (gain[:, :, None] * onehot).sum(axis=1)
    n_rel = onehot.sum(axis=1)
    disc = np.concatenate([[0.0], np.cumsum(1.0 / np.log2(np.arange(2, k + 2)))])
    ideal = disc[np.minimum(n_rel, k)]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(n_rel > 0, dcg / np.where(ideal > 0, ideal, 1.0), np.nan)


def per_language_mean(values: np.ndarray, query_lang: np.ndarray, n_languages: int) -> np.ndarray:
    """Mean of per-query values (1-D, or `(queries, ...)`) over the queries of each query language, NaNs left out
    (NaN where a language has none): the first step of the project's macro averages (then a mean over languages)."""
    v = np.asarray(values, dtype=np.float64)
    q = np.asarray(query_lang, dtype=np.int64)
    out = np.full((n_languages, *v.shape[1:]), np.nan)
    for lang in range(n_languages):
        rows = v[q == lang]
        ok = ~np.isnan(rows)
        n = ok.sum(axis=0)
        with np.errstate(invalid="ignore"):
            out[lang] = np.where(n > 0, np.where(ok, rows, 0.0).sum(axis=0) / np.maximum(n, 1), np.nan)
    return out


def ndcg_by_language(strat: np.ndarray, query_lang: np.ndarray, n_languages: int) -> np.ndarray:
    """`(L, L)`: mean stratified nDCG of query language X (row) for candidate language p (column)."""
    return per_language_mean(strat, query_lang, n_languages)


def language_spread(matrix: np.ndarray) -> np.ndarray:
    """Per row, max minus min over its non-NaN entries (NaN for an all-NaN row): how unequal the candidate
    languages are served, e.g. on `ndcg_by_language` rows (0 = every language alike)."""
    m = np.asarray(matrix, dtype=np.float64)
    ok = ~np.isnan(m)
    hi = np.where(ok, m, -np.inf).max(axis=1)
    lo = np.where(ok, m, np.inf).min(axis=1)
    return np.where(ok.any(axis=1), hi - lo, np.nan)


def own_language_gap(strat: np.ndarray, query_lang: np.ndarray) -> np.ndarray:
    """Per query, stratified nDCG of its own language minus the mean over its other languages (NaNs left out):
    gap_i = nDCG_{i, lang(q_i)} - mean_{p != lang(q_i)} nDCG_ip. Positive: the own-language copy is served first."""
    s = np.asarray(strat, dtype=np.float64)
    q = np.asarray(query_lang, dtype=np.int64)
    own = s[np.arange(len(q)), q]
    others = s.copy()
    others[np.arange(len(q)), q] = np.nan
    ok = ~np.isnan(others)
    n = ok.sum(axis=1)
    with np.errstate(invalid="ignore"):
        mean_others = np.where(n > 0, np.where(ok, others, 0.0).sum(axis=1) / np.maximum(n, 1), np.nan)
    return own - mean_others


# Per-query preference columns of the Multi pool rows in per_query.npz (NaN on Mono / Cross rows), so macro averages,
# pair files and the paired / seed-aware bootstraps treat them like every other per-query metric.
PREFERENCE_METRICS = ("own_top10", "own_first", "own_gap")


def multi_pool_preference(ranks: np.ndarray, query_lang: int, own_top: np.ndarray, k: int = 10
                          ) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """The preference columns of one query language's Multi rows, their stratified nDCG@k `(queries, L)` and
    `own_copy_share` (own_first's no-preference rate) per row.

    `ranks (queries, L)`: rank of the copy in language column j in the merged pool (0: no copy), so copy languages
    are the column indices; `own_top (queries,)`: own-language share of each query's top 10 (`own_language_share`).
    own_first = `own_language_first`, own_gap = `own_language_gap` of `stratified_ndcg`."""
    r = np.asarray(ranks, dtype=np.int64)
    n, n_lang = r.shape
    rel_lang = np.broadcast_to(np.arange(n_lang), r.shape)
    q = np.full(n, query_lang, dtype=np.int64)
    strat = stratified_ndcg(r, rel_lang, n_lang, k=k)
    return ({"own_top10": np.asarray(own_top, dtype=np.float64), "own_first": own_language_first(r, rel_lang, q),
             "own_gap": own_language_gap(strat, q)}, strat, own_copy_share(r, rel_lang, q))
