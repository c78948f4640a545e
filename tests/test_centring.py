"""Per-language centring: the formulas by hand, a centred folder written from real XQuAD-R training sentences that
loads back as a sentence-transformers model and computes exactly normalise(x - mu_nearest(x)), what it changes on
held-out sentences (the language means move together), the CLI and the sweep's centring rows."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hybridbatch.analysis.centring import (
    centre_corpus,
    centre_embeddings,
    identification_accuracy,
    nearest_language,
)
from hybridbatch.analysis.debias import DEBIAS_JSON, SUBSPACE_NPZ, LanguageSubspace, debias_model


def test_by_hand():
    X = np.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])
    got = centre_embeddings(X, np.array([0.5, 0.5]))
    s = 1 / np.sqrt(2)
    np.testing.assert_allclose(got[:2], [[s, -s], [-s, s]], atol=1e-7)
    np.testing.assert_allclose(got[2], np.array([0.1, 0.3]) / np.hypot(0.1, 0.3), atol=1e-7)
    np.testing.assert_allclose(centre_embeddings(X, np.array([0.5, 0.5]), normalise=False)[2], [0.1, 0.3])
    # one mean per row; a row equal to its mean stays zero
    np.testing.assert_allclose(centre_embeddings(X[:2], np.array([[1.0, 0.0], [0.0, 0.5]])), [[0, 0], [0, 1]])
    means = np.array([[2.0, 0.0], [0.0, 0.1]])  # cosine, not dot product: the short mean still wins its side
    np.testing.assert_array_equal(nearest_language(np.array([[0.9, 0.1], [0.3, 0.7]]), means), [0, 1])
    emb = {"de": np.array([[0.9, 0.1], [0.2, 0.8]]), "en": np.array([[0.1, 0.9]])}
    assert identification_accuracy(emb, ["de", "en"], means) == {"de": 0.5, "en": 1.0, "all": 2 / 3}
    known = centre_corpus(emb, ["de", "en"], means)
    np.testing.assert_allclose(known["de"], centre_embeddings(emb["de"], means[0]))
    ident = centre_corpus(emb, ["de", "en"], means, identify=True)
    np.testing.assert_allclose(ident["de"][1], centre_embeddings(emb["de"][1:], means[1])[0])


def between_share(emb: dict[str, np.ndarray]) -> float:
    """Share of the embeddings' total variance that lies between the language means:
    sum_l n_l |m_l - m|^2 / sum_i |x_i - m|^2 (0: the language cannot be told from the mean)."""
    X = np.concatenate(list(emb.values())).astype(np.float64)
    m = X.mean(axis=0)
    between = sum(len(v) * np.sum((v.mean(axis=0) - m) ** 2) for v in emb.values())
    return float(between / np.sum((X - m) ** 2))


def test_centred_folder_loads_back_and_subtracts_the_nearest_mean(tiny_model, shared_data, tmp_path):
    from sentence_transformers import SentenceTransformer

    from hybridbatch.data.lookup import load_corpus
    from hybridbatch.evaluation.encode import encode_texts
    from hybridbatch.models.loading import load_model

    out = tmp_path / "centred"
    res = debias_model(str(tiny_model), None, out, data_dir=shared_data, max_per_language=20, batch_size=32,
                       method="centre")
    info = json.loads((out / DEBIAS_JSON).read_text())
    assert info["method"] == "centre" and info["rank"] is None and info["provenance"]["settings"]["method"] == "centre"
    assert set(info["language_id_accuracy"]) == {*info["languages"], "all"} and len(info["languages"]) == 11
    sub = LanguageSubspace.load(out / SUBSPACE_NPZ)
    np.testing.assert_allclose(sub.means, res.subspace.means)
    # loads back: with sentence-transformers (this package's module is trusted explicitly) and the project loader
    direct = SentenceTransformer(str(out), device="cpu", trust_remote_code=True)
    assert [type(m).__name__ for m in direct] == ["Transformer", "Pooling", "Normalize", "LanguageCentring",
                                                  "Normalize"]
    loaded = load_model(str(out))
    # held-out sentences (the test articles, never in the estimate) in every language
    test = load_corpus("xquad-r", shared_data, split="test")
    texts = {lang: [c.text for c in test.candidates[lang][:15]] for lang in test.languages}
    base = load_model(str(tiny_model))
    base_emb = {lang: encode_texts(base, t, "passage") for lang, t in texts.items()}
    got = {lang: encode_texts(loaded, t, "passage") for lang, t in texts.items()}
    for lang, t in texts.items():
        want = centre_embeddings(base_emb[lang], sub.means[nearest_language(base_emb[lang], sub.means)])
        np.testing.assert_allclose(got[lang], want, atol=2e-6)
        np.testing.assert_allclose(direct.encode(t, prompt_name="passage"), want, atol=2e-6)
    assert max(np.abs(got[lang] - base_emb[lang]).max() for lang in texts) > 1e-2  # it changed the embeddings


def test_cli_centre_and_its_refusals(main_cli, tiny_model, shared_data, tmp_path):
    out = tmp_path / "c"
    code, err = main_cli("debias", "--model", str(tiny_model), "--method", "centre", "--out", str(out),
                         "--data-dir", str(shared_data), "--max-per-language", "6", "--no-progress")
    assert code == 0, err
    assert json.loads((out / DEBIAS_JSON).read_text())["method"] == "centre"
    bad = tmp_path / "bad"
    for args, msg in ((["--method", "centre", "--rank", "2"], "takes no --rank"),
                      (["--method", "pca"], "--method must be one of lsar, centre"),
                      (["--rank", "2", "--centre"], "--centre adds rows to the sweep")):
        code, err = main_cli("debias", "--model", str(tiny_model), "--out", str(bad), *args, "--no-progress")
        assert code == 2 and msg in err, err
        assert not bad.exists()


@pytest.mark.slow
def test_centring_the_embedded_model_removes_the_language_offset(embedded_model, shared_data, tmp_path):
    """What it should change, on the real multilingual model: held-out sentences (the test articles) are told their
    language by the nearest mean, and after centring far less of their variance lies between the language means
    (measured: 0.20 -> 0.04 with 100 estimation and 40 held-out sentences per language; fewer here, for time)."""
    from hybridbatch.data.lookup import load_corpus
    from hybridbatch.evaluation.encode import encode_texts
    from hybridbatch.models.loading import load_model

    out = tmp_path / "centred"
    res = debias_model(str(embedded_model), None, out, data_dir=shared_data, max_per_language=30, method="centre")
    assert res.info["language_id_accuracy"]["all"] > 0.95
    test = load_corpus("xquad-r", shared_data, split="test")
    texts = {lang: [c.text for c in test.candidates[lang][:15]] for lang in test.languages}
    base, centred = load_model(str(embedded_model)), load_model(str(out))
    base_emb = {lang: encode_texts(base, t, "passage") for lang, t in texts.items()}
    got = {lang: encode_texts(centred, t, "passage") for lang, t in texts.items()}
    assert identification_accuracy(base_emb, res.subspace.languages, res.subspace.means)["all"] > 0.95
    np.testing.assert_allclose(got["de"], centre_corpus(base_emb, res.subspace.languages, res.subspace.means)["de"],
                               atol=2e-5)
    assert between_share(got) < 0.5 * between_share(base_emb)


@pytest.mark.slow
def test_sweep_centring_rows(tiny_model, shared_data, tmp_path):
    from hybridbatch.experiments.debias_cells import debias_sweep

    body = debias_sweep(str(tiny_model), [0], tmp_path / "sweep", centre=True, data_dir=shared_data,
                        max_per_language=15, batch_size=64, check_sample=0)
    assert [r["name"] for r in body["rows"]] == ["base", "centre", "centre-id"]
    assert [r["method"] for r in body["rows"]] == ["none", "centre", "centre-id"]
    ev = json.loads((tmp_path / "sweep" / "centre" / "eval.json").read_text())
    assert ev["settings"]["debias_method"] == "centre" and "max_rank" in ev["summary"]["multi"]
    assert body["rows"][1]["multi_map"] != body["rows"][0]["multi_map"]
