"""Where the worst rank comes from: Max@R, Complete@k and the worst-pool table by hand, against scikit-learn's
coverage_error and ranx's recall, under ties (exact expectation against random tie-breaking), and as every LAReQA
evaluation writes them (real XQuAD-R pools: the Multi rows' worst copy read back against a brute-force ranking)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from test_ties import counts_from_scores

import hybridbatch.evaluation.metrics as M
from hybridbatch.evaluation.worst_rank import (
    complete_at,
    expected_complete_at,
    expected_max_rank,
    max_rank,
    worst_copy,
    worst_pool_table,
)


def test_by_hand():
    ranks = np.array([[3, 7, 0], [1, 2, 12], [0, 0, 0], [10, 0, 0]])
    np.testing.assert_array_equal(max_rank(ranks)[:2], [7, 12])
    assert np.isnan(max_rank(ranks)[2]) and max_rank(ranks)[3] == 10
    np.testing.assert_array_equal(complete_at(ranks, 10)[[0, 1, 3]], [1.0, 0.0, 1.0])
    assert np.isnan(complete_at(ranks, 10)[2])
    np.testing.assert_array_equal(complete_at(ranks, 7)[[0, 1, 3]], [1.0, 0.0, 0.0])
    np.testing.assert_array_equal(worst_copy(ranks), [1, 2, -1, 0])
    # Max@R = best rank + rank distance where both exist
    np.testing.assert_array_equal(max_rank(ranks)[:2], [3 + 4, 1 + 11])


def test_worst_pool_table_by_hand():
    # query language 0: worst copies in pool 1 twice; language 1: pools 0 and 1 once each (a query with none left out)
    share, pool_share, mean_worst = worst_pool_table(np.array([0, 0, 1, 1, 1]), np.array([1, 1, 0, 1, -1]),
                                                     np.array([5.0, 7.0, 3.0, 9.0, np.nan]), 2)
    np.testing.assert_allclose(share, [[0.0, 1.0], [0.5, 0.5]])
    np.testing.assert_allclose(pool_share, [0.25, 0.75])
    np.testing.assert_allclose(mean_worst, [3.0, (5 + 7 + 9) / 3])


def test_max_rank_is_sklearn_coverage_error_and_complete_is_ranx_full_recall():
    from ranx import Qrels, Run, evaluate
    from sklearn.metrics import coverage_error

    rng = np.random.default_rng(3)
    scores = rng.standard_normal((30, 40))
    rel = np.full((30, 4), -1)
    truth = np.zeros(scores.shape, dtype=int)
    for i in range(30):
        k = rng.integers(1, 5)
        rel[i, :k] = rng.choice(40, size=k, replace=False)
        truth[i, rel[i, :k]] = 1
    ranks = M.relevant_ranks(scores, rel)
    got = M.all_metrics(ranks)
    assert np.mean(got["max_rank"]) == pytest.approx(coverage_error(truth, scores))
    for i in range(5):  # per query too
        assert got["max_rank"][i] == coverage_error(truth[i:i + 1], scores[i:i + 1])
    qrels = Qrels({f"q{i:03d}": {f"d{j}": 1 for j in rel[i] if j >= 0} for i in range(30)})
    run = Run({f"q{i:03d}": {f"d{j}": float(scores[i, j]) for j in range(40)} for i in range(30)})
    full = np.array([v for v in evaluate(qrels, run, "recall@10", return_mean=False)]) == 1.0
    np.testing.assert_array_equal(got["complete10"], full.astype(float))
    assert 0 < full.mean() < 1  # both outcomes occur


def test_pessimistic_ties_are_sklearn_coverage_error():
    from sklearn.metrics import coverage_error  # a tie counts against the relevant item there

    rng = np.random.default_rng(4)
    scores = rng.integers(0, 4, size=(25, 20)).astype(np.float64)
    rel = np.stack([rng.choice(20, size=3, replace=False) for _ in range(25)])
    truth = np.zeros(scores.shape, dtype=int)
    np.put_along_axis(truth, rel, 1, axis=1)
    got, _ = M.tie_metrics(*counts_from_scores(scores, rel), mode="pessimistic")
    assert np.mean(got["max_rank"]) == pytest.approx(coverage_error(truth, scores))


def test_expected_under_ties_exact_and_against_random_tie_breaking():
    # all n scores equal, r relevant: E[max] = r (n + 1) / (r + 1), P(all in top k) = C(k, r) / C(n, r)
    n, r = 12, 3
    assert expected_max_rank(0, n, r) == pytest.approx(r * (n + 1) / (r + 1))
    assert expected_complete_at(np.array([0.0]), np.array([n]), np.array([r]), 10)[0] == pytest.approx(
        math.comb(10, r) / math.comb(n, r))
    # mixed groups: the expectation against the mean over random orders within equal scores (Monte Carlo)
    rng = np.random.default_rng(5)
    scores = rng.integers(0, 3, size=(6, 24)).astype(np.float64)
    rel = np.stack([rng.choice(24, size=3, replace=False) for _ in range(6)])
    got, _ = M.tie_metrics(*counts_from_scores(scores, rel), mode="expected")
    draws = 20000
    for i in range(6):
        noise = rng.random((draws, 24)) * 1e-3  # breaks ties uniformly at random, never reorders distinct scores
        order = np.argsort(-(scores[i] + noise), axis=1)
        pos = np.argsort(order, axis=1) + 1
        worst = pos[:, rel[i]].max(axis=1)
        for key, sample in (("max_rank", worst.astype(float)), ("complete10", (worst <= 10).astype(float))):
            se = max(sample.std() / math.sqrt(draws), 1e-9)
            assert abs(got[key][i] - sample.mean()) < 4 * se + 1e-9, (i, key)


def test_every_lareqa_evaluation_writes_them(xquad, tmp_path):
    from hybridbatch.evaluation.lareqa import evaluate_lareqa_embeddings
    from hybridbatch.report.evaluation import write_eval

    sub = xquad.subset(xquad.articles[:2])
    rng = np.random.default_rng(0)
    q = {lang: rng.standard_normal((len(sub.questions[lang]), 8)).astype(np.float32) for lang in sub.languages}
    c = {lang: rng.standard_normal((len(sub.candidates[lang]), 8)).astype(np.float32) for lang in sub.languages}
    r = evaluate_lareqa_embeddings(sub, q, c, backend="numpy", ties="optimistic")
    langs = sub.languages
    # brute force: the merged pool's scores, each Multi row's copies ranked, the worst one and its language
    union = np.concatenate([c[lang] / np.linalg.norm(c[lang], axis=1, keepdims=True) for lang in langs])
    starts = np.cumsum([0] + [len(sub.candidates[lang]) for lang in langs])
    by_id = sub.by_id()
    pq = r.per_query
    multi = pq["pool"] == len(langs)
    names = np.array(list(pq["qid_names"]))
    checked = 0
    for row in np.nonzero(multi)[0][::37]:
        li, qid = int(pq["qlang"][row]), names[pq["qid"][row]]
        qi = [x.qid for x in sub.questions[langs[li]]].index(qid)
        qv = q[langs[li]][qi] / np.linalg.norm(q[langs[li]][qi])
        relevant = np.array([[starts[j] + by_id[qid][lang].answer if lang in by_id[qid] else -1
                              for j, lang in enumerate(langs)]])
        ranks = M.relevant_ranks((union @ qv)[None, :], relevant)[0]
        assert pq["max_rank"][row] == ranks.max()
        assert pq["worst_lang"][row] == int(np.argmax(ranks))
        assert pq["complete10"][row] == float(ranks[ranks > 0].max() <= 10)
        checked += 1
    assert checked > 10
    assert (pq["worst_lang"][~multi] == -1).all()
    share = np.asarray(r.pairs["worst_pool"])
    np.testing.assert_allclose(share.sum(axis=1), 1.0)
    assert sum(r.per_language[lang]["worst_pool_share"] for lang in langs) == pytest.approx(1.0)
    m = r.summary["multi"]
    per_lang = [np.nanmean(pq["max_rank"][multi & (pq["qlang"] == i)]) for i in range(len(langs))]
    assert m["max_rank"] == pytest.approx(np.mean(per_lang))
    assert m["max_rank"] >= m["bias"] and 0 <= m["complete10"] <= m["r10"]
    write_eval(r, tmp_path / "run")
    md = (tmp_path / "run" / "eval.md").read_text()
    assert "Where the worst rank comes from" in md and "Max@R" in md
