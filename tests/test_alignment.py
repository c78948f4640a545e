"""Alignment measures against hand-computed values and naive loop implementations, and `align` / `hybridbatch align`
on the tiny model over the real shared data."""

from __future__ import annotations

import itertools
import json
import math
import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from hybridbatch import data as corpus
from hybridbatch.analysis import alignment as al
from hybridbatch.analysis import alignment_run as run
from hybridbatch.data import parallel
from hybridbatch.errors import UsageError
from hybridbatch.experiments import alignment as exp
from hybridbatch.report import alignment as ar

XQUAD_LANGS = ["ar", "de", "el", "en", "es", "hi", "ru", "th", "tr", "vi", "zh"]
TATOEBA_LANGS = ["ar", "de", "el", "es", "hi", "ro", "ru", "th", "tr", "vi", "zh"]

# ---- naive references: loops over items, explicit Gram matrices, the U-statistic by definition ---------------------


def naive_cos(x: np.ndarray, y: np.ndarray) -> float:
    return float(x @ y / (np.linalg.norm(x) * np.linalg.norm(y)))


def naive_parallel_cosine(X, Y) -> float:
    return sum(naive_cos(X[i], Y[i]) for i in range(len(X))) / len(X)


def naive_clsim(X, Y) -> float:
    n = len(X)
    off = [naive_cos(X[i], Y[j]) for i in range(n) for j in range(n) if i != j]
    return naive_parallel_cosine(X, Y) - sum(off) / len(off)


def naive_cka(X, Y) -> float:
    """Gram-matrix form: HSIC = tr(K H L H) with the centring matrix H (Kornblith et al. 2019, eq. 3-4)."""
    n = len(X)
    H = np.eye(n) - np.ones((n, n)) / n
    K, L = X @ X.T, Y @ Y.T

    def hsic(A, B):
        return np.trace(A @ H @ B @ H)

    return float(hsic(K, L) / math.sqrt(hsic(K, K) * hsic(L, L)))


def naive_hsic_u(X, Y) -> float:
    """Unbiased HSIC by its definition (Song et al. 2012): the mean over all ordered 4-tuples of distinct indices of
    k_ij l_ij + k_ij l_qr - 2 k_ij l_iq. O(n^4): only for tiny n."""
    n = len(X)
    K, L = X @ X.T, Y @ Y.T
    total = 0.0
    for i, j, q, r in itertools.permutations(range(n), 4):
        total += K[i, j] * L[i, j] + K[i, j] * L[q, r] - 2 * K[i, j] * L[i, q]
    return total / math.perm(n, 4)


def naive_cka_debiased(X, Y) -> float:
    return naive_hsic_u(X, Y) / math.sqrt(naive_hsic_u(X, X) * naive_hsic_u(Y, Y))


def random_orthogonal(d: int, rng) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(d, d)))
    return q * np.sign(np.diag(r))


# ---- pure functions ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cka", [al.linear_cka, al.linear_cka_debiased])
def test_cka_invariances(cka):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(60, 8)) + 3.0  # off-centre on purpose: CKA centres columns itself
    Q = random_orthogonal(8, rng)
    assert np.allclose(Q.T @ Q, np.eye(8))
    Y = rng.normal(size=(60, 5))
    assert cka(X, X) == pytest.approx(1.0, abs=1e-12)
    assert cka(X, X @ Q) == pytest.approx(1.0, abs=1e-12)
    assert cka(X, 7.5 * X) == pytest.approx(1.0, abs=1e-12)
    assert cka(X, -0.01 * X) == pytest.approx(1.0, abs=1e-12)
    # isotropic scaling and translation of either side leave CKA unchanged
    base = cka(X, Y)
    assert cka(4.0 * X, 0.2 * Y) == pytest.approx(base, abs=1e-12)
    assert cka(X - 100.0, Y + 5.0) == pytest.approx(base, abs=1e-10)
    assert cka(X @ Q, Y) == pytest.approx(base, abs=1e-12)
    # symmetric in its arguments
    assert cka(Y, X) == pytest.approx(base, abs=1e-12)


