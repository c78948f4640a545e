"""LAReQAEvaluator: the same numbers as `hybridbatch eval`, usable as the trainer's `evaluator=` (and for
`load_best_model_at_end`), built from a corpus, plain lists or pairs; and the example a user copies runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hybridbatch.errors import UsageError
from hybridbatch.evaluation.evaluator import LAReQAEvaluator

ROOT = Path(__file__).resolve().parents[1]


def test_same_map_as_the_eval_command(main_cli, tiny_model, small_data, tmp_path):
    """`hybridbatch eval` and the evaluator on the same cut of XQuAD-R (the 12 test articles, a paragraph each, in 4
    languages: every setting has several languages and a pool of a few hundred candidates) give the same mAP and
    bias; the mAP is not a degenerate 0 or 1, so agreeing is not trivial."""
    from sentence_transformers import SentenceTransformer

    from hybridbatch.data.lookup import load_corpus

    out = tmp_path / "eval"
    code, err = main_cli("eval", "--model", str(tiny_model), "--data", "xquad-r", "--data-dir", str(small_data),
                         "--split", "test", "--out", str(out), "--no-progress",
                         "--encoder", "torch")  # the evaluator encodes with torch, as training does
    assert code == 0, err[-2000:]
    body = json.loads((out / "eval.json").read_text())
    cli = body["summary"]
    corpus = load_corpus("xquad-r", small_data, split="test")
    assert body["counts"]["n_question_ids"] == len(corpus.by_id()) == 59 and len(corpus.languages) == 4
    ev = LAReQAEvaluator(corpus, name="xquad")
    got = ev(SentenceTransformer(str(tiny_model), device="cpu"))
    assert ev.primary_metric == "xquad_multi_map" and ev.greater_is_better
    for setting in ("mono", "cross", "multi"):
        assert 0.0 < cli[setting]["map"] < 1.0
        assert got[f"xquad_{setting}_map"] == pytest.approx(cli[setting]["map"], abs=1e-9)
    assert got["xquad_multi_bias"] == pytest.approx(cli["multi"]["bias"], abs=1e-9)


def test_from_lists_and_from_pairs_agree_with_the_corpus(tiny_model, xquad):
    """The same corpus given three ways gives the same scores; relevance follows the id across languages."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(tiny_model), device="cpu")
    small = xquad.subset(xquad.articles[-2:])  # two articles: fast
    ids, qlangs, texts, answers, clangs, cands = [], [], [], [], [], []
    for lang in small.languages:
        base = len(cands)
        cands += [c.text for c in small.candidates[lang]]
        clangs += [lang] * len(small.candidates[lang])
        for q in small.questions[lang]:
            ids.append(q.qid)
            qlangs.append(lang)
            texts.append(q.text)
            answers.append(base + q.answer)
    a = LAReQAEvaluator(small)(model)
    b = LAReQAEvaluator.from_lists(ids, qlangs, texts, clangs, cands, answers)(model)
    assert a == pytest.approx(b, abs=1e-12)
    pairs = small.pairs()
    c = LAReQAEvaluator.from_pairs(pairs, primary_metric="multi_bias")
    assert not c.greater_is_better
    scores = c(model)
    assert scores["lareqa_multi_map"] == pytest.approx(multi_map_of_pairs(model, pairs), abs=1e-6)


def test_from_long_takes_the_long_data_pairs_from_long_takes(tiny_model, xquad):
    """The long dataset of a few ids (as `pairs_from_long` reads it) scores as the same ids given as pairs; its
    rows are checked as `pairs_from_long` checks them."""
    from datasets import Dataset
    from sentence_transformers import SentenceTransformer

    from hybridbatch.errors import DataError
    from hybridbatch.sampling.dataset import long_dataset, pairs_from_long

    model = SentenceTransformer(str(tiny_model), device="cpu")
    pairs = xquad.subset(xquad.articles[-1:]).pairs()
    long = long_dataset(pairs)
    assert len(pairs_from_long(long, cross=False)) == len(long)  # the same data the pair builder takes
    renamed = long.rename_columns({"id": "qid", "lang": "language"})
    by_long = LAReQAEvaluator.from_long(renamed, id_column="qid", lang_column="language")(model)
    assert by_long == pytest.approx(LAReQAEvaluator.from_pairs(pairs)(model), abs=1e-12)
    bad = Dataset.from_list([{"id": "q1", "lang": "xx-nope", "query": "q", "positive": "p"}])
    with pytest.raises(DataError, match="unknown language code"):
        LAReQAEvaluator.from_long(bad)
    with pytest.raises(UsageError, match="missing column 'positive'"):
        LAReQAEvaluator.from_long(bad.remove_columns("positive"))


