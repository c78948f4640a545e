"""The LAReQA protocol end to end: known answers on hand-built pools with constructed embeddings (incl. partial
parallelism), the real XQuAD-R counts, NumPy == FAISS, encoding + embedding cache (corrupt / stale), output files,
BEIR-style eval, and the CLI's eval/compare commands and error messages."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

import hybridbatch.evaluation.retrieval as retrieval
from hybridbatch import provenance
from hybridbatch.data.records import Candidate, QACorpus, Question
from hybridbatch.evaluation.beir import evaluate_beir_embeddings
from hybridbatch.evaluation.cache import EmbeddingCache
from hybridbatch.evaluation.encode import encode_cached, encode_texts
from hybridbatch.evaluation.lareqa import evaluate_lareqa, evaluate_lareqa_embeddings
from hybridbatch.evaluation.results import load_per_query
from hybridbatch.report.evaluation import write_eval

LANGS = ("de", "el", "en")
# Candidate angles per language; scores are cos(query angle - candidate angle), so ranks follow angle distance.
CAND = {"en": [0.1, 1.5, 0.2], "de": [0.3, 0.05, 1.4], "el": [0.15, 0.25, 1.45]}
ANSWER = {"A": {"en": 0, "de": 0, "el": 1}, "B": {"en": 1, "de": 2, "el": 2}}
QANGLE = {"A": 0.0, "B": 1.5}


def unit(angles) -> np.ndarray:
    a = np.asarray(angles, dtype=np.float64)
    return np.stack([np.cos(a), np.sin(a)], axis=1).astype(np.float32)


def hand_corpus(drop: set[tuple[str, str]] = frozenset()) -> tuple[QACorpus, dict, dict]:
    """Questions A and B in de/el/en, 3 candidates per language; `drop` removes (qid, lang) copies."""
    questions, candidates, q_emb, c_emb = {}, {}, {}, {}
    for lang in LANGS:
        candidates[lang] = [Candidate(lang, f"{lang} s{i}", f"{lang} paragraph", "0/0", "art") for i in range(3)]
        c_emb[lang] = unit(CAND[lang])
        qs = [Question(q, lang, f"{lang} question {q}", ANSWER[q][lang], "art") for q in ("A", "B")
              if (q, lang) not in drop]
        questions[lang] = qs
        q_emb[lang] = unit([QANGLE[q.qid] for q in qs]).reshape(-1, 2)
    return QACorpus("hand", questions, candidates, checksum="hand-v1"), q_emb, c_emb


def test_known_answers_full_parallel():
    corpus, q, c = hand_corpus()
    r = evaluate_lareqa_embeddings(corpus, q, c, backend="numpy")
    # Pool by pool (hand-ranked): query A finds en:0 at rank 1, de:0 at 2 (de:1 is closer), el:1 at 2 (el:0 closer);
    # query B finds its answer at rank 1 everywhere. Cell (X, Y) = mean over A, B = 1 for en, .75 for de and el.
    col = {"de": 0.75, "el": 0.75, "en": 1.0}
    expected = np.array([[col[y] for y in LANGS] for _ in LANGS])
    np.testing.assert_allclose(r.pairs["map"], expected)
    assert r.summary["mono"]["map"] == pytest.approx((1 + 0.75 + 0.75) / 3)
    assert r.summary["cross"]["map"] == pytest.approx((0.75 + 0.75 + 1 + 0.75 + 1 + 0.75) / 6)
    assert r.summary["mono"]["r1"] == pytest.approx((1 + 0.5 + 0.5) / 3)
    # Multi: A's copies rank 2 (en:0), 5 (el:1), 6 (de:0): AP (1/2 + 2/5 + 3/6) / 3, distance 4; B: ranks 1, 2, 3.
    ap_a = (1 / 2 + 2 / 5 + 3 / 6) / 3
    assert r.summary["multi"]["map"] == pytest.approx((ap_a + 1) / 2)
    assert r.summary["multi"]["bias"] == pytest.approx((4 + 2) / 2)
    assert r.summary["multi"]["r10"] == pytest.approx(1.0)
    assert r.counts["n_cross_pairs"] == 6 and r.counts["relevant_per_query"] == {"min": 3, "max": 3, "mean": 3.0}
    assert r.counts["left_out"] == {"mono": 0, "cross": 0, "multi": 0}
    assert r.tie_rule.startswith("expected") and r.settings["ties"] == "expected"


def test_partial_parallelism_leaves_out_and_counts():
    corpus, q, c = hand_corpus(drop={("B", "el")})
    r = evaluate_lareqa_embeddings(corpus, q, c, backend="numpy")
    # B has no copy in el: en->el and de->el leave B out (2 rows); el has no query B.
    assert r.counts["left_out"] == {"mono": 0, "cross": 2, "multi": 0}
    assert r.counts["n_queries"] == 5
    # el column now only holds query A (AP .5); en, de columns unchanged except el row (only A asks: en 1, de .5).
    m = dict(zip(LANGS, range(3)))
    assert r.pairs["map"][m["en"], m["el"]] == pytest.approx(0.5)
    assert r.pairs["map"][m["el"], m["el"]] == pytest.approx(0.5)
    assert r.pairs["map"][m["el"], m["de"]] == pytest.approx(0.5)
    # Multi for B (en/de queries): relevant en:1 (rank 1) and de:2 (rank 3, behind el:2 which is no longer relevant)
    pq = load_like(r.per_query)
    sel = (pq["pool_str"] == "multi") & (pq["qid_str"] == "B")
    np.testing.assert_allclose(pq["ap"][sel], [(1 + 2 / 3) / 2] * 2)
    np.testing.assert_allclose(pq["rank_distance"][sel], [2, 2])
    np.testing.assert_array_equal(pq["n_relevant"][sel], [2, 2])


def real_subset(xquad: QACorpus, n_ids: int = 20, langs=("de", "en", "es"), drop: int = 3) -> QACorpus:
    """The first `n_ids` question ids of the first XQuAD-R article in `langs` against every sentence of that article;
    the last `drop` of them are removed from the last language (partial parallelism: no copy in that pool)."""
    art = xquad.subset(xquad.articles[:1], "xquad-r:first")
    ids = [q.qid for q in art.questions[langs[0]][:n_ids]]
    questions = {}
    for k, lang in enumerate(langs):
        keep = set(ids[: n_ids - drop] if k == len(langs) - 1 else ids)
        questions[lang] = [q for q in art.questions[lang] if q.qid in keep]
    return QACorpus("xquad-r:first20", questions, {lang: art.candidates[lang] for lang in langs}, checksum="sub")


def brute_force_lareqa(corpus: QACorpus, q: dict, c: dict) -> dict:
    """Average precision over full rankings, pool by pool, written independently of the evaluator: scores are plain
    float64 dot products, relevance a 0/1 vector, AP from sklearn; a pool holding no copy of the id is skipped.
    Returns {(qid, qlang, pool): AP} with pool a language or 'multi'."""
    from sklearn.metrics import average_precision_score

    langs = corpus.languages
    answer = {(qq.qid, lang): qq.answer for lang in langs for qq in corpus.questions[lang]}
    out = {}
    for x in langs:
        for i, qq in enumerate(corpus.questions[x]):
            v = q[x][i].astype(np.float64)
            parts = []
            for y in langs:
                scores = c[y].astype(np.float64) @ v
                truth = np.zeros(len(scores), dtype=int)
                if (qq.qid, y) in answer:
                    truth[answer[qq.qid, y]] = 1
                    out[qq.qid, x, y] = average_precision_score(truth, scores)
                parts.append((scores, truth))
            scores, truth = (np.concatenate(z) for z in zip(*parts))
            out[qq.qid, x, "multi"] = average_precision_score(truth, scores)
    return out


def test_protocol_on_a_real_subset_equals_brute_force_average_precision(xquad):
    """20 real XQuAD-R question ids x 3 languages (3 ids missing in es) with random embeddings: every (query, pool)
    AP, every cell of the pair matrix and the Mono / Cross / Multi macros equal a brute-force evaluation over full
    rankings (sklearn's average_precision_score) to 1e-9; Multi nDCG@10 / R@10 equal ranx's."""
    from ranx import Qrels, Run, evaluate

    corpus = real_subset(xquad)
    langs = corpus.languages
    rng = np.random.default_rng(11)
    q = {lang: random_unit(rng, len(corpus.questions[lang]), 8) for lang in langs}
    c = {lang: random_unit(rng, len(corpus.candidates[lang]), 8) for lang in langs}
    r = evaluate_lareqa_embeddings(corpus, q, c, backend="numpy")
    ref = brute_force_lareqa(corpus, q, c)
    pq = load_like(r.per_query)
    names = [*langs, "multi"]
    got = {(str(pq["qid_str"][k]), langs[pq["qlang"][k]], names[pq["pool"][k]]): float(pq["ap"][k])
           for k in range(len(pq["ap"]))}
    assert set(got) == set(ref) and len(ref) == (20 + 20 + 17) * 4 - 6  # 3 ids x (de, en) have no copy in es
    for key, ap in ref.items():
        assert got[key] == pytest.approx(ap, abs=1e-9), key
    assert r.counts["left_out"] == {"mono": 0, "cross": 6, "multi": 0} and r.counts["n_queries"] == 57
    cell = {(x, y): np.mean([v for (_, qx, py), v in ref.items() if (qx, py) == (x, y)]) for x in langs
            for y in [*langs, "multi"]}
    for i, x in enumerate(langs):
        for j, y in enumerate(langs):
            assert r.pairs["map"][i, j] == pytest.approx(cell[x, y], abs=1e-9)
        assert r.pairs["multi_map"][i] == pytest.approx(cell[x, "multi"], abs=1e-9)
    assert r.summary["mono"]["map"] == pytest.approx(np.mean([cell[x, x] for x in langs]), abs=1e-9)
    assert r.summary["cross"]["map"] == pytest.approx(np.mean([cell[x, y] for x in langs for y in langs if x != y]),
                                                      abs=1e-9)
    assert r.summary["multi"]["map"] == pytest.approx(np.mean([cell[x, "multi"] for x in langs]), abs=1e-9)
    # Multi nDCG@10 and R@10 per query language against ranx on the full multilingual ranking
    answer = {(qq.qid, lang): qq.answer for lang in langs for qq in corpus.questions[lang]}
    pool = np.concatenate([c[y] for y in langs]).astype(np.float64)
    start = dict(zip(langs, np.cumsum([0] + [len(c[y]) for y in langs[:-1]])))
    for i, x in enumerate(langs):
        qrels, run = {}, {}
        for k, qq in enumerate(corpus.questions[x]):
            qrels[qq.qid] = {f"d{start[y] + answer[qq.qid, y]}": 1 for y in langs if (qq.qid, y) in answer}
            scores = pool @ q[x][k].astype(np.float64)
            run[qq.qid] = {f"d{d}": float(s_) for d, s_ in enumerate(scores)}
        want = evaluate(Qrels(qrels), Run(run), ["ndcg@10", "recall@10"])
        sel = (pq["qlang"] == i) & (pq["pool"] == len(langs))
        assert np.mean(pq["ndcg10"][sel]) == pytest.approx(want["ndcg@10"], abs=1e-9), x
        assert np.mean(pq["r10"][sel]) == pytest.approx(want["recall@10"], abs=1e-9), x


def load_like(per_query: dict) -> dict:
    langs = list(per_query["langs"])
    d = dict(per_query)
    d["qid_str"] = per_query["qid_names"][per_query["qid"]]
    d["pool_str"] = np.array([*langs, "multi"])[per_query["pool"]]
    return d


def random_unit(rng, n: int, d: int) -> np.ndarray:
    x = rng.standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_numpy_and_faiss_give_the_same_ranks():
    rng = np.random.default_rng(0)
    pool = random_unit(rng, 500, 16)
    queries = random_unit(rng, 70, 16)
    rel = np.stack([rng.choice(500, 4, replace=False) for _ in range(70)])
    rel[::3, 2:] = -1
    bounds = [0, 120, 300, 500]
    a = retrieval.segment_counts(queries, pool, rel, bounds, backend="numpy", chunk_size=32)
    b = retrieval.segment_counts(queries, pool, rel, bounds, backend="faiss", chunk_size=32)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_allclose(a[1], b[1], atol=1e-6)
    sa, ia = retrieval.search(queries, pool, 10, backend="numpy")
    sb, ib = retrieval.search(queries, pool, 10, backend="faiss")
    np.testing.assert_array_equal(ia, ib)
    np.testing.assert_allclose(sa, sb, atol=1e-6)
    assert retrieval.choose_backend("auto", 10) == "numpy"
    assert retrieval.choose_backend("auto", 10**9) == "numpy"  # memory is bounded by query blocks on NumPy too


def assert_same_result(a, b) -> None:
    """Bit-identical metrics: every per-query column, the summary, pair matrices and per-language rows."""
    assert set(a.per_query) == set(b.per_query)
    for k, v in a.per_query.items():
        np.testing.assert_array_equal(v, b.per_query[k], err_msg=k)
    assert json.dumps(a.to_json()["summary"]) == json.dumps(b.to_json()["summary"])
    assert json.dumps(a.to_json()["pairs"]) == json.dumps(b.to_json()["pairs"])
    assert json.dumps(a.to_json()["per_language"]) == json.dumps(b.to_json()["per_language"])


def test_protocol_same_on_both_backends():
    corpus, q, c = hand_corpus(drop={("A", "de")})
    a = evaluate_lareqa_embeddings(corpus, q, c, backend="numpy")
    for kw in ({"backend": "faiss"}, {"backend": "numpy", "chunk_size": 1}, {"backend": "faiss", "block_mib": 1e-6}):
        assert_same_result(a, evaluate_lareqa_embeddings(corpus, q, c, **kw))


def brute_counts(queries, pool, rel, bounds):
    """Reference counts from float64 scores of the float32 vectors (Python loops; each score summed row by row so
    that identical vectors get identical scores)."""
    p64 = pool.astype(np.float64)
    s = np.stack([(p64 * q).sum(axis=1) for q in queries.astype(np.float64)])
    out = np.zeros((len(queries), len(bounds) - 1, rel.shape[1]), dtype=np.int64)
    for i in range(len(queries)):
        r = rel[i][rel[i] >= 0]
        for j in range(rel.shape[1]):
            if rel[i, j] < 0:
                continue
            above = s[i] > s[i, rel[i, j]]
            above[r] = False
            out[i, :, j] = [above[bounds[p]:bounds[p + 1]].sum() for p in range(len(bounds) - 1)]
    return out


def test_exact_ties_and_near_ties_same_on_every_backend_and_block():
    """Candidates identical to a relevant item (duplicate sentences get identical embeddings) tie with it and never
    count as above, on NumPy and on FAISS, whatever the block size. FAISS's and NumPy's float32 scores of the same
    pair can differ in the last bit (kernel, block, alignment, threads), so this needs the exact re-scoring of near
    ties: before it, one run on the 2-core box counted 249 of 600 such duplicates above on FAISS, 0 on NumPy (not
    reproducible on demand, which is the point)."""
    rng = np.random.default_rng(3)
    d = 384
    pool = random_unit(rng, 1200, d)
    rel = np.stack([rng.choice(600, 3, replace=False) for _ in range(150)])
    rel[::5, 2] = -1
    queries = pool[rel[:, 0]] + 0.4 * random_unit(rng, 150, d)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    pool[600:] = pool[:600]  # every candidate has an exact duplicate, relevant ones included
    pool[1199] = pool[rel[0, 0]] + np.float32(1e-7)  # a near tie in the last bits
    bounds = [0, 300, 900, 1200]
    want = brute_counts(queries, pool, rel, bounds)
    first = None
    for backend in ("numpy", "faiss"):
        for chunk, mib in ((512, 64.0), (7, 64.0), (512, 0.01)):
            counts, rs = retrieval.segment_counts(queries, pool, rel, bounds, backend=backend, chunk_size=chunk,
                                                  block_mib=mib)
            np.testing.assert_array_equal(counts, want, err_msg=f"{backend} chunk {chunk} block {mib}")
            if first is None:
                first = rs
            np.testing.assert_array_equal(rs, first)
    assert rs.dtype == np.float64 and np.isneginf(rs[::5, 2]).all()


def test_degenerate_model_every_score_a_near_tie():
    """A collapsed model (all embeddings within float32 noise of each other): every comparison is settled exactly,
    in row ranges that keep the index memory bounded, and the counts are still right on both backends."""
    rng = np.random.default_rng(5)
    base = random_unit(rng, 1, 64)
    pool = np.repeat(base, 400, axis=0) + rng.integers(-2, 3, (400, 64)).astype(np.float32) * np.float32(1e-8)
    queries = np.repeat(base, 30, axis=0)
    rel = np.stack([rng.choice(400, 2, replace=False) for _ in range(30)])
    bounds = [0, 150, 400]
    want = brute_counts(queries, pool, rel, bounds)
    assert 0 < want.sum() < 30 * 2 * 398  # not all ties, not all above
    for backend in ("numpy", "faiss"):
        counts, _ = retrieval.segment_counts(queries, pool, rel, bounds, backend=backend, block_mib=1e-4)
        np.testing.assert_array_equal(counts, want, err_msg=backend)


def test_exact_pair_scores_do_not_depend_on_batching():
    rng = np.random.default_rng(4)
    q, p = random_unit(rng, 50, 384), random_unit(rng, 9000, 384)
    qi, ci = rng.integers(0, 50, 9000), rng.permutation(9000)
    bulk = retrieval.exact_pair_scores(q, qi, p, ci)  # 9 blocks of EXACT_BLOCK
    one = np.array([retrieval.exact_pair_scores(q, qi[k:k + 1], p, ci[k:k + 1])[0] for k in range(0, 9000, 97)])
    np.testing.assert_array_equal(bulk[::97], one)
    np.testing.assert_allclose(bulk, np.einsum("nd,nd->n", q[qi].astype(float), p[ci].astype(float)), atol=1e-14)
    assert retrieval.tie_band(q, p) == pytest.approx(2 * 1.01 * 384 * 2.0**-24 + 8 * 2.0**-24, rel=1e-3)


def test_query_blocks_bound_working_memory():
    assert retrieval.block_queries(13014, "numpy") == 512  # XQuAD-R: the whole 512-query chunk fits in 64 MiB
    assert retrieval.block_queries(16 * 13014, "numpy") == int(64 * 2**20 // (16 * 13014 * 8))
    assert retrieval.block_queries(16 * 13014, "faiss") == int(64 * 2**20 // (16 * 13014 * 48))
    assert retrieval.block_queries(10**9, "numpy") == 1
    with pytest.raises(Exception, match="chunk_size"):
        retrieval.block_queries(10, "numpy", chunk_size=0)


@pytest.mark.slow
def test_real_xquad_r_counts_and_chance_level(xquad, tmp_path):
    """All 11 languages of XQuAD-R with random embeddings: the protocol's counts, and chance-level scores that match
    their closed form (E[AP] with one relevant item among n = H(n)/n)."""
    rng = np.random.default_rng(0)
    q = {lang: random_unit(rng, len(xquad.questions[lang]), 32) for lang in xquad.languages}
    c = {lang: random_unit(rng, len(xquad.candidates[lang]), 32) for lang in xquad.languages}
    r = evaluate_lareqa_embeddings(xquad, q, c)
    assert r.counts["n_queries"] == 13090 and r.counts["n_candidates"] == 13014
    assert r.counts["n_cross_pairs"] == 110 and r.counts["n_mono_settings"] == 11
    assert r.counts["relevant_per_query"] == {"min": 11, "max": 11, "mean": 11.0}
    assert r.counts["rows_per_query_file"] == 13090 * 12
    sizes = [len(xquad.candidates[lang]) for lang in xquad.languages]
    chance = np.mean([sum(1 / k for k in range(1, n + 1)) / n for n in sizes])
    assert r.summary["mono"]["map"] == pytest.approx(chance, rel=0.15)
    # bias: expected range of 11 uniform ranks among 13014 is about 13014 * 10/12
    assert r.summary["multi"]["bias"] == pytest.approx(13014 * 10 / 12, rel=0.05)
    paths = write_eval(r, tmp_path)
    assert load_per_query(paths["per_query"])["ap"].shape == (13090 * 12,)


def test_xquad_subset_counts(xquad):
    """Two articles of the real data, all languages: parallel counts hold (11 relevant per query, 110 pairs)."""
    sub = xquad.subset(xquad.articles[:2])
    rng = np.random.default_rng(1)
    q = {lang: random_unit(rng, len(sub.questions[lang]), 8) for lang in sub.languages}
    c = {lang: random_unit(rng, len(sub.candidates[lang]), 8) for lang in sub.languages}
    r = evaluate_lareqa_embeddings(sub, q, c)
    n_ids = len(sub.questions["en"])
    assert r.counts["n_queries"] == 11 * n_ids
    assert r.counts["n_candidates"] == sum(len(sub.candidates[lang]) for lang in sub.languages)
    assert r.counts["n_cross_pairs"] == 110
    assert r.counts["relevant_per_query"]["min"] == r.counts["relevant_per_query"]["max"] == 11


class FakeModel:
    """Records what it was asked to encode; embeddings are a hash of the text (deterministic)."""

    prompts = {"query": "Q> ", "passage": "P> "}
    max_seq_length = 32

    def __init__(self) -> None:
        self.calls: list[tuple[list[str], str | None]] = []

    def get_sentence_embedding_dimension(self) -> int:
        return 8

    def state_dict(self):
        import torch

        return {"w": torch.arange(8, dtype=torch.float32)}

    def encode(self, texts, prompt=None, **kw):
        self.calls.append((list(texts), prompt))
        out = np.array([[((hash((prompt, t)) >> s) & 0xFF) + 1.0 for s in range(0, 64, 8)] for t in texts])
        return out.astype(np.float32)


def test_encode_texts_dedupes_prefixes_and_normalises():
    m = FakeModel()
    e = encode_texts(m, ["b", "a", "b", "c", "a"], "query", batch_size=2)
    assert e.dtype == np.float32 and e.shape == (5, 8)
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(e[0], e[2])
    assert sorted(m.calls[0][0]) == ["a", "b", "c"] and m.calls[0][1] == "Q> "  # each distinct text once
    encode_texts(m, ["x"], "passage")
    assert m.calls[-1][1] == "P> "


def test_sweep_temps_removes_only_dead_writers_temps(tmp_path):
    import subprocess
    import sys

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    host = provenance._host_tag()
    names = {
        "dead": f".a.npy.{host}-{dead.pid}-0123abcd.tmp",
        "mine": f".b.npy.{host}-{os.getpid()}-0123abcd.tmp",
        "live": f".c.npy.{host}-{os.getppid()}-0123abcd.tmp",
        "other_host": f".d.npy.00000000-{dead.pid}-0123abcd.tmp" if host != "00000000" else ".d.npy.x.tmp",
        "foreign": ".e.npy.tmp",
    }
    for n in names.values():
        (tmp_path / n).write_bytes(b"x")
    assert provenance.sweep_temps(tmp_path, names={"z.npy"}) == 0  # not one of the names asked for
    assert provenance.sweep_temps(tmp_path) == 1
    left = {p.name for p in tmp_path.iterdir()}
    assert left == set(names.values()) - {names["dead"]}
    assert EmbeddingCache(tmp_path).temps_removed == 0


def test_atomic_file_leaves_nothing_on_error(tmp_path):
    target = tmp_path / "x.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), provenance.atomic_file(target) as f:
        f.write(b"half")
        raise RuntimeError("boom")
    assert target.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["x.bin"]
    with provenance.atomic_file(target) as f:
        f.write(b"new")
    assert target.read_bytes() == b"new" and [p.name for p in tmp_path.iterdir()] == ["x.bin"]


def test_write_eval_interrupted_leaves_no_stale_eval_json(tmp_path, monkeypatch):
    """eval.json is the commit record: it goes first and comes back last, so an interrupted write never leaves an
    old eval.json beside new files; `load_run` refuses a per_query.npz that is not the one eval.json names."""
    from hybridbatch.analysis.significance import load_run
    from hybridbatch.errors import ResultsError

    corpus, q, c = hand_corpus()
    r = evaluate_lareqa_embeddings(corpus, q, c)
    write_eval(r, tmp_path)
    load_run(tmp_path)

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez_compressed", boom)
    with pytest.raises(OSError):
        write_eval(r, tmp_path)
    monkeypatch.undo()
    assert not (tmp_path / "eval.json").exists() and not list(tmp_path.glob("*.tmp"))
    with pytest.raises(ResultsError, match="no eval.json"):
        load_run(tmp_path)
    write_eval(r, tmp_path)
    other = evaluate_lareqa_embeddings(*hand_corpus(drop={("A", "de")}))
    write_eval(other, tmp_path / "other")
    (tmp_path / "per_query.npz").write_bytes((tmp_path / "other" / "per_query.npz").read_bytes())
    with pytest.raises(ResultsError, match="checksum"):
        load_run(tmp_path)


def test_out_that_is_a_file_is_refused_readably(tmp_path):
    from hybridbatch.errors import UsageError
    from hybridbatch.outputs import check_out_dir

    f = tmp_path / "a-file.txt"
    f.write_text("x")
    for bad in (f, f / "run"):
        with pytest.raises(UsageError, match="a-file.txt"):
            check_out_dir(bad)
    corpus, q, c = hand_corpus()
    with pytest.raises(UsageError, match="not a folder"):
        write_eval(evaluate_lareqa_embeddings(corpus, q, c), f / "run")
    assert check_out_dir(tmp_path / "new" / "dir") == tmp_path / "new" / "dir"


def test_embedding_cache_hit_corrupt_and_stale(tmp_path):
    m = FakeModel()
    texts = ["one", "two", "three"]
    kw = dict(cache=EmbeddingCache(tmp_path), identity=None, data_checksum="d1")
    a = encode_cached(m, texts, "passage", settings={"context": False}, **kw)
    n = len(m.calls)
    b = encode_cached(m, texts, "passage", settings={"context": False}, **kw)
    assert len(m.calls) == n and np.array_equal(a, b)  # hit
    npy = next(tmp_path.glob("*.npy"))
    npy.write_bytes(npy.read_bytes()[:-7])  # truncate: detected, recomputed, rewritten
    c = encode_cached(m, texts, "passage", settings={"context": False}, **kw)
    assert len(m.calls) == n + 1 and np.array_equal(a, c)
    encode_cached(m, texts, "passage", settings={"context": True}, **kw)  # other setting: miss
    assert len(m.calls) == n + 2
    m.max_seq_length = 16  # a changed max length is a different key too
    encode_cached(m, texts, "passage", settings={"context": False}, **kw)
    assert len(m.calls) == n + 3
    m.max_seq_length = 32
    side = next(p for p in tmp_path.glob("*.json") if json.loads(p.read_text())["meta"]["settings"] == {
        "context": False} and json.loads(p.read_text())["meta"]["max_seq_length"] == 32)
    info = json.loads(side.read_text())
    info["meta"]["data_checksum"] = "other"  # a sidecar that no longer matches its key: stale
    side.write_text(json.dumps(info))
    encode_cached(m, texts, "passage", settings={"context": False}, **kw)
    assert len(m.calls) == n + 4


def test_evaluate_with_tiny_model_cache_and_outputs(tiny_model, xquad_cut, tmp_path):
    from sentence_transformers import SentenceTransformer

    from hybridbatch.data.lookup import load_corpus

    model = SentenceTransformer(str(tiny_model), device="cpu")
    corpus = load_corpus(xquad_cut)
    r1 = evaluate_lareqa(model, corpus, context=True, cache_dir=tmp_path / "cache", model_name=str(tiny_model))
    r2 = evaluate_lareqa(model, corpus, context=True, cache_dir=tmp_path / "cache", model_name=str(tiny_model))
    assert r1.settings["cache_misses"] == 6 and r2.settings["cache_hits"] == 6
    np.testing.assert_array_equal(r1.per_query["ap"], r2.per_query["ap"])
    assert r1.settings["query_prefix"] == "query: " and r1.settings["context"] is True
    paths = write_eval(r1, tmp_path / "run")
    body = json.loads(paths["eval_json"].read_text())
    assert body["provenance"]["git_commit"] and body["provenance"]["data"]["checksum"] == corpus.checksum
    assert set(body["timings"]) >= {"encode_s", "score_s", "metric_s"}
    assert body["tie_rule"].startswith("expected") and body["counts"]["n_cross_pairs"] == 6
    assert set(body["counts"]["ties"]) == {"mono", "cross", "multi"} and "score_spread" in body["health"]
    assert paths["pairs_png"].read_bytes()[:4] == b"\x89PNG"
    md = paths["eval_md"].read_text()
    assert "Mono mAP" in md and "Pair matrix" in md
    pq = load_per_query(paths["per_query"])
    assert set(pq["pool_str"]) == {"de", "en", "zh", "multi"}
    assert len(pq["ap"]) == body["counts"]["rows_per_query_file"] == corpus_queries(corpus) * 4


def test_evaluation_is_deterministic_runs_cache_backends(tiny_model, xquad_cut, tmp_path):
    """Same model + data: identical metrics on a second run, with a cold and a warm cache, on FAISS, and with
    1-query blocks (the embeddings a cache hit returns are the very bytes computed, and ties are settled exactly)."""
    from sentence_transformers import SentenceTransformer

    from hybridbatch.data.lookup import load_corpus

    model = SentenceTransformer(str(tiny_model), device="cpu")
    corpus = load_corpus(xquad_cut)
    kw = dict(model_name=str(tiny_model), backend="numpy")
    base = evaluate_lareqa(model, corpus, **kw)
    assert base.settings["cache"] is None
    runs = {
        "again": evaluate_lareqa(model, corpus, **kw),
        "cold cache": evaluate_lareqa(model, corpus, cache_dir=tmp_path / "c", **kw),
        "warm cache": evaluate_lareqa(model, corpus, cache_dir=tmp_path / "c", **kw),
        "faiss": evaluate_lareqa(model, corpus, cache_dir=tmp_path / "c", model_name=str(tiny_model),
                                 backend="faiss"),
        "1-query blocks": evaluate_lareqa(model, corpus, cache_dir=tmp_path / "c", chunk_size=1, **kw),
    }
    assert runs["cold cache"].settings["cache_misses"] == 6 and runs["warm cache"].settings["cache_hits"] == 6
    for name, r in runs.items():
        assert_same_result(base, r), name


def test_cli_eval_tydiqa_goldp_name_on_a_cut(tiny_model, shared_data, tmp_path):
    """`--data tydiqa-goldp --data-dir DIR` on a cut of the real files (2 languages, 40 articles each): the name is
    resolved, `--split test` reads dev, the protocol is BEIR, and both backends agree."""
    cut = tmp_path / "data" / "tydiqa-goldp"
    cut.mkdir(parents=True)
    for f in ("english_tydiqa_dev.json", "swahili_tydiqa_dev.json", "english_tydiqa_train.json"):
        obj = json.loads((shared_data / "tydiqa-goldp" / f).read_text(encoding="utf-8"))
        obj["data"] = obj["data"][:40]
        (cut / f).write_text(json.dumps(obj, ensure_ascii=False), encoding="utf-8")
    bodies = []
    for backend in ("numpy", "faiss"):
        out = tmp_path / backend
        res = run_cli("eval", "--model", str(tiny_model), "--data", "tydiqa-goldp", "--data-dir",
                      str(tmp_path / "data"), "--no-progress", "--backend", backend, "--out", str(out))
        assert res.exit_code == 0, res.output
        assert "nDCG@10" in res.output and "macro" in res.output
        body = json.loads((out / "eval.json").read_text())
        assert body["kind"] == "beir" and body["languages"] == ["en", "sw"]
        assert body["dataset"].endswith(":dev") and body["counts"]["n_queries"] == 80
        assert load_per_query(out / "per_query.npz")["rank"].shape == (80,)
        bodies.append(body)
    assert bodies[0]["summary"] == bodies[1]["summary"] and bodies[0]["per_language"] == bodies[1]["per_language"]


@pytest.mark.slow
def test_cli_eval_tydiqa_goldp_full(tiny_model, shared_data, tmp_path):
    """The real command on the whole shared TyDi GoldP dev set (9 languages, 5077 questions; no subset flag exists,
    so it is slow; `--max-seq-length 24` keeps encoding the paragraphs short): BEIR protocol chosen automatically,
    per-language numbers for every language, random-model sanity."""
    out = tmp_path / "tydi"
    res = run_cli("eval", "--model", str(tiny_model), "--data", "tydiqa-goldp", "--data-dir", str(shared_data),
                  "--no-progress", "--max-seq-length", "24", "--batch-size", "128", "--cache-dir",
                  str(tmp_path / "cache"), "--out", str(out))
    assert res.exit_code == 0, res.output
    body = json.loads((out / "eval.json").read_text())
    assert body["kind"] == "beir" and len(body["languages"]) == 9
    assert body["counts"]["n_queries"] == 5077  # candidates: the distinct paragraphs (4489)
    assert body["counts"]["n_candidates"] == sum(v["n_candidates"] for v in body["per_language"].values()) > 4000
    for lang, v in body["per_language"].items():
        assert 0 <= v["mrr10"] <= v["ndcg10"] <= v["recall100"] <= 1, lang
        # a random model is near chance (Recall@100 = 100 / pool) or a little above (lexical overlap), far from 1
        assert 0.5 * min(1.0, 100 / v["n_candidates"]) <= v["recall100"] and v["mrr10"] < 0.9, (lang, v)
    assert body["settings"]["cache_misses"] == 18 and set(body["settings"]) >= {"backend", "split", "data"}
    assert body["model"]["max_seq_length"] == 24
    assert (out / "eval.md").read_text().count("|") > 20


def corpus_queries(corpus: QACorpus) -> int:
    return sum(len(v) for v in corpus.questions.values())


def test_beir_known_answer():
    cands = {"en": [Candidate("en", f"p{i}", f"p{i}", f"0/{i}", "a") for i in range(3)]}
    qs = {"en": [Question("x", "en", "qx", 2, "a"), Question("y", "en", "qy", 0, "a")]}
    corpus = QACorpus("beir-hand", qs, cands, "c")
    # qx: candidate 2 ranks 2 (cand 1 closer); qy: candidate 0 ranks 1
    r = evaluate_beir_embeddings(corpus, {"en": unit([0.0, 1.0])}, {"en": unit([1.05, 0.1, 0.2])})
    assert r.per_language["en"]["mrr10"] == pytest.approx((1 / 2 + 1) / 2)
    assert r.per_language["en"]["ndcg10"] == pytest.approx((1 / np.log2(3) + 1) / 2)
    assert r.per_language["en"]["recall100"] == pytest.approx(1.0)


def test_beir_on_real_tydiqa_goldp(shared_data):
    corpus_mod = pytest.importorskip("hybridbatch.data")
    if not hasattr(corpus_mod, "read_squad"):
        pytest.skip("corpus.read_squad not available yet")
    corpus = corpus_mod.load_corpus("tydiqa-goldp", shared_data)
    rng = np.random.default_rng(0)
    q = {lang: random_unit(rng, len(corpus.questions[lang]), 16) for lang in corpus.languages}
    c = {lang: random_unit(rng, len(corpus.candidates[lang]), 16) for lang in corpus.languages}
    r = evaluate_beir_embeddings(corpus, q, c)
    assert set(r.per_language) == set(corpus.languages) and len(corpus.languages) == 9
    for lang, v in r.per_language.items():
        # random ranking: Recall@100 is about 100 / pool size
        n = len(corpus.candidates[lang])
        assert v["recall100"] == pytest.approx(min(1.0, 100 / n), abs=0.08)


# ---- CLI --------------------------------------------------------------------------------------------------------------


def run_cli(*args: str):
    from typer.testing import CliRunner

    from hybridbatch.cli import app

    return CliRunner().invoke(app, list(args))


@pytest.mark.slow
def test_cli_eval_and_compare(tiny_model, xquad_cut, tmp_path):
    out_a = tmp_path / "a"
    res = run_cli("eval", "--model", str(tiny_model), "--data", str(xquad_cut), "--split", "all",
                  "--no-progress", "--out", str(out_a))
    assert res.exit_code == 0, res.output
    assert "Mono" in res.output and "Bias" in res.output and (out_a / "eval.json").exists() and (out_a / "per_query.npz").exists()
    out_b = tmp_path / "b"
    res = run_cli("eval", "--model", str(tiny_model), "--data", str(xquad_cut), "--split", "all", "--context",
                  "--no-progress", "--backend", "faiss", "--out", str(out_b))
    assert res.exit_code == 0, res.output
    res = run_cli("compare", str(out_a), str(out_b / "eval.json"), "--n-boot", "200", "--n-perm", "200")
    assert res.exit_code == 0, res.output
    cmp = json.loads((out_b / "compare.json").read_text())
    assert [r["name"] for r in cmp["rows"]][:3] == ["Mono mAP", "Cross mAP", "Multi mAP"]
    # other dataset: a clear message, exit 2
    other = tmp_path / "other"
    other.mkdir()
    body = json.loads((out_a / "eval.json").read_text())
    body["checksum"], body["dataset"] = "0" * 64, "mlqa-r"
    (other / "eval.json").write_text(json.dumps(body))
    (other / "per_query.npz").write_bytes((out_a / "per_query.npz").read_bytes())
    from test_cli_errors import run_cli as run_main  # through cli.main, which turns the error into exit 2

    code, text = run_main(["compare", str(out_a), str(other)])
    assert code == 2 and "different datasets" in text and "Traceback" not in text, text


def test_cli_eval_bad_inputs(tmp_path, xquad_cut):
    """A folder that is no model and a folder without data: exit 2 and a message naming it, no traceback (through
    `cli.main` in this process, as tests/test_cli_errors.py runs every command's bad input)."""
    from test_cli_errors import run_cli as run_main

    not_model = tmp_path / "not-a-model"
    not_model.mkdir()
    (not_model / "readme.txt").write_text("hello")
    empty = tmp_path / "empty-data"
    empty.mkdir()
    for args, needle in (
        (["--model", str(not_model), "--data", str(xquad_cut), "--split", "all"], "not-a-model"),
        (["--model", str(not_model), "--data", str(empty)], "empty-data"),
    ):
        code, text = run_main(["eval", *args, "--out", str(tmp_path / "o")])
        assert code == 2, text
        assert needle in text and "Traceback" not in text