def test_cka_of_independent_matrices_is_small_and_debiased_is_near_zero():
    rng = np.random.default_rng(2)
    X, Y = rng.normal(size=(2000, 16)), rng.normal(size=(2000, 16))
    assert 0 <= al.linear_cka(X, Y) < 0.03  # ~ d / n = 0.008
    assert abs(al.linear_cka_debiased(X, Y)) < 0.01
    # few items, many features: plain CKA is strongly biased upwards (~ d / (n + d)), the debiased one is not
    Xs, Ys = rng.normal(size=(40, 40)), rng.normal(size=(40, 40))
    assert al.linear_cka(Xs, Ys) > 0.35
    assert abs(al.linear_cka_debiased(Xs, Ys)) < 0.1


def test_parallel_cosine_of_identical_rows_is_one():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(10, 4))
    assert al.parallel_cosine(X, X) == pytest.approx(1.0, abs=1e-15)
    assert al.parallel_cosine(X, 3 * X) == pytest.approx(1.0, abs=1e-15)  # cosine ignores length
    assert al.parallel_cosine(X, -X) == pytest.approx(-1.0, abs=1e-15)


def test_clsim_hand_computed_3x2():
    X = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    Y = np.array([[2.0, 0.0], [0.0, 3.0], [-1.0, 1.0]])
    # unit rows: u = (1,0), (0,1), (1,1)/r2; v = (1,0), (0,1), (-1,1)/r2
    # parallel: 1, 1, (-1+1)/2 = 0 -> 2/3
    # non-parallel (i != j): u1v2 = 0, u1v3 = -1/r2, u2v1 = 0, u2v3 = 1/r2, u3v1 = 1/r2, u3v2 = 1/r2
    #   -> sum r2, mean r2/6
    assert al.parallel_cosine(X, Y) == pytest.approx(2 / 3, abs=1e-15)
    assert al.clsim(X, Y) == pytest.approx(2 / 3 - math.sqrt(2) / 6, abs=1e-15)  # 0.43096...
    assert al.clsim(Y, X) == pytest.approx(al.clsim(X, Y), abs=1e-15)


def test_clsim_is_zero_when_translations_are_no_closer_than_random_pairs():
    # every row identical on both sides: parallel and non-parallel cosines are all 1 -> CLSim 0, parallel cosine 1
    X = np.tile([0.3, 0.4], (5, 1))
    assert al.parallel_cosine(X, X) == pytest.approx(1.0)
    assert al.clsim(X, X) == pytest.approx(0.0, abs=1e-15)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_agreement_with_naive_loops(seed):
    rng = np.random.default_rng(seed)
    n = 7
    X = rng.normal(size=(n, 3)) + rng.normal(size=3)
    Y = X[:, :2] @ rng.normal(size=(2, 4)) + 0.5 * rng.normal(size=(n, 4))  # related, not identical
    assert al.parallel_cosine(X[:, :3], Y[:, :3]) == pytest.approx(naive_parallel_cosine(X[:, :3], Y[:, :3]),
                                                                   abs=1e-10)
    Z = rng.normal(size=(n, 3))
    assert al.clsim(X, Z) == pytest.approx(naive_clsim(X, Z), abs=1e-10)
    assert al.linear_cka(X, Y) == pytest.approx(naive_cka(X, Y), abs=1e-10)
    assert al.linear_cka_debiased(X, Y) == pytest.approx(naive_cka_debiased(X, Y), abs=1e-10)
    # the uncentred closed form of the unbiased HSIC equals the definition too (translation invariance)
    assert al._hsic_unbiased(X, Y) == pytest.approx(naive_hsic_u(X, Y), abs=1e-10)


def test_debiased_cka_undefined_below_four_items():
    X = np.arange(6.0).reshape(3, 2)
    assert math.isnan(al.linear_cka_debiased(X, X))
    assert math.isnan(al.linear_cka(np.ones((5, 2)), np.arange(10.0).reshape(5, 2)))  # constant side: no variance


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="same rows"):
        al.linear_cka(np.zeros((4, 2)), np.zeros((5, 2)))
    with pytest.raises(ValueError, match="2-D"):
        al.clsim(np.zeros(4), np.zeros(4))


