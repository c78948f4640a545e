"""Tie handling: the expected mode equals the mean over every order of the tied items (enumerated), constant scores
give the analytic chance level, tie-free input is identical in all modes and equals scikit-learn / ranx, and
optimistic / pessimistic bound the expected value."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

import hybridbatch.evaluation.metrics as M


def counts_from_scores(scores: np.ndarray, relevant: np.ndarray):
    """(above, tied, rel_scores, valid) from a raw score matrix, by direct comparison (the test's own reference)."""
    valid = relevant >= 0
    above = np.zeros(relevant.shape, dtype=np.int64)
    tied = np.zeros(relevant.shape, dtype=np.int64)
    rel_scores = np.full(relevant.shape, -np.inf)
    for i, row in enumerate(scores):
        rel = set(int(r) for r in relevant[i] if r >= 0)
        nonrel = np.array([row[c] for c in range(len(row)) if c not in rel])
        for j, r in enumerate(relevant[i]):
            if r < 0:
                continue
            rel_scores[i, j] = row[r]
            above[i, j] = int((nonrel > row[r]).sum())
            tied[i, j] = int((nonrel == row[r]).sum())
    return above, tied, rel_scores, valid


def metrics_of_order(order: list[int], relevant_row: np.ndarray) -> dict[str, float]:
    """All metrics for one complete ranking (list of candidate ids, best first), via the plain rank functions."""
    pos = {c: p + 1 for p, c in enumerate(order)}
    ranks = np.array([[pos[int(r)] if r >= 0 else 0 for r in relevant_row]])
    return {k: float(v[0]) for k, v in M.all_metrics(ranks).items()}


def mean_over_tie_orders(scores_row: np.ndarray, relevant_row: np.ndarray) -> dict[str, float]:
    """Mean of every metric over all rankings consistent with the scores (each tie group in every order)."""
    groups = [list(np.nonzero(scores_row == s)[0]) for s in sorted(set(scores_row.tolist()), reverse=True)]
    total: dict[str, float] = {}
    count = 0
    for combo in itertools.product(*(itertools.permutations(g) for g in groups)):
        m = metrics_of_order([c for g in combo for c in g], relevant_row)
        for k, v in m.items():
            total[k] = total.get(k, 0.0) + v
        count += 1
    return {k: v / count for k, v in total.items()}


@pytest.mark.parametrize("case", [
    # one relevant item tied with two non-relevant
    (np.array([0.5, 0.5, 0.9, 0.5, 0.1, 0.3]), np.array([3, -1, -1])),
    # three relevant: two of them tied with each other and with three non-relevant, one alone higher up
    (np.array([0.2, 0.7, 0.7, 0.9, 0.7, 0.7, 0.7, 0.1]), np.array([1, 3, 4])),
    # relevant items in two different tie groups, one at the very top, ranks crossing k = 10 / 20 not needed here
    (np.array([0.4, 0.4, 0.4, 0.4, 0.8, 0.8, 0.8, 0.0]), np.array([0, 5, 7])),
])
def test_expected_equals_mean_over_all_tie_orders(case):
    scores, rel = case
    want = mean_over_tie_orders(scores, rel)
    got, _ = M.tie_metrics(*counts_from_scores(scores[None, :], rel[None, :]), mode="expected")
    for k, v in want.items():
        assert got[k][0] == pytest.approx(v, abs=1e-12, nan_ok=True), k


def test_expected_with_ties_across_cutoffs_matches_enumeration():
    # 12 candidates: a tie group straddling rank 10 (positions 8..12) holding 2 relevant items; 3 groups in all
    scores = np.array([0.9] * 3 + [0.6] * 4 + [0.3] * 5, dtype=float)
    rel = np.array([1, 9, 11])
    # full enumeration is 3! 4! 5! = 17280 orders
    want = mean_over_tie_orders(scores, rel)
    got, _ = M.tie_metrics(*counts_from_scores(scores[None, :], rel[None, :]), mode="expected")
    for k, v in want.items():
        assert got[k][0] == pytest.approx(v, abs=1e-12, nan_ok=True), k


def test_optimistic_and_pessimistic_bound_expected():
    rng = np.random.default_rng(5)
    scores = rng.integers(0, 4, size=(50, 25)).astype(float)
    rel = np.stack([rng.choice(25, 4, replace=False) for _ in range(50)])
    args = counts_from_scores(scores, rel)
    lo, _ = M.tie_metrics(*args, mode="pessimistic")
    mid, _ = M.tie_metrics(*args, mode="expected")
    hi, _ = M.tie_metrics(*args, mode="optimistic")
    for k in ("ap", "ap20", "r1", "r10", "ndcg10", "mrr10"):
        assert np.all(lo[k] <= mid[k] + 1e-12) and np.all(mid[k] <= hi[k] + 1e-12), k
    assert (lo["ap"] < hi["ap"]).any()  # the ties really change something


def test_constant_scores_give_chance_level():
    # one relevant item among n, all scores equal: E[AP] = E[1/rank] = H_n / n (rank uniform on 1..n)
    n = 500
    scores = np.zeros((1, n))
    got, _ = M.tie_metrics(*counts_from_scores(scores, np.array([[7]])), mode="expected")
    assert got["ap"][0] == pytest.approx(sum(1 / k for k in range(1, n + 1)) / n, rel=1e-12)
    assert got["r1"][0] == pytest.approx(1 / n)
    assert got["r10"][0] == pytest.approx(10 / n)
    opt, _ = M.tie_metrics(*counts_from_scores(scores, np.array([[7]])), mode="optimistic")
    assert opt["ap"][0] == 1.0  # what the optimistic rule used to report for a collapsed model


def test_constant_scores_many_relevant_match_simulation():
    # r relevant among n, all tied: compare with the mean AP / rank distance of random placements (Monte Carlo)
    n, r = 300, 11
    rel = np.arange(0, 2 * r, 2)[None, :]
    got, _ = M.tie_metrics(*counts_from_scores(np.zeros((1, n)), rel), mode="expected")
    rng = np.random.default_rng(0)
    draws = 40000
    pos = np.sort(np.argsort(rng.random((draws, n)), axis=1)[:, :r] + 1, axis=1)  # ranks of the relevant items
    ap = (np.arange(1, r + 1) / pos).mean(axis=1)
    for key, sample in (("ap", ap), ("rank_distance", (pos[:, -1] - pos[:, 0]).astype(float))):
        se = sample.std() / math.sqrt(draws)
        assert abs(got[key][0] - sample.mean()) < 4 * se, key
    # rank distance: max minus min of r uniform positions, E = (r - 1)(n + 1)/(r + 1)
    assert got["rank_distance"][0] == pytest.approx((r - 1) * (n + 1) / (r + 1))


def test_tie_free_input_identical_in_all_modes_and_equal_to_sklearn_and_ranx():
    from ranx import Qrels, Run, evaluate
    from sklearn.metrics import average_precision_score

    rng = np.random.default_rng(2)
    scores = rng.standard_normal((40, 30))
    rel = np.full((40, 5), -1)
    for i in range(40):
        k = rng.integers(1, 6)
        rel[i, :k] = rng.choice(30, k, replace=False)
    args = counts_from_scores(scores, rel)
    assert not args[1].any()
    res = {mode: M.tie_metrics(*args, mode=mode)[0] for mode in M.TIE_MODES}
    for k in res["expected"]:
        np.testing.assert_array_equal(res["expected"][k], res["optimistic"][k], err_msg=k)
        np.testing.assert_array_equal(res["pessimistic"][k], res["optimistic"][k], err_msg=k)
    for i in range(40):
        y = np.zeros(30, dtype=int)
        y[rel[i][rel[i] >= 0]] = 1
        assert res["expected"]["ap"][i] == pytest.approx(average_precision_score(y, scores[i]), abs=1e-12)
    qrels = {f"q{i:02d}": {f"d{r}": 1 for r in rel[i] if r >= 0} for i in range(40)}
    run = {f"q{i:02d}": {f"d{j}": float(s) for j, s in enumerate(scores[i])} for i in range(40)}
    want = evaluate(Qrels(qrels), Run(run), ["map", "ndcg@10", "mrr@10", "recall@10"], return_mean=False)
    for ours, theirs in (("ap", "map"), ("ndcg10", "ndcg@10"), ("mrr10", "mrr@10"), ("r10", "recall@10")):
        np.testing.assert_allclose(res["expected"][ours], want[theirs], atol=1e-12, err_msg=ours)


def test_expected_formula_path_on_tie_free_rows_agrees_with_plain_metrics():
    # the closed forms (digamma sums) themselves, forced on tie-free rows, equal the ordinary metrics
    rng = np.random.default_rng(4)
    scores = rng.standard_normal((30, 40))
    rel = np.stack([rng.choice(40, 6, replace=False) for _ in range(30)])
    above, tied, rs, valid = counts_from_scores(scores, rel)
    exp = M._expected_metrics(above, tied, rs, valid)
    plain = M.all_metrics(M.ranks_from_counts(above, rs, valid))
    for k in plain:
        np.testing.assert_allclose(exp[k], plain[k], rtol=1e-10, atol=1e-12, err_msg=k)


def test_unknown_mode_is_refused():
    from hybridbatch.errors import UsageError

    with pytest.raises(UsageError, match="expected, optimistic, pessimistic"):
        M.tie_metrics(np.zeros((1, 1)), np.zeros((1, 1)), np.zeros((1, 1)), np.ones((1, 1), bool), mode="random")