def test_every_evaluation_setting_reaches_the_evaluator(tiny_model, xquad):
    """`EvalOptions` (or its fields as keywords) set the evaluator's evaluation exactly as `evaluate_lareqa`'s;
    a bad setting is refused when the evaluator is made, not at the first checkpoint."""
    from sentence_transformers import SentenceTransformer

    from hybridbatch.evaluation.lareqa import evaluate_lareqa
    from hybridbatch.evaluation.options import EvalOptions

    model = SentenceTransformer(str(tiny_model), device="cpu")
    small = xquad.subset(xquad.articles[-1:])
    options = EvalOptions(context=True, ties="pessimistic", batch_size=16)
    ev = LAReQAEvaluator(small, options, write_csv=False)
    got = ev(model)
    want = evaluate_lareqa(model, small, options).summary
    assert got["lareqa_multi_map"] == want["multi"]["map"] and ev.last_result.settings["ties"] == "pessimistic"
    plain = LAReQAEvaluator(small, context=False)(model)
    assert plain["lareqa_multi_map"] != got["lareqa_multi_map"]  # the context setting was not dropped on the way
    assert LAReQAEvaluator(small).options == EvalOptions()  # one default: the library's
    with pytest.raises(UsageError, match="tie"):
        LAReQAEvaluator(small, ties="nope")


def multi_map_of_pairs(model, pairset) -> float:
    """Multi mAP written out for a pool of answer sentences only: each (id, language) question against the distinct
    positives of every language, relevant = its id's positive in each language; AP from sklearn over the full
    ranking, mean per query language, then over languages. Encoded with the model's own prompts."""
    from sklearn.metrics import average_precision_score

    items = [(qid, lang, it) for qid, by in pairset.items.items() for lang, it in by.items()]
    cands = sorted({(lang, it.positive) for _, lang, it in items})
    where = {key: k for k, key in enumerate(cands)}
    pool = model.encode([t for _, t in cands], prompt="passage: ", normalize_embeddings=True).astype(np.float64)
    queries = model.encode([it.query for *_, it in items], prompt="query: ", normalize_embeddings=True)
    per_lang: dict[str, list[float]] = {}
    for (qid, lang, _), v in zip(items, queries.astype(np.float64)):
        truth = np.zeros(len(cands), dtype=int)
        truth[[where[y, it.positive] for y, it in pairset.items[qid].items()]] = 1
        per_lang.setdefault(lang, []).append(average_precision_score(truth, pool @ v))
    return float(np.mean([np.mean(v) for v in per_lang.values()]))


def test_bad_lists_are_usage_errors():
    with pytest.raises(UsageError, match="same length"):
        LAReQAEvaluator.from_lists(["q1"], ["en"], ["a", "b"], ["en"], ["x"], [0])
    with pytest.raises(UsageError, match="in the query's language"):
        LAReQAEvaluator.from_lists(["q1"], ["en"], ["q"], ["de"], ["x"], [0])
    with pytest.raises(UsageError, match="not a candidate index"):
        LAReQAEvaluator.from_lists(["q1"], ["en"], ["q"], ["en"], ["x"], [3])
    with pytest.raises(UsageError, match="primary_metric"):
        LAReQAEvaluator.from_lists(["q1"], ["en"], ["q"], ["en"], ["x"], [0], primary_metric="nope")