def test_translation_accuracy_hand_computed():
    X = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    assert al.translation_accuracy(X, X) == (1.0, 1.0)
    Y = np.array([[1.0, 0.0], [1.0, 0.9], [0.0, 1.0]])
    # X->Y: x0=(1,0) best y0 (1.0) ok; x1=(0,1) best y2 (1.0) miss; x2=(1,1) best y1 (cos .9986) miss -> 1/3
    # Y->X: y0 best x0 ok; y1=(1,.9) best x2 (.9986) miss; y2=(0,1) best x1 miss -> 1/3
    assert al.translation_accuracy(X, Y) == pytest.approx((1 / 3, 1 / 3))


def test_translation_accuracy_ties_are_misses_and_labels_accept_duplicates():
    # two identical candidates: query 0's gold ties with a wrong row -> miss under the strict rule
    X = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    Y = np.array([[1.0, 0.0], [1.0, 0.0], [-1.0, 0.0]])
    ab, _ = al.translation_accuracy(X, Y)
    assert ab == pytest.approx(1 / 3)  # x0: tie y0/y1 -> miss; x1: tie y0/y1 (cos 0) -> miss; x2 ok
    # same rows, but rows 0 and 1 are one answer sentence on the Y side (label "s") paired with two X sentences:
    # retrieving either copy is correct for queries 0 and 1.
    ab, ba = al.translation_accuracy(X, Y, x_labels=["p", "q", "r"], y_labels=["s", "s", "t"])
    # x0: gold {y0, y1} (1) beats y2 (-1) -> ok; x1: gold {y0, y1} scores 0, ties with wrong y2 (0) -> miss; x2 ok
    assert ab == pytest.approx(2 / 3)
    # Y->X: distinct query texts are "s" and "t": s -> x0 (gold) ok; t -> x2 ok
    assert ba == pytest.approx(1.0)


def test_measures_memory_safe_for_13k_items():
    rng = np.random.default_rng(4)
    n, d = 13_000, 32
    X = rng.normal(size=(n, d)).astype(np.float32)
    Y = (X + 0.5 * rng.normal(size=(n, d))).astype(np.float32)
    tracemalloc.start()
    try:
        vals = [al.parallel_cosine(X, Y), al.clsim(X, Y), al.linear_cka(X, Y), al.linear_cka_debiased(X, Y)]
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 40e6  # one n x n float64 matrix would be 1.35 GB
    assert all(math.isfinite(v) for v in vals)
    assert 0.8 < vals[2] <= 1.0 and 0.8 < vals[3] <= 1.0


# ---- align over the real data --------------------------------------------------------------------------------------

TATOEBA_CODES = {"ara": "ar", "cmn": "zh", "deu": "de", "ell": "el", "hin": "hi", "ron": "ro", "rus": "ru",
                 "spa": "es", "tur": "tr", "vie": "vi", "tha": "th"}


def _tiny_read_tatoeba(folder: Path) -> dict[str, tuple[list[str], list[str]]]:
    """Stand-in for corpus.read_tatoeba while it is being written: line-aligned files, ISO 639-1 keys."""
    out = {}
    for p in sorted(Path(folder).glob("tatoeba.*-eng.eng")):
        code = p.name.split(".")[1].split("-")[0]
        xs = p.with_name(f"tatoeba.{code}-eng.{code}").read_text(encoding="utf-8").split("\n")
        en = p.read_text(encoding="utf-8").split("\n")
        out[TATOEBA_CODES[code]] = (xs[:-1] if xs[-1] == "" else xs, en[:-1] if en[-1] == "" else en)
    return out


@pytest.fixture
def tatoeba_reader(monkeypatch):
    if not hasattr(corpus, "read_tatoeba"):
        monkeypatch.setattr(corpus, "read_tatoeba", _tiny_read_tatoeba, raising=False)


def perturbed(model_dir: Path, scale: float = 0.5):
    """The tiny model with noise on its transformer layers: a stand-in for 'after fine-tuning', passed as an
    object (the other path through `align`)."""
    import torch
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(model_dir), device="cpu")
    gen = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if ".layer." in name:
                p.add_(scale * torch.randn(p.shape, generator=gen))
    return model


