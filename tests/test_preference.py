"""Language-preference metrics (evaluation/preference.py): hand-computed values, the tie rule against every tie
order, blocking invariance, agreement with metrics.ndcg_at, and the full XQuAD-R pool shape with the real
candidate languages (language-blind random embeddings give preference 1, a planted language direction more)."""

from __future__ import annotations

import itertools
import math
import time
import tracemalloc

import numpy as np
import pytest

from hybridbatch.evaluation import metrics as M
from hybridbatch.evaluation import preference as P

LANG = np.array([0, 0, 1, 1, 2, 2])  # two candidates per language


def test_topk_counts_shares_and_preference_by_hand():
    scores = np.array([[0.9, 0.8, 0.7, 0.1, 0.2, 0.3],   # top 3: c0 c1 (lang 0), c2 (lang 1)
                       [0.5, 0.5, 0.5, 0.5, 0.9, 0.1]])  # c4 (lang 2), then 4 tied at 0.5 for 2 places: 1/2 each
    counts = P.topk_language_counts(scores, LANG, 3, k=3)
    np.testing.assert_allclose(counts, [[2, 1, 0], [1, 1, 1]])
    query_lang = np.array([0, 2])
    own = P.own_language_share(counts, query_lang)
    np.testing.assert_allclose(own, [2 / 3, 1 / 3])
    pool = P.pool_language_share(LANG, query_lang, 3)
    np.testing.assert_allclose(pool, [1 / 3, 1 / 3])
    np.testing.assert_allclose(P.language_preference(own, pool), [2.0, 1.0])
    np.testing.assert_allclose(P.language_preference(own, pool, "difference"), [1 / 3, 0.0], atol=1e-15)
    assert np.isnan(P.language_preference(np.array([0.5]), np.array([0.0])))[0]
    with pytest.raises(ValueError, match="kind"):
        P.language_preference(own, pool, "log")
    with pytest.raises(ValueError, match="k must be"):
        P.topk_language_counts(scores, LANG, 3, k=7)


def test_tie_rule_is_the_mean_over_every_order_of_the_tie():
    scores = np.array([3.0, 2.0, 2.0, 2.0, 2.0, 1.0, 2.0])
    lang = np.array([0, 1, 1, 2, 0, 2, 1])
    for k in (1, 2, 3, 4, 5, 6):
        tied = np.nonzero(scores == 2.0)[0]
        totals = np.zeros(3)
        orders = list(itertools.permutations(tied))
        for order in orders:
            ranking = [0, *order, 5]  # 3.0 first, the tie in this order, 1.0 last
            totals += np.bincount(lang[ranking[:k]], minlength=3)
        got = P.topk_language_counts(scores[None, :], lang, 3, k=k)[0]
        np.testing.assert_allclose(got, totals / len(orders), atol=1e-6)


def test_blocking_and_embeddings_agree_with_a_plain_sort():
    rng = np.random.default_rng(0)
    q = rng.standard_normal((37, 8)).astype(np.float32)
    c = rng.standard_normal((50, 8)).astype(np.float32)
    lang = rng.integers(0, 4, size=50)
    scores = q @ c.T
    top = np.argsort(-scores, axis=1)[:, :7]  # tie-free: random floats
    expected = np.stack([np.bincount(lang[t], minlength=4) for t in top]).astype(float)
    for block in (1, 5, 1024):
        np.testing.assert_array_equal(P.topk_language_counts(scores, lang, 4, k=7, block=block), expected)
        np.testing.assert_array_equal(P.topk_language_counts_from_embeddings(q, c, lang, 4, k=7, block=block),
                                      expected)


def test_own_language_first_and_its_no_preference_share():
    ranks = np.array([[3, 1, 7], [2, 5, 0], [0, 0, 0]])
    rel_lang = np.array([[0, 1, 2], [1, 0, 2], [0, 1, 2]])
    query_lang = np.array([1, 0, 0])
    first = P.own_language_first(ranks, rel_lang, query_lang)
    np.testing.assert_array_equal(first[:2], [1.0, 0.0])  # q0: rank 1 is lang 1 (its own); q1: rank 2 is lang 1
    assert np.isnan(first[2])
    share = P.own_copy_share(ranks, rel_lang, query_lang)
    np.testing.assert_allclose(share[:2], [1 / 3, 1 / 2])  # q1: 2 copies present, 1 in its language
    assert np.isnan(share[2])


