"""Broken models cannot get a score: NaN / zero embeddings are refused naming the model and the text (CLI exit 2,
nothing written), a collapsed model gets chance-level figures and a near-collapse warning, and the embeddings given
to `evaluate_lareqa_embeddings` are checked against the corpus."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from hybridbatch.data.lookup import lareqa_files
from hybridbatch.data.qa import read_lareqa
from hybridbatch.errors import UsageError
from hybridbatch.evaluation.lareqa import evaluate_lareqa_embeddings


def broken_copy(tiny_model: Path, out: Path, how: str) -> Path:
    """The tiny model with its last layer's output LayerNorm changed: `nan` (NaN weights), `zero` (all-zero hidden
    states -> zero embeddings) or `collapse` (every token the same dyadic vector -> every embedding exactly equal)."""
    import torch
    from sentence_transformers import SentenceTransformer

    m = SentenceTransformer(str(tiny_model), device="cpu")
    hf = m[0].auto_model
    ln = hf.encoder.layer[-1].output.LayerNorm
    with torch.no_grad():
        if how == "nan":
            hf.embeddings.word_embeddings.weight[:] = float("nan")
        else:
            ln.weight.zero_()
            if how == "zero":
                ln.bias.zero_()
            else:
                g = torch.Generator().manual_seed(0)
                ln.bias.copy_(torch.tensor([0.25, 0.5, -0.5, 1.0])[torch.randint(0, 4, ln.bias.shape, generator=g)])
    m.save(str(out))
    return out


def chance_ap(n: int, r: int = 1) -> float:
    """E[AP] when r relevant items sit at uniformly random positions among n: position k is relevant with
    probability r/n, and then holds on average 1 + (k-1)(r-1)/(n-1) relevant items up to and including it."""
    if r == 1:
        return sum(1 / k for k in range(1, n + 1)) / n
    return sum((r / n) * (1 + (k - 1) * (r - 1) / (n - 1)) / k for k in range(1, n + 1)) / r


def run_eval(main_cli, model: Path, data: Path, out: Path, *extra: str) -> tuple[int, str]:
    """`hybridbatch eval` through `cli.main` in this process (conftest's main_cli): (exit status, stderr)."""
    return main_cli("eval", "--model", str(model), "--data", str(data), "--split", "all", "--no-progress", "--out",
                    str(out), *extra)


@pytest.mark.parametrize("how, needle", [("nan", "NaN or infinite"), ("zero", "zero-norm")])
def test_cli_refuses_nan_and_zero_models_naming_the_text(main_cli, tiny_model, xquad_cut, tmp_path, how, needle):
    model = broken_copy(tiny_model, tmp_path / f"model-{how}", how)
    out = tmp_path / "out"
    code, err = run_eval(main_cli, model, xquad_cut, out)
    assert code == 2, err
    assert needle in err and str(model) in err and "Traceback" not in err
    corpus = read_lareqa(lareqa_files(xquad_cut), "x")
    texts = [c.text for lang in corpus.languages for c in corpus.candidates[lang]]
    assert any(t[:60] in err for t in texts)  # the offending text itself is quoted
    assert not (out / "eval.json").exists() and not (out / "per_query.npz").exists()


def test_cli_collapsed_model_gets_chance_level_and_a_warning(main_cli, tiny_model, xquad_cut, tmp_path):
    model = broken_copy(tiny_model, tmp_path / "model-collapse", "collapse")
    code, err = run_eval(main_cli, model, xquad_cut, tmp_path / "exp")
    assert code == 0, err
    assert "near-collapsed" in err
    body = json.loads((tmp_path / "exp" / "eval.json").read_text())
    corpus = read_lareqa(lareqa_files(xquad_cut), "x")
    sizes = {lang: len(corpus.candidates[lang]) for lang in corpus.languages}
    n_all, r_all = sum(sizes.values()), len(sizes)
    assert body["health"]["near_collapse"] is True and body["health"]["score_spread"] < 1e-12
    assert body["summary"]["mono"]["map"] == pytest.approx(np.mean([chance_ap(n) for n in sizes.values()]), rel=1e-9)
    cross = [chance_ap(sizes[y]) for x in sizes for y in sizes if x != y]
    assert body["summary"]["cross"]["map"] == pytest.approx(np.mean(cross), rel=1e-9)
    assert body["summary"]["multi"]["map"] == pytest.approx(chance_ap(n_all, r_all), rel=1e-9)
    assert body["summary"]["multi"]["bias"] == pytest.approx((r_all - 1) * (n_all + 1) / (r_all + 1), rel=1e-9)
    assert body["counts"]["ties"]["mono"]["relevant_items_tied"] == body["counts"]["n_queries"]
    assert "near-collapsed" in (tmp_path / "exp" / "eval.md").read_text()
    # the optimistic rule is what used to be reported: a perfect score
    code, err = run_eval(main_cli, model, xquad_cut, tmp_path / "opt", "--ties", "optimistic")
    assert code == 0, err
    assert json.loads((tmp_path / "opt" / "eval.json").read_text())["summary"]["mono"]["map"] == 1.0


def test_embeddings_are_checked_against_the_corpus(xquad_cut):
    corpus = read_lareqa(lareqa_files(xquad_cut), "x")
    rng = np.random.default_rng(0)

    def unit(n):
        x = rng.standard_normal((n, 16)).astype(np.float32)
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    q = {lang: unit(len(corpus.questions[lang])) for lang in corpus.languages}
    c = {lang: unit(len(corpus.candidates[lang])) for lang in corpus.languages}
    ref = evaluate_lareqa_embeddings(corpus, q, c)
    assert ref.counts["renormalised_embeddings"] == {"query": 0, "candidate": 0}
    # unnormalised rows are normalised: same figures
    scaled = {lang: v * 3.0 for lang, v in c.items()}
    r = evaluate_lareqa_embeddings(corpus, q, scaled)
    assert r.counts["renormalised_embeddings"]["candidate"] == sum(len(v) for v in c.values())
    for setting in ("mono", "cross", "multi"):
        assert r.summary[setting]["map"] == pytest.approx(ref.summary[setting]["map"], abs=1e-9)
    lang = corpus.languages[1]
    bad = dict(q)
    bad[lang] = q[lang].copy()
    bad[lang][3, 5] = np.nan
    with pytest.raises(UsageError, match=f"query embeddings for '{lang}': row 3"):
        evaluate_lareqa_embeddings(corpus, bad, c)
    bad[lang] = q[lang].copy()
    bad[lang][2] = 0
    with pytest.raises(UsageError, match="zero norm"):
        evaluate_lareqa_embeddings(corpus, bad, c)
    with pytest.raises(UsageError, match="shape"):
        evaluate_lareqa_embeddings(corpus, q, {**c, lang: c[lang][:-1]})
    with pytest.raises(UsageError, match="no entry"):
        evaluate_lareqa_embeddings(corpus, {k: v for k, v in q.items() if k != lang}, c)