def reference_measures(model, s: parallel.ParallelSet, prefix: str) -> dict[str, float]:
    """The measures of one parallel set, written apart from analysis.alignment: the full n x n cosine matrix
    (sklearn), kernel-form CKA with the centring matrix H, P@1 by argmax over distinct texts."""
    from sklearn.metrics.pairwise import cosine_similarity

    X = np.asarray(model.encode([prefix + t for t in s.texts_a], prompt="", convert_to_numpy=True), np.float64)
    Y = np.asarray(model.encode([prefix + t for t in s.texts_b], prompt="", convert_to_numpy=True), np.float64)
    n = len(X)
    S = cosine_similarity(X, Y)
    off = ~np.eye(n, dtype=bool)
    H = np.eye(n) - np.ones((n, n)) / n
    K, L = H @ X @ X.T @ H, H @ Y @ Y.T @ H
    return {"parallel_cosine": float(np.diag(S).mean()), "clsim": float(np.diag(S).mean() - S[off].mean()),
            "cka": float(np.trace(K @ L) / np.sqrt(np.trace(K @ K) * np.trace(L @ L))),
            "p_at_1_ab": float(np.mean(S.argmax(axis=1) == np.arange(n))),
            "p_at_1_ba": float(np.mean(S.argmax(axis=0) == np.arange(n)))}


def check_result(res: al.AlignResult, limit: int, model, data) -> None:
    assert set(res.pairs) == set(parallel.ALIGN_SOURCES)
    for src in ("xquad-r-questions", "xquad-r-answers"):
        got = {(p.a, p.b) for p in res.pairs[src]}
        assert got == set(itertools.combinations(XQUAD_LANGS, 2))  # all 55 pairs, each once
    assert {(p.a, p.b) for p in res.pairs["tatoeba"]} == {(lang, "en") for lang in TATOEBA_LANGS}
    for src, rows in res.pairs.items():
        for p in rows:
            assert 1 <= p.n <= limit
            if src != "xquad-r-answers":  # answers may be fewer: repeated answer sentences are dropped
                assert p.n == limit
    # every pair of the sources without repeated texts, against the brute force written apart (float32 encodings)
    for src in ("xquad-r-questions", "tatoeba"):
        sets = {(s.a, s.b): s for s in data[src][0]}
        for p in res.pairs[src]:
            s = sets[(p.a, p.b)]
            if len(set(s.texts_a)) < len(s.texts_a) or len(set(s.texts_b)) < len(s.texts_b):
                continue
            ref = reference_measures(model, s, "query: ")
            for measure, value in ref.items():
                assert getattr(p, measure) == pytest.approx(value, abs=2e-5), (src, p.a, p.b, measure)
    for src in res.pairs:
        macro = res.macro(src)
        assert set(macro) == set(al.MEASURES)
        assert macro["cka"] == pytest.approx(np.mean([p.cka for p in res.pairs[src]]))


