"""Post-hoc language debiasing (`hybridbatch.analysis.debias`, `hybridbatch debias`; docs/DEBIAS.md).

The core is checked on embeddings with a planted language subspace (each language = shared semantics + its own
offset in a known low-dimensional subspace, as LSAR models them), the model folder on the tiny random model and
the real XQuAD-R sentences, and loading it in a Python where hybridbatch cannot be imported."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hybridbatch.analysis.debias import (
    DEBIAS_JSON,
    LanguageSubspace,
    check_rank,
    debias_model,
    estimate_lir,
    estimate_lsar,
    projection_matrix,
    read_text_files,
    remove_subspace,
    training_sentences,
)
from hybridbatch.analysis.debias_ranks import parse_ranks, project_corpus
from hybridbatch.errors import DataError, UsageError

LANGS = ["ar", "de", "el", "en", "es", "hi", "ru", "th", "tr", "vi", "zh"]


def planted(n: int = 200, dim: int = 48, lang_rank: int = 3, seed: int = 0):
    """Per language: unit rows = normalise(semantic noise + that language's offset), the offsets lying in a random
    `lang_rank`-dimensional subspace Q. Returns (embeddings by language, Q)."""
    rng = np.random.default_rng(seed)
    Q, _ = np.linalg.qr(rng.normal(size=(dim, lang_rank)))
    shared = rng.normal(size=dim)
    emb = {}
    for lang in LANGS:
        offset = Q @ rng.normal(scale=3.0, size=lang_rank)
        X = shared + offset + rng.normal(scale=0.5, size=(n, dim))
        emb[lang] = X / np.linalg.norm(X, axis=1, keepdims=True)
    return emb, Q


# ---- the pure core ---------------------------------------------------------------------------------------------------


def test_projection_removes_the_estimated_subspace_exactly():
    emb, _ = planted()
    sub = estimate_lsar(emb)
    assert sub.max_rank == len(LANGS) - 1
    X = np.concatenate(list(emb.values()))
    for rank in (1, 3, 10):
        U = sub.basis_for(rank)
        np.testing.assert_allclose(U.T @ U, np.eye(rank), atol=1e-12)  # orthonormal
        P = sub.projection(rank)
        np.testing.assert_allclose(U.T @ (X @ P.T).T, 0, atol=1e-12)  # U^T P x = 0
        np.testing.assert_allclose(P @ P, P, atol=1e-12)  # idempotent
        np.testing.assert_allclose(P, P.T, atol=1e-15)  # orthogonal projection
        Y = remove_subspace(X, U)
        np.testing.assert_allclose(Y @ U, 0, atol=1e-6)  # float32 output
        np.testing.assert_allclose(np.linalg.norm(Y, axis=1), 1, atol=1e-6)  # re-normalised
        np.testing.assert_allclose(remove_subspace(Y, U), Y, atol=1e-6)  # idempotent after normalising too
        np.testing.assert_allclose(Y, (X @ P.T) / np.linalg.norm(X @ P.T, axis=1, keepdims=True), atol=1e-6)


def test_lsar_recovers_a_planted_language_subspace():
    emb, Q = planted(lang_rank=3)
    sub = estimate_lsar(emb)
    U = sub.basis_for(3)
    # principal angles between span(U) and span(Q): all cosines ~1
    cosines = np.linalg.svd(U.T @ Q, compute_uv=False)
    assert cosines.min() > 0.99, cosines
    # the planted subspace carries most of the spread of the language means; the rest is noise and the norm
    # differences that normalising brings
    assert sub.singular_values[2] > 2 * sub.singular_values[3]
    # with every direction removed (rank L - 1) the projected language means coincide
    P = sub.projection(len(LANGS) - 1)
    means = sub.means @ P.T
    np.testing.assert_allclose(means - means.mean(axis=0), 0, atol=1e-12)


def test_lir_finds_each_languages_own_dominant_direction():
    rng = np.random.default_rng(1)
    dim = 32
    emb, own = {}, {}
    for lang in LANGS[:4]:
        v = rng.normal(size=dim)
        own[lang] = v / np.linalg.norm(v)
        emb[lang] = 4.0 * own[lang] + rng.normal(scale=0.3, size=(150, dim))
    comps = estimate_lir(emb, 2)
    for lang, C in comps.items():
        assert C.shape == (dim, 2)
        np.testing.assert_allclose(C.T @ C, np.eye(2), atol=1e-12)
        assert abs(C[:, 0] @ own[lang]) > 0.99
    projected = project_corpus({k: v.astype(np.float32) for k, v in emb.items()}, comps)
    for lang in comps:  # each language loses its own components (exactly) and so its planted direction
        np.testing.assert_allclose(projected[lang] @ comps[lang], 0, atol=1e-5)
        before = emb[lang] / np.linalg.norm(emb[lang], axis=1, keepdims=True)
        assert np.abs(before @ own[lang]).mean() > 0.9
        assert np.abs(projected[lang] @ own[lang]).mean() < 0.05


def test_rank_checks():
    check_rank(10, 11, 384)
    check_rank(0, 2, 8)
    for rank, n_langs, dim, msg in [(11, 11, 384, "at most 10 directions"), (2, 2, 384, "too large"),
                                    (5, 11, 4, "smaller than the embedding dimension"), (-1, 11, 384, ">= 0")]:
        with pytest.raises(UsageError, match=msg):
            check_rank(rank, n_langs, dim)
    with pytest.raises(UsageError, match="at least 2 languages"):
        estimate_lsar({"en": np.ones((3, 4))})
    with pytest.raises(UsageError, match="'de' has no sentences"):
        estimate_lsar({"en": np.ones((3, 4)), "de": np.zeros((0, 4))})
    assert parse_ranks("8, 0,2,2") == [0, 2, 8]
    with pytest.raises(UsageError, match="comma-separated"):
        parse_ranks("1,two")


def test_subspace_round_trip(tmp_path):
    sub = estimate_lsar(planted(n=20)[0])
    sub.save(tmp_path / "s.npz")
    back = LanguageSubspace.load(tmp_path / "s.npz")
    assert back.languages == sub.languages and back.counts == sub.counts
    np.testing.assert_array_equal(back.basis, sub.basis)
    np.testing.assert_array_equal(projection_matrix(back.basis_for(4)), sub.projection(4))


# ---- text sources ----------------------------------------------------------------------------------------------------


def test_default_text_is_training_articles_only(shared_data, xquad):
    src = training_sentences(shared_data)
    train, test = xquad.split()
    assert src.articles == train.articles and not set(src.articles) & set(test.articles)
    assert sorted(src.sentences) == xquad.languages
    for lang in xquad.languages:
        train_texts = {c.text for c in train.candidates[lang]}
        test_only = {c.text for c in test.candidates[lang]} - train_texts
        assert test_only, "the test articles must have sentences of their own for this check to mean anything"
        assert not test_only & set(src.sentences[lang]), lang
        assert set(src.sentences[lang]) == {t for t in train_texts if t.strip()}


def test_text_files_language_from_name(tmp_path):
    (tmp_path / "deu.txt").write_text("Hallo Welt.\n\nGuten Tag.\nHallo Welt.\n", encoding="utf-8")
    (tmp_path / "english.txt").write_text("Hello world.\n", encoding="utf-8")
    src = read_text_files([tmp_path / "deu.txt", tmp_path / "english.txt"])
    assert src.sentences == {"de": ["Hallo Welt.", "Guten Tag."], "en": ["Hello world."]}
    assert len(src.checksum) == 64


@pytest.mark.parametrize("files, error, message", [
    ({"de.txt": "x\n", "en.txt": "\n  \n"}, DataError, "no sentences for language 'en'"),
    ({"de.txt": "x\n"}, UsageError, "at least 2 languages"),
    ({"de.txt": "x\n", "notes.txt": "y\n"}, DataError, "unknown language code 'notes'"),
    ({"de.txt": "x\n", "deu.txt": "y\n"}, DataError, "given twice"),
])
def test_text_files_bad(tmp_path, files, error, message):
    for name, text in files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    with pytest.raises(error, match=message):
        read_text_files([tmp_path / n for n in files])


# ---- the model folder ------------------------------------------------------------------------------------------------

LOAD_WITHOUT_HYBRIDBATCH = r"""
import sys, json
sys.modules["hybridbatch"] = None  # any `import hybridbatch...` now fails
try:
    import hybridbatch  # noqa
    raise SystemExit("hybridbatch is importable")
except ImportError:
    pass
import numpy as np
from sentence_transformers import SentenceTransformer
folder, texts, out = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
m = SentenceTransformer(folder, device="cpu")
q = m.encode(texts, prompt_name="query", convert_to_numpy=True)
p = m.encode(texts, prompt_name="passage", convert_to_numpy=True)
np.savez(out, q=q, p=p, modules=np.array([type(x).__name__ for x in m]))
"""


def test_debiased_folder_loads_with_plain_sentence_transformers(tiny_model, shared_data, tmp_path):
    from hybridbatch.evaluation.encode import encode_texts
    from hybridbatch.models.loading import load_model

    out = tmp_path / "debiased"
    res = debias_model(str(tiny_model), 4, out, data_dir=shared_data, max_per_language=12, batch_size=32)
    info = json.loads((out / DEBIAS_JSON).read_text())
    assert info["rank"] == 4 and info["languages"] == LANGS and info["method"] == "lsar"
    assert info["sentences_per_language"] == {lang: 12 for lang in LANGS}
    assert info["provenance"]["git_commit"] and info["data_checksum"] and info["wall_time_s"] > 0
    texts = ["Wer hat den Vertrag unterzeichnet?", "The treaty was signed in 1648.", "条约于1648年签署。",
             "Договор был подписан в 1648 году."]
    script = tmp_path / "load.py"
    script.write_text(LOAD_WITHOUT_HYBRIDBATCH, encoding="utf-8")
    p = subprocess.run([sys.executable, "-I", str(script), str(out), json.dumps(texts), str(tmp_path / "e.npz")],
                       capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert p.returncode == 0, p.stderr[-2000:]
    got = np.load(tmp_path / "e.npz")
    assert list(got["modules"]) == ["Transformer", "Pooling", "Normalize", "Dense", "Normalize"]
    base = load_model(str(tiny_model))
    U = res.subspace.basis_for(4)
    for kind, key in (("query", "q"), ("passage", "p")):
        expected = remove_subspace(encode_texts(base, texts, kind), U)
        np.testing.assert_allclose(got[key], expected, atol=2e-6)
        np.testing.assert_allclose(got[key] @ U, 0, atol=2e-6)
    # the projection changed something: base and debiased embeddings differ
    assert np.abs(encode_texts(base, texts, "query") - got["q"]).max() > 1e-3


def test_debias_model_refuses_bad_input_before_loading(tmp_path):
    (tmp_path / "de.txt").write_text("Hallo.\n", encoding="utf-8")
    (tmp_path / "en.txt").write_text("Hello.\n", encoding="utf-8")
    files = [tmp_path / "de.txt", tmp_path / "en.txt"]
    with pytest.raises(UsageError, match="rank 2 is too large"):  # a model name that would fail to load
        debias_model("./no-such-model", 2, tmp_path / "out", texts=files)
    assert not (tmp_path / "out").exists()


# ---- cross-checks against independent implementations ---------------------------------------------------------------


def _authors_lsar_basis(W: np.ndarray, k: int) -> np.ndarray:
    """The LSAR authors' `lsar(W, k, returns_all=True)` basis (their refinement: re-centre the rank-k fit on its
    point closest to the origin, SVD again), re-typed in numpy for this cross-check."""
    d, n = W.shape
    wc = W.mean(axis=1)
    u, s, vh = np.linalg.svd(W - np.outer(wc, np.ones(n)), full_matrices=False)
    fit = np.outer(wc, np.ones(n)) + u[:, :k] @ np.diag(s[:k]) @ vh[:k]
    w = np.linalg.pinv(fit).T @ np.ones(n)
    w /= (w ** 2).sum()
    u2, _, _ = np.linalg.svd(fit - np.outer(w, np.ones(n)), full_matrices=False)
    return u2[:, :k]


@pytest.mark.parametrize("seed", [0, 1])
def test_lsar_projection_equals_the_authors_refined_one(seed):
    """Skipping the authors' refinement step does not change what is removed (docs/DEBIAS.md)."""
    sub = estimate_lsar(planted(seed=seed, dim=64)[0])
    for k in (1, 2, 4, 10):
        R = _authors_lsar_basis(sub.means.T, k)
        np.testing.assert_allclose(projection_matrix(R), sub.projection(k), atol=1e-10)