def test_stratified_ndcg_by_hand_and_against_metrics():
    ranks = np.array([[1, 4, 12], [2, 3, 0]])
    rel_lang = np.array([[0, 1, 2], [0, 0, 1]])
    s = P.stratified_ndcg(ranks, rel_lang, 3, k=10)
    np.testing.assert_allclose(s[0], [1.0, 1 / math.log2(5), 0.0])  # rank 12 is past k
    both = (1 / math.log2(3) + 1 / math.log2(4)) / (1 + 1 / math.log2(3))  # two copies in lang 0 at 2, 3
    np.testing.assert_allclose(s[1, 0], both)
    assert np.isnan(s[1, 1]) and np.isnan(s[1, 2])  # the lang-1 copy is absent, lang 2 has none
    one_lang = np.array([[5, 1, 30, 0], [2, 9, 11, 4]])
    np.testing.assert_allclose(P.stratified_ndcg(one_lang, np.zeros((2, 4), int), 1, k=10)[:, 0],
                               M.ndcg_at(one_lang, 10))


def test_per_language_aggregates_spread_and_gap_by_hand():
    strat = np.array([[1.0, 0.5, 0.25],
                      [0.8, np.nan, 0.2],
                      [0.1, 0.9, 0.3]])
    query_lang = np.array([0, 0, 1])
    by = P.ndcg_by_language(strat, query_lang, 3)
    np.testing.assert_allclose(by[0], [0.9, 0.5, 0.225])
    np.testing.assert_allclose(by[1], [0.1, 0.9, 0.3])
    assert np.isnan(by[2]).all()  # no query in language 2
    spread = P.language_spread(by)
    np.testing.assert_allclose(spread[:2], [0.9 - 0.225, 0.8])
    assert np.isnan(spread[2])
    gap = P.own_language_gap(strat, query_lang)
    np.testing.assert_allclose(gap, [1.0 - 0.375, 0.8 - 0.2, 0.9 - 0.2])
    np.testing.assert_allclose(P.per_language_mean(np.array([1.0, np.nan, 3.0]), query_lang, 3)[:2], [1.0, 3.0])


def test_language_codes_share_one_vocabulary():
    vocab, cand, query = P.language_codes(["en", "de", "en", "zh"], ["zh", "en"])
    assert vocab == ["de", "en", "zh"]
    np.testing.assert_array_equal(cand, [1, 0, 1, 2])
    np.testing.assert_array_equal(query, [2, 1])


@pytest.mark.slow
def test_full_xquad_r_pool_shape_is_cheap_and_reads_language_direction(xquad):
    """13090 queries x 13014 candidates (the real languages and pool sizes), dim 384, k=10. Random embeddings are
    language-blind: preference ~ 1. Adding one direction per language to queries and candidates of that language
    makes the own language win: preference well above 1. Blocked scoring keeps memory far below the 680 MB the
    full float32 score matrix would take."""
    langs = xquad.languages
    cand_labels = [lang for lang in langs for _ in xquad.candidates[lang]]
    query_labels = [lang for lang in langs for _ in xquad.questions[lang]]
    vocab, cand, query = P.language_codes(cand_labels, query_labels)
    assert (len(cand), len(query), len(vocab)) == (13014, 13090, 11)
    rng = np.random.default_rng(0)
    dim = 384

    def embed(codes: np.ndarray, lean: float) -> np.ndarray:
        x = rng.standard_normal((len(codes), dim)).astype(np.float32)
        x[np.arange(len(codes)), codes] += lean  # language p leans along axis p
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    pool = P.pool_language_share(cand, query, len(vocab))
    tracemalloc.start()
    t0 = time.perf_counter()
    blind = P.topk_language_counts_from_embeddings(embed(query, 0.0), embed(cand, 0.0), cand, len(vocab), k=10,
                                                   block=512)
    seconds = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    np.testing.assert_allclose(blind.sum(axis=1), 10.0)
    ratio = np.nanmean(P.language_preference(P.own_language_share(blind, query), pool))
    assert abs(ratio - 1.0) < 0.05, ratio  # standard error ~ 0.01 at this size
    assert peak < 250e6, f"peak traced memory {peak / 1e6:.0f} MB"
    print(f"full pool: {seconds:.1f} s, peak {peak / 1e6:.0f} MB, blind preference {ratio:.3f}")
    leaning = P.topk_language_counts_from_embeddings(embed(query, 3.0), embed(cand, 3.0), cand, len(vocab), k=10)
    assert np.nanmean(P.language_preference(P.own_language_share(leaning, query), pool)) > 3.0