def test_the_example_script_runs(tiny_model, tmp_path):
    r = subprocess.run([sys.executable, str(ROOT / "examples" / "train_your_data.py"), str(tiny_model), "3"],
                       capture_output=True, text=True, cwd=tmp_path,
                       env={**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr[-3000:]
    assert "lack the model's" not in r.stderr  # its pairs carry the model's prompts, as the evaluator's texts do
    last = r.stdout.strip().splitlines()[-1]
    scores = eval(last, {"__builtins__": {}})  # the printed metrics dict
    assert set(scores) >= {"lareqa_mono_map", "lareqa_cross_map", "lareqa_multi_map"}
    assert all(0 < scores[k] <= 1 for k in ("lareqa_mono_map", "lareqa_cross_map", "lareqa_multi_map"))


def test_training_texts_and_the_evaluator_use_one_rule_for_prompts(tiny_model):
    """`pairs_from_long(..., model=model)` prefixes the texts with the model's prompts (what the evaluator encodes
    with); pairs built without them make `PairCollator` warn on its first batch, naming the prompts."""
    import warnings

    from datasets import Dataset
    from sentence_transformers import SentenceTransformer

    from hybridbatch import pairs_from_long, prefixes
    from hybridbatch.sampling import PairCollator

    model = SentenceTransformer(str(tiny_model), device="cpu")
    assert prefixes(model) == ("query: ", "passage: ")
    long = Dataset.from_list([{"id": f"q{i}", "lang": lang, "query": f"Who wrote book {i}?", "positive": f"Ann {i}."}
                              for i in range(3) for lang in ("en", "de")])
    pairs = pairs_from_long(long, model=model)
    assert all(a.startswith("query: ") for a in pairs["anchor"])
    assert all(p.startswith("passage: ") for p in pairs["positive"])
    with pytest.raises(UsageError, match="either model="):
        pairs_from_long(long, "q: ", model=model)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning with the model's prompts
        PairCollator(preprocess_fn=model.preprocess)([pairs[0], pairs[1]])
    bare = pairs_from_long(long)
    with pytest.warns(UserWarning, match=r"lack the model's query prompt 'query: ' and passage prompt 'passage: '"):
        PairCollator(preprocess_fn=model.preprocess)([bare[0], bare[1]])


def test_library_md_lists_every_metric_the_evaluator_returns():
    from hybridbatch.evaluation.evaluator import _METRICS

    doc = (ROOT / "docs" / "LIBRARY.md").read_text()
    assert all(f"_{name}`" in doc for name in _METRICS), [n for n in _METRICS if f"_{n}`" not in doc]
    assert "freeze_word_embeddings" in doc


def test_evaluation_reports_progress_from_the_start_in_one_encode_stage(tiny_model, shared_data):
    """`evaluate_lareqa(progress=...)` (what `hybridbatch eval`'s bars show): the encoder's preparation first, then
    one 'encode' stage over every text that moves in steps up to its total (not a bar per language jumping from 0
    to full), then scoring."""
    from sentence_transformers import SentenceTransformer

    from hybridbatch.data.lookup import load_corpus
    from hybridbatch.evaluation.lareqa import evaluate_lareqa
    from hybridbatch.evaluation.options import EvalOptions

    corpus = load_corpus("xquad-r", shared_data, split="test")
    corpus = type(corpus)(corpus.name, {k: v[:300] for k, v in list(corpus.questions.items())[:2]},
                          {k: v for k, v in list(corpus.candidates.items())[:2]})
    ticks: list[tuple[str, int, int]] = []
    evaluate_lareqa(SentenceTransformer(str(tiny_model), device="cpu"), corpus, EvalOptions(encoder="torch"),
                    progress=lambda *t: ticks.append(t))
    stages = list(dict.fromkeys(s for s, _, _ in ticks))
    assert stages[0].startswith("prepare encoder") and stages[1] == "encode", stages
    assert not any(s.startswith("encode ") for s in stages)  # no stage per language and kind
    enc = [(d, t) for s, d, t in ticks if s == "encode"]
    total = sum(len(v) for v in corpus.questions.values()) + sum(len(v) for v in corpus.candidates.values())
    assert {t for _, t in enc} == {total} and enc[0][0] == 0 and enc[-1][0] == total
    assert all(a <= b for (a, _), (b, _) in zip(enc, enc[1:])) and len({d for d, _ in enc}) >= 4


def test_the_train_bar_shows_the_validation_phase():
    """The CLI's training bar says 'validating' once the trainer has decided a validation follows the step."""
    from types import SimpleNamespace

    from hybridbatch.cli.train_cmd import TrainBar

    bar = TrainBar()
    state = SimpleNamespace(is_world_process_zero=True, max_steps=4, global_step=0)
    bar.on_train_begin(None, state, None)
    try:
        state.global_step = 2
        bar.on_step_end(None, state, SimpleNamespace(should_evaluate=True))
        assert "validating" in bar.progress.tasks[0].description
        bar.on_log(None, state, None, logs={"eval_lareqa_multi_map": 0.25})
        state.global_step = 3
        bar.on_step_end(None, state, SimpleNamespace(should_evaluate=False))
        desc = bar.progress.tasks[0].description
        assert "validating" not in desc and "val mAP 0.2500" in desc
    finally:
        bar.on_train_end(None, state, None)