def test_lir_components_match_sklearn_truncated_svd():
    from sklearn.decomposition import TruncatedSVD

    emb, _ = planted(n=120, dim=24)
    comps = estimate_lir(emb, 3)
    for lang in ("de", "zh"):
        ref = TruncatedSVD(n_components=3, algorithm="arpack", random_state=0).fit(emb[lang]).components_.T
        np.testing.assert_allclose(projection_matrix(ref), projection_matrix(comps[lang]), atol=1e-8)


# ---- the sweep (encodes the 12 test articles once with the tiny model) -----------------------------------------------


@pytest.mark.slow
def test_sweep_scores_projected_embeddings_like_the_debiased_model(tiny_model, shared_data, tmp_path):
    from hybridbatch.analysis.significance import compare, load_run
    from hybridbatch.data.lookup import load_corpus
    from hybridbatch.evaluation.lareqa import evaluate_lareqa
    from hybridbatch.experiments.debias_cells import debias_sweep
    from hybridbatch.models.loading import load_model

    out = tmp_path / "sweep"
    body = debias_sweep(str(tiny_model), [0, 2], out, lir_ranks=[1], data_dir=shared_data, max_per_language=15,
                 batch_size=64, check_sample=16)
    assert [r["name"] for r in body["rows"]] == ["base", "lsar-r2", "lir-r1"]
    chk = body["equivalence_check"]
    assert chk["rank"] == 2 and chk["max_abs_diff"] < 1e-5 and chk["min_cosine"] > 0.9999
    assert chk["loaded_modules"][-2:] == ["Dense", "Normalize"]
    # rank 0 is the base model as `hybridbatch eval` scores it (encode + evaluate, no projection involved)
    direct = evaluate_lareqa(load_model(str(tiny_model)), load_corpus("xquad-r", shared_data, split="test"))
    base = json.loads((out / "base" / "eval.json").read_text())
    for setting in ("mono", "cross", "multi"):
        assert base["summary"][setting]["map"] == pytest.approx(direct.summary[setting]["map"], abs=1e-6)
    assert base["summary"]["multi"]["bias"] == pytest.approx(direct.summary["multi"]["bias"], abs=1e-6)
    cmp = compare(load_run(out / "base"), load_run(out / "lsar-r2"), n_boot=100, n_perm=100)
    assert cmp["n_question_ids"] == 265
    assert (out / "sweep.md").read_text().count("| lsar-r2 |") == 1


