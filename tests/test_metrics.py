"""Ranking metrics: agreement with scikit-learn and ranx on random tie-free cases, known answers on hand-built
multilingual pools (including partial parallelism), the strict tie rule, and the language-bias rank distance."""

from __future__ import annotations

import numpy as np
import pytest

import hybridbatch.evaluation.metrics as M


def brute_ranks(scores: np.ndarray, relevant: np.ndarray) -> np.ndarray:
    """Reference: sort by (-score, relevant first, column order) and read positions; the strict tie rule as a
    permutation."""
    out = np.zeros(relevant.shape, dtype=np.int64)
    for i, row in enumerate(scores):
        rel = [int(r) for r in relevant[i] if r >= 0]
        relpos = {r: k for k, r in enumerate(rel)}
        order = sorted(range(len(row)), key=lambda c: (-row[c], c not in relpos, relpos.get(c, 0)))
        pos = {c: p + 1 for p, c in enumerate(order)}
        for k, r in enumerate(relevant[i]):
            out[i, k] = pos[int(r)] if r >= 0 else 0
    return out


def random_case(rng: np.random.Generator, q: int, n: int, max_rel: int, ties: bool = False):
    scores = rng.integers(0, 5, size=(q, n)).astype(np.float32) if ties else rng.standard_normal((q, n))
    relevant = np.full((q, max_rel), -1, dtype=np.int64)
    for i in range(q):
        k = rng.integers(1, max_rel + 1)
        relevant[i, :k] = rng.choice(n, size=k, replace=False)
    return scores, relevant


def test_ranks_match_brute_force_with_and_without_ties():
    rng = np.random.default_rng(1)
    for ties in (False, True):
        scores, relevant = random_case(rng, 40, 30, 5, ties=ties)
        np.testing.assert_array_equal(M.relevant_ranks(scores, relevant), brute_ranks(scores, relevant))


def test_ap_equals_sklearn_without_ties():
    from sklearn.metrics import average_precision_score

    rng = np.random.default_rng(0)
    scores, relevant = random_case(rng, 200, 60, 8)
    ap = M.average_precision(M.relevant_ranks(scores, relevant))
    for i in range(len(scores)):
        y = np.zeros(scores.shape[1], dtype=int)
        y[relevant[i][relevant[i] >= 0]] = 1
        assert ap[i] == pytest.approx(average_precision_score(y, scores[i]), abs=1e-9)


def test_metrics_equal_ranx_without_ties():
    from ranx import Qrels, Run, evaluate

    rng = np.random.default_rng(3)
    scores, relevant = random_case(rng, 60, 50, 12)
    ranks = M.relevant_ranks(scores, relevant)
    qrels = {f"q{i:03d}": {f"d{r}": 1 for r in relevant[i] if r >= 0} for i in range(len(scores))}
    run = {f"q{i:03d}": {f"d{j}": float(s) for j, s in enumerate(scores[i])} for i in range(len(scores))}
    want = evaluate(Qrels(qrels), Run(run), ["map", "map@20", "ndcg@10", "mrr@10", "recall@10", "recall@1"],
                    return_mean=False)
    ours = {"map": M.average_precision(ranks), "map@20": M.average_precision(ranks, 20), "ndcg@10": M.ndcg_at(ranks, 10),
            "mrr@10": M.mrr_at(ranks, 10), "recall@10": M.recall_at(ranks, 10), "recall@1": M.recall_at(ranks, 1)}
    for name, values in ours.items():
        # ranx divides AP@k by #relevant, XTREME-R by min(#relevant, k): identical here (<= 12 relevant < 20)
        np.testing.assert_allclose(values, want[name], atol=1e-9, err_msg=name)


def test_known_answer_multilingual_pool_with_partial_parallelism():
    # Multi pool: en 0-2, de 3-5, el 6-8. Query "q1" exists in en and de only (relevant en:1, de:4).
    # Scores put en:1 first, then two non-relevant, then de:4 -> ranks 1 and 4.
    scores = np.array([[0.1, 0.9, 0.2, 0.8, 0.3, 0.0, 0.7, 0.05, 0.01]])
    relevant = np.array([[1, 4, -1]])
    ranks = M.relevant_ranks(scores, relevant)
    # de:4 (0.3) is behind en:1 (relevant, 0.9) and two non-relevant (0.8, 0.7): rank 4
    np.testing.assert_array_equal(ranks, [[1, 4, 0]])
    assert M.average_precision(ranks)[0] == pytest.approx((1 / 1 + 2 / 4) / 2)
    assert M.average_precision(ranks, 3)[0] == pytest.approx(1.0 / 2)  # only the hit at rank 1 is within top 3
    assert M.recall_at(ranks, 1)[0] == pytest.approx(0.5)
    assert M.recall_at(ranks, 10)[0] == pytest.approx(1.0)
    assert M.mrr_at(ranks, 10)[0] == pytest.approx(1.0)
    ideal = 1 + 1 / np.log2(3)
    assert M.ndcg_at(ranks, 10)[0] == pytest.approx((1 + 1 / np.log2(5)) / ideal)
    assert M.rank_distance(ranks)[0] == 3


def test_language_bias_hand_computed():
    # Two queries with 3 copies each; relevant ranks (1, 2, 10) and (3, 4, 5): distances 9 and 2.
    ranks = np.array([[1, 10, 2], [5, 3, 4]])
    np.testing.assert_array_equal(M.rank_distance(ranks), [9.0, 2.0])
    # one copy only: no spread to measure -> NaN (left out of the bias mean); no copies: NaN too
    assert np.isnan(M.rank_distance(np.array([[7, 0, 0]])))[0]
    assert np.isnan(M.rank_distance(np.array([[0, 0, 0]])))[0]


def test_strict_tie_rule():
    # relevant item 2 ties with two non-relevant items: none of them is strictly higher, so rank 1
    scores = np.array([[0.5, 0.5, 0.5, 0.1]])
    assert M.relevant_ranks(scores, np.array([[2]]))[0, 0] == 1
    # a strictly higher candidate pushes it down by one, ties still do not
    scores = np.array([[0.5, 0.7, 0.5, 0.1]])
    assert M.relevant_ranks(scores, np.array([[2]]))[0, 0] == 2
    # two tied relevant items take consecutive ranks (column order), never the same rank
    scores = np.array([[0.5, 0.5, 0.9, 0.5]])
    np.testing.assert_array_equal(M.relevant_ranks(scores, np.array([[3, 1]])), [[2, 3]])
    assert M.average_precision(M.relevant_ranks(scores, np.array([[3, 1]])))[0] == pytest.approx((1 / 2 + 2 / 3) / 2)


def test_no_relevant_gives_nan_and_count_above():
    ranks = np.array([[0, 0], [2, 0]])
    ap = M.average_precision(ranks)
    assert np.isnan(ap[0]) and ap[1] == pytest.approx(0.5)
    np.testing.assert_array_equal(M.n_relevant(ranks), [0, 1])
    np.testing.assert_array_equal(M.count_above(np.array([[1.0, 2.0, 3.0]]), np.array([[2.0, 0.0]])), [[1, 3]])


def test_1d_ranks_mean_one_relevant_each():
    r = np.array([1, 3, 0])
    np.testing.assert_allclose(M.average_precision(r), [1.0, 1 / 3, np.nan])
    np.testing.assert_allclose(M.recall_at(r, 1), [1.0, 0.0, np.nan])