def test_align_tiny_model_real_data(tiny_model, xquad, shared_data, tmp_path, tatoeba_reader):
    limit = 6
    data = parallel.load_sources(parallel.ALIGN_SOURCES, shared_data, limit)
    ticks: list[tuple[str, int, int]] = []
    res_a = run.align(str(tiny_model), data_dir=shared_data, limit=limit, loaded=data,
                      progress=lambda *t: ticks.append(t))
    res_b = run.align(perturbed(tiny_model), data_dir=shared_data, limit=limit, loaded=data,
                      model_name="tiny-perturbed")
    # progress comes through the callback only: per source one stage, from 0 to every distinct text encoded
    stages = list(dict.fromkeys(t[0] for t in ticks))
    assert stages == [f"encoding ({tiny_model}: {src})" for src in parallel.ALIGN_SOURCES]
    for stage in stages:
        done = [d for s, d, _ in ticks if s == stage]
        total = {n for s, _, n in ticks if s == stage}
        assert done[0] == 0 and done == sorted(done) and len(total) == 1 and done[-1] == total.pop()
    from sentence_transformers import SentenceTransformer

    check_result(res_a, limit, SentenceTransformer(str(tiny_model), device="cpu"), data)
    check_result(res_b, limit, perturbed(tiny_model), data)
    # parallel questions are the same ids: the en-de pair holds exactly the first 6 questions of each
    en_de = next(s for s in data["xquad-r-questions"][0] if (s.a, s.b) == ("de", "en"))
    assert en_de.texts_b == [q.text for q in xquad.questions["en"][:limit]]

    paths = exp.write_align([res_a, res_b], tmp_path / "out", annotate=False)  # values in cells: CLI test
    obj = json.loads(paths["json"].read_text())
    prov = obj["provenance"]
    assert prov["git_commit"] and prov["models"] == {"A": str(tiny_model), "B": "tiny-perturbed"}
    pa = obj["models"]["A"]["provenance"]
    assert pa["model"] == str(tiny_model) and pa["settings"]["limit"] == limit
    assert len(pa["data"]["xquad-r-questions"]["checksum"]) == 64 and len(pa["data"]["tatoeba"]["checksum"]) == 64
    assert pa["seconds"]["total"] > 0 and "encode" in pa["seconds"]
    assert pa["settings"]["encoding"] == {"xquad-r-questions": ["query"], "xquad-r-answers": ["passage"],
                                          "tatoeba": ["query"]}
    # B - A, per pair and macro, equals the difference of the two runs
    for src in parallel.ALIGN_SOURCES:
        ja, jb = obj["models"]["A"]["sources"][src], obj["models"]["B"]["sources"][src]
        assert len(ja["pairs"]) == (55 if src != "tatoeba" else 11)
        d = obj["difference"]["sources"][src]
        for m in ("clsim", "cka"):
            assert d["macro"][m] == pytest.approx(jb["macro"][m] - ja["macro"][m], abs=1e-12)
            assert d["pairs"][0][m] == pytest.approx(jb["pairs"][0][m] - ja["pairs"][0][m], abs=1e-12)
    md = paths["markdown"].read_text()
    assert "## xquad-r-answers" in md and "| B - A |" in md and "| de-en |" in md and "| ro-en |" in md
    plots = sorted((tmp_path / "out" / "plots").glob("*.png"))
    assert len(plots) == len(parallel.ALIGN_SOURCES) * len(al.MEASURES)
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in plots)


def test_split_keeps_alignment_items_out_of_the_training_articles(xquad, shared_data):
    train, test = xquad.split()
    data = parallel.load_sources(["xquad-r-questions", "xquad-r-answers"], shared_data, 8, split="test")
    en_de = next(s for s in data["xquad-r-questions"][0] if (s.a, s.b) == ("de", "en"))
    assert en_de.texts_b == [q.text for q in test.questions["en"][:8]]
    held_out = {q.text for q in test.questions["en"]}
    trained = {q.text for q in train.questions["en"]}
    assert set(en_de.texts_b) <= held_out and not set(en_de.texts_b) & trained
    assert parallel.load_sources(["xquad-r-questions"], shared_data, 8, split="train")["xquad-r-questions"][0] != \
        data["xquad-r-questions"][0]
    with pytest.raises(UsageError, match="--split must be one of test, train, all"):
        parallel.load_sources(["tatoeba"], shared_data, 8, split="dev")



    rows = [al.PairResult("ar", "de", 5, 0.5, 0.1, 0.6, 0.2, 0.8, 0.4),
            al.PairResult("ar", "en", 5, 0.7, 0.3, 0.9, 0.5, 1.0, 0.6),
            al.PairResult("de", "en", 5, 0.6, 0.2, 0.7, 0.3, 0.2, 0.0)]
    rl, cl, M = ar.pair_matrix(rows, "cka")
    assert rl == cl == ["ar", "de", "en"]
    assert M[0, 1] == M[1, 0] == 0.6 and M[1, 2] == M[2, 1] == 0.7 and math.isnan(M[0, 0])
    _, _, P = ar.pair_matrix(rows, "p_at_1")
    assert P[0, 1] == 0.8 and P[1, 0] == 0.4  # [query language, candidate language]
    piv = [al.PairResult("ar", "en", 5, 0.7, 0.3, 0.9, 0.5, 1.0, 0.6),
           al.PairResult("de", "en", 5, 0.6, 0.2, 0.7, 0.3, 0.2, 0.0)]
    rl, cl, P = ar.pair_matrix(piv, "p_at_1")
    assert rl == ["X->en", "en->X"] and cl == ["ar", "de"] and P.tolist() == [[1.0, 0.2], [0.6, 0.0]]