@pytest.mark.slow
def test_versus_trained_on_committed_runs(tmp_path):
    """A debiased run (here the committed zero-shot cell stands in for it) against three trained seeds: the
    seed-averaged difference and a seed-aware interval around it, as in the paper preset's tables."""
    from hybridbatch.experiments.debias_cells import write_versus

    cells = Path(__file__).resolve().parents[1] / "results" / "paper-small" / "cells"
    seeds = [cells / f"hybrid-a0.5-plain-seed{s}" / "xquad-r" for s in (0, 1, 2)]
    if not all((s / "eval.json").exists() for s in seeds):
        pytest.skip("paper-small results not in this checkout")
    body = write_versus(cells / "base" / "xquad-r", {"hybrid": seeds}, tmp_path, n_boot=200, n_perm=200)
    rows = {r["name"]: r for r in body["comparisons"][0]["rows"]}
    per_seed = [json.loads((s / "eval.json").read_text())["summary"]["multi"]["map"] for s in seeds]
    base = json.loads((cells / "base" / "xquad-r" / "eval.json").read_text())["summary"]["multi"]["map"]
    assert rows["Multi mAP"]["diff"] == pytest.approx(np.mean(per_seed) - base, abs=1e-9)
    assert rows["Multi mAP"]["seed_ci_low"] < rows["Multi mAP"]["diff"] < rows["Multi mAP"]["seed_ci_high"]
    assert "| hybrid vs xquad-r | Multi mAP |" in (tmp_path / "versus.md").read_text()