def test_lareqa_preference_columns_match_a_brute_force_sort(xquad):
    """The Multi rows' own_top10 / own_first / own_gap as evaluate_lareqa_embeddings writes them, against a full
    argsort of every query's scores over the union pool (written apart from preference.py and retrieval.py), on two
    real XQuAD-R articles with embeddings that lean towards their language."""
    from hybridbatch.evaluation.lareqa import evaluate_lareqa_embeddings, relevant_matrix

    corpus = xquad.subset(xquad.articles[:2])
    langs = corpus.languages
    rng = np.random.default_rng(3)
    dim = 32
    axes = rng.standard_normal((len(langs), dim))
    topic = {q.qid: rng.standard_normal(dim) for q in corpus.questions[langs[0]]}

    def norm(x):
        return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)

    q_emb = {lang: norm(np.stack([topic[q.qid] + 0.8 * axes[i] + 0.7 * rng.standard_normal(dim)
                                  for q in corpus.questions[lang]])) for i, lang in enumerate(langs)}
    c_emb = {lang: norm(rng.standard_normal((len(corpus.candidates[lang]), dim)) + 0.8 * axes[i])
             for i, lang in enumerate(langs)}
    for i, lang in enumerate(langs):  # each question's answer sentence carries its topic
        for q in corpus.questions[lang]:
            c_emb[lang][q.answer] = norm((topic[q.qid] + 0.8 * axes[i] + 0.3 * rng.standard_normal(dim))[None])[0]
    res = evaluate_lareqa_embeddings(corpus, q_emb, c_emb)
    pq = res.per_query
    multi = pq["pool"] == len(langs)
    got = {(str(pq["qid_names"][pq["qid"][j]]), int(pq["qlang"][j])): j for j in np.flatnonzero(multi)}

    union = np.concatenate([c_emb[lang] for lang in langs])
    cand_lang = np.concatenate([np.full(len(c_emb[lang]), i) for i, lang in enumerate(langs)])
    bounds = dict(zip(langs, np.cumsum([0] + [len(c_emb[lang]) for lang in langs[:-1]])))
    per_lang_top = []
    for li, lang in enumerate(langs):
        rel = relevant_matrix(corpus, lang, bounds)
        tops = []
        for i, q in enumerate(corpus.questions[lang]):
            order = np.argsort(-(union @ q_emb[lang][i]), kind="stable")
            rank = np.empty(len(order), dtype=int)
            rank[order] = np.arange(1, len(order) + 1)
            own_top = float(np.mean(cand_lang[order[:10]] == li))
            copies = [(rank[g], p) for p, g in enumerate(rel[i]) if g >= 0]
            first_lang = min(copies)[1]
            ndcg = {p: (1 / math.log2(1 + r) if r <= 10 else 0.0) for r, p in copies}
            others = [v for p, v in ndcg.items() if p != li]
            j = got[(q.qid, li)]
            assert pq["own_top10"][j] == pytest.approx(own_top)
            assert pq["own_first"][j] == float(first_lang == li)
            assert pq["own_gap"][j] == pytest.approx(ndcg[li] - np.mean(others))
            tops.append(own_top)
        per_lang_top.append(np.mean(tops))
    assert np.isnan(pq["own_top10"][~multi]).all()
    m = res.summary["multi"]
    assert m["own_top10"] == pytest.approx(np.mean(per_lang_top))
    assert m["own_top10"] > m["own_top10_expected"] + 0.1  # the lean is there and read the right way
    assert m["own_top10_expected"] == pytest.approx(np.mean([len(c_emb[x]) / len(union) for x in langs]))
    assert m["own_first_expected"] == pytest.approx(1 / len(langs))


@pytest.mark.parametrize("backend", ["numpy", "faiss"])
def test_the_scoring_pass_yields_the_top_k_counts_with_the_ranks(backend):
    """`retrieval.segment_counts(..., topk=)` reads the top-k language counts off the block it scores for the ranks:
    the same counts as scoring the pool a second time (`topk_language_counts_from_embeddings`), ties at the cut
    included, whatever the block size; and the ranks are those of the call without `topk`."""
    if backend == "faiss":
        pytest.importorskip("faiss")
    from hybridbatch.evaluation.retrieval import segment_counts

    rng = np.random.default_rng(3)
    pool = rng.standard_normal((300, 16)).astype(np.float32)
    pool[1::5] = pool[0::5][: len(pool[1::5])]  # duplicated candidates: exact ties, also at the k-th place
    pool /= np.linalg.norm(pool, axis=1, keepdims=True)
    queries = rng.standard_normal((70, 16)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    cand_lang = np.repeat(np.arange(3), 100)
    relevant = np.stack([rng.integers(0, 100, 70), 100 + rng.integers(0, 100, 70), np.full(70, -1)], axis=1)
    bounds = [0, 100, 200, 300]
    want = P.topk_language_counts_from_embeddings(queries, pool, cand_lang, 3, k=10)
    plain = segment_counts(queries, pool, relevant, bounds, backend=backend, return_ties=True)
    for chunk in (1, 7, 70):
        *ranks, top = segment_counts(queries, pool, relevant, bounds, backend=backend, chunk_size=chunk,
                                     return_ties=True, topk=(cand_lang, 3, 10))
        np.testing.assert_array_equal(top, want)
        for got, ref in zip(ranks, plain, strict=True):
            np.testing.assert_array_equal(got, ref)
    np.testing.assert_allclose(want.sum(axis=1), 10)