# ---- CLI -----------------------------------------------------------------------------------------------------------


def test_cli_missing_data_folder_exits_2(tmp_path):
    missing = tmp_path / "no-such-data"
    proc = subprocess.run(
        [sys.executable, "-m", "hybridbatch.cli", "align", "--model", "embedded", "--data-dir", str(missing),
         "--out", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    err = " ".join(proc.stderr.split())
    assert "error:" in err and str(missing) in err and "does not exist" in err and "--data-dir" in err
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists()


def test_cli_align_writes_report(tiny_model, shared_data, tmp_path, tatoeba_reader):
    from typer.testing import CliRunner

    from hybridbatch.cli import app

    result = CliRunner().invoke(app, [
        "align", "--model", str(tiny_model), "--data-dir", str(shared_data), "--out", str(tmp_path / "o"),
        "--source", "tatoeba", "--limit", "4", "--no-progress",
    ])
    assert result.exit_code == 0, result.output
    obj = json.loads((tmp_path / "o" / "align.json").read_text())
    assert list(obj["models"]) == ["A"] and "difference" not in obj
    assert len(obj["models"]["A"]["sources"]["tatoeba"]["pairs"]) == 11
    assert len(list((tmp_path / "o" / "plots").glob("*.png"))) == len(al.MEASURES)


def test_cli_rejects_three_models_and_tiny_limit(shared_data, tmp_path):
    with pytest.raises(UsageError, match="one or two"):
        exp.run_align(["a", "b", "c"], data_dir=shared_data, out_dir=tmp_path)
    with pytest.raises(UsageError, match="at least 4"):
        exp.run_align(["a"], data_dir=shared_data, out_dir=tmp_path, limit=2)
    with pytest.raises(UsageError, match="unknown alignment source"):
        parallel.load_sources(["wikipedia"], shared_data, None)


def test_dataset_missing_inside_existing_data_folder(tmp_path, monkeypatch):
    monkeypatch.delenv("HYBRIDBATCH_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # no user-cache copy either
    (tmp_path / "data").mkdir()
    with pytest.raises(UsageError, match="tatoeba-laser"):
        parallel.load_sources(["tatoeba"], tmp_path / "data", 10)
    with pytest.raises(UsageError, match="xquad-r"):
        parallel.load_sources(["xquad-r-questions"], tmp_path / "data", 10)


@pytest.mark.slow
def test_real_model_is_aligned_and_random_model_is_not(embedded_model, tiny_model, shared_data, tatoeba_reader):
    """multilingual-e5-small finds translations and its translations stand out from random pairs; the random tiny
    BERT has a near-1 raw cosine (anisotropy) but ~0 CLSim: the reason CLSim exists."""
    data = parallel.load_sources(["tatoeba"], shared_data, 30)
    e5 = run.align(str(embedded_model), data_dir=shared_data, loaded=data, model_name="e5")
    rnd = run.align(str(tiny_model), data_dir=shared_data, loaded=data)
    m_e5, m_rnd = e5.macro("tatoeba"), rnd.macro("tatoeba")
    assert m_e5["p_at_1"] > 0.8 and m_e5["clsim"] > 0.08
    assert m_rnd["parallel_cosine"] > 0.9 and abs(m_rnd["clsim"]) < 0.03 and m_rnd["p_at_1"] < 0.5
    assert m_e5["cka_debiased"] > m_rnd["cka_debiased"] + 0.2
    de = next(p for p in e5.pairs["tatoeba"] if p.a == "de")
    assert de.p_at_1_ab >= 0.9 and de.p_at_1_ba >= 0.9
