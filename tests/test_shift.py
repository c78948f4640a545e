"""Domain shift in multilingual pools (evaluation/shift.py): the tasks built from the real TyDi GoldP and Tatoeba
files, the ranks checked against a brute-force ranking written here, the metrics against ranx, the per-language
pools against `evaluate_beir`, the pairwise Tatoeba P@1 against `analysis.alignment`, and the CLI end to end with the
tiny model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import hybridbatch.evaluation.shift as S
import hybridbatch.evaluation.shift_tasks as T

# ---- pure metrics: hand-computed cases ------------------------------------------------------------------------------


def test_ranks_and_gap_from_counts_by_hand():
    # 2 queries, 3 segments; counts = non-relevant candidates strictly above the relevant item, per segment
    counts = np.array([[0, 2, 1], [3, 0, 0]])
    own = np.array([1, 0])
    assert S.ranks_multi(counts).tolist() == [4, 4]
    assert S.ranks_in_segment(counts, own).tolist() == [3, 4]
    assert S.rank_gap([4, 4], [3, 4]).tolist() == [1, 0]


def test_miss_at_1_counts_only_wrong_top1_in_the_given_language():
    rank = np.array([1, 2, 5, 3])
    top1 = np.array(["de", "de", "en", "fr"])
    lang = np.array(["de", "de", "de", "fr"])
    # query 0 is a hit (its top-1 is the relevant item): never a miss, whatever the language
    assert S.miss_at_1_in(rank, top1, lang).tolist() == [0.0, 1.0, 0.0, 1.0]


def test_rank_metrics_hand_values():
    m = S.rank_metrics(np.array([1, 2, 11, 150]))
    assert m["map"] == pytest.approx([1, 0.5, 1 / 11, 1 / 150])
    assert m["ndcg10"] == pytest.approx([1, 1 / np.log2(3), 0, 0])
    assert m["r1"].tolist() == [1, 0, 0, 0]
    assert m["r10"].tolist() == [1, 1, 0, 0]
    assert m["r100"].tolist() == [1, 1, 1, 0]


# ---- scoring against a brute-force ranking and ranx -----------------------------------------------------------------


def _toy_task(rng: np.random.Generator, n_seg: int = 4, per_seg: int = 30, n_q: int = 60, n_excl: int = 2):
    langs = ["de", "en", "fr", "en"][:n_seg]
    bounds = list(range(0, n_seg * per_seg + 1, per_seg))
    rel = rng.integers(0, bounds[-1], n_q)
    excl = rng.integers(0, bounds[-1], (n_q, n_excl))
    excl[excl == rel[:, None]] = -1
    excl[rng.random(excl.shape) < 0.3] = -1
    qlang = [langs[int(rng.integers(0, n_seg))] for _ in range(n_q)]
    return T.ShiftTask(
        name="toy", query_texts=[f"q{i}" for i in range(n_q)], query_langs=qlang,
        query_ids=[f"q{i}" for i in range(n_q)], relevant=rel.astype(np.int64), exclude=excl.astype(np.int64),
        cand_texts=[f"c{i}" for i in range(bounds[-1])], bounds=bounds, segments=[f"s{i}" for i in range(n_seg)],
        seg_langs=langs, query_kind="query", cand_kind="passage", checksum="toy")


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _brute(task: T.ShiftTask, q: np.ndarray, c: np.ndarray):
    """Rank by sorting each query's full score row (float64), the excluded candidates removed."""
    seg = np.searchsorted(task.bounds, np.arange(len(c)), side="right") - 1
    out_multi, out_own, top1 = [], [], []
    for i in range(len(q)):
        s = c.astype(np.float64) @ q[i].astype(np.float64)
        keep = np.ones(len(c), bool)
        keep[task.exclude[i][task.exclude[i] >= 0]] = False
        keep[task.relevant[i]] = False
        r = task.relevant[i]
        out_multi.append(1 + int(np.sum(keep & (s > s[r]))))
        out_own.append(1 + int(np.sum(keep & (seg == seg[r]) & (s > s[r]))))
        cand = np.where(keep, s, -np.inf)
        top1.append(seg[r] if out_multi[-1] == 1 else seg[int(np.argmax(cand))])
    return np.array(out_multi), np.array(out_own), np.array(top1)


@pytest.mark.parametrize("backend", ["numpy", "faiss"])
def test_ranks_equal_brute_force_with_exclusions(backend):
    rng = np.random.default_rng(3)
    task = _toy_task(rng)
    q = _unit(rng.normal(size=(len(task.query_texts), 16)))
    c = _unit(rng.normal(size=(len(task.cand_texts), 16)))
    res = S.evaluate_task_embeddings(task, q, c, backend=backend)
    multi, own, top1 = _brute(task, q, c)
    assert res.per_query["rank_multi"].tolist() == multi.tolist()
    assert res.per_query["rank_own"].tolist() == own.tolist()
    assert res.per_query["top1_segment"].tolist() == top1.tolist()
    assert (multi > own).any() and (multi > 1).any()  # the case exercises the gap and misses


def test_macro_metrics_equal_ranx_per_language():
    from ranx import Qrels, Run, evaluate

    rng = np.random.default_rng(7)
    task = _toy_task(rng, n_excl=0)
    task.exclude = np.zeros((len(task.query_texts), 0), dtype=np.int64)
    q = _unit(rng.normal(size=(len(task.query_texts), 16)))
    c = _unit(rng.normal(size=(len(task.cand_texts), 16)))
    res = S.evaluate_task_embeddings(task, q, c)
    scores = q @ c.T
    for lang in res.languages:
        idx = [i for i, lg in enumerate(task.query_langs) if lg == lang]
        qrels = Qrels({f"q{i}": {f"c{task.relevant[i]}": 1} for i in idx})
        run = Run({f"q{i}": {f"c{j}": float(scores[i, j]) for j in range(len(c))} for i in idx})
        ref = evaluate(qrels, run, ["mrr", "ndcg@10", "recall@1", "recall@10", "recall@100"])
        row = res.per_language[lang]
        assert row["multi_map"] == pytest.approx(ref["mrr"], abs=1e-9)
        assert row["multi_ndcg10"] == pytest.approx(ref["ndcg@10"], abs=1e-9)
        assert row["multi_r1"] == pytest.approx(ref["recall@1"], abs=1e-9)
        assert row["multi_r10"] == pytest.approx(ref["recall@10"], abs=1e-9)
        assert row["multi_r100"] == pytest.approx(ref["recall@100"], abs=1e-9)
    langs = res.languages
    assert res.summary["multi"]["map"] == pytest.approx(np.mean([res.per_language[lg]["multi_map"] for lg in langs]))
    # the three kinds of wrong top-1 partition the misses
    for lang in langs:
        row = res.per_language[lang]
        total = row["miss1_query_lang"] + row["miss1_relevant_lang"] + row["miss1_other_lang"]
        assert total == pytest.approx(1 - row["multi_r1"])


# ---- the tasks on the real files ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tasks(shared_data: Path) -> dict[str, T.ShiftTask]:
    return T.load_tasks(shared_data)


def test_tydi_task_is_every_dev_question_against_every_paragraph(tasks, shared_data: Path):
    raw = {}
    for f in sorted((shared_data / "tydiqa-goldp").glob("*_tydiqa_dev.json")):
        doc = json.loads(f.read_text(encoding="utf-8"))
        for art in doc["data"]:
            for para in art["paragraphs"]:
                for qa in para["qas"]:
                    raw[qa["id"]] = (qa["question"], para["context"])
    t = tasks["tydi"]
    assert len(t.query_texts) == len(raw)  # all dev questions, not a subset
    assert len(t.segments) == 9 and t.segments == t.seg_langs
    for i in range(0, len(t.query_ids), 97):
        question, context = raw[t.query_ids[i]]
        assert t.query_texts[i] == question.strip() or t.query_texts[i] == question
        assert t.cand_texts[t.relevant[i]].strip() == context.strip()
        assert t.seg_langs[t.segment_of(np.array([t.relevant[i]]))[0]] == t.query_langs[i]
    assert t.exclude.shape[1] == 0


def test_tatoeba_task_relevance_and_filtering(tasks, shared_data: Path):
    t = tasks["tatoeba"]
    folder = shared_data / "tatoeba-laser"
    lines = {}
    for f in sorted(folder.glob("tatoeba.*-eng.*")):
        lines[f.name] = f.read_text(encoding="utf-8").rstrip("\n").split("\n")
    n_lines = sum(len(v) for k, v in lines.items() if not k.endswith(".eng"))
    assert len(t.query_texts) == n_lines and len(t.cand_texts) == 2 * n_lines
    de_x, de_en = lines["tatoeba.deu-eng.deu"], lines["tatoeba.deu-eng.eng"]
    i = t.query_langs.index("de")
    for k in (0, 17, 999):
        assert t.query_texts[i + k] == de_x[k]
        assert t.cand_texts[t.relevant[i + k]] == de_en[k]
        assert t.seg_langs[t.segment_of(np.array([t.relevant[i + k]]))[0]] == "en"
    for row in range(len(t.query_texts)):
        ex = set(t.exclude[row][t.exclude[row] >= 0].tolist())
        assert t.relevant[row] not in ex and t.query_self[row] in ex
    # an English sentence found in several files: every other line holding it is filtered out of the pool
    en_text = "I will be back soon."
    holders = [j for j, s in enumerate(t.cand_texts) if s == en_text]
    assert len(holders) >= 2
    row = int(np.nonzero(t.relevant == holders[0])[0][0])
    ex = set(t.exclude[row].tolist())
    assert set(holders[1:]) <= ex
    others = [int(np.nonzero(t.relevant == h)[0][0]) for h in holders[1:]]
    assert {int(t.query_self[o]) for o in others} <= ex  # their non-English sides are translations of the query too


# ---- with the tiny model --------------------------------------------------------------------------------------------


def test_own_segment_ranks_equal_evaluate_beir(tiny_model: Path, shared_data: Path, tmp_path: Path):
    from hybridbatch.data.lookup import load_corpus
    from hybridbatch.evaluation.beir import evaluate_beir
    from hybridbatch.models.loading import load_model

    model = load_model(str(tiny_model), max_seq_length=64)
    corpus = load_corpus("tydiqa-goldp", shared_data, split="dev")
    arts = {q.article for lang in corpus.languages for q in corpus.questions[lang][:8]}
    small = corpus.subset(arts)
    task = T.tydi_task(small)
    res = S.evaluate_shift(model, {"tydi": task}, cache_dir=tmp_path / "cache", model_name="tiny")["tydi"]
    beir = evaluate_beir(model, small, batch_size=64)
    ref = dict(zip(beir.per_query["qid_names"][beir.per_query["qid"]], beir.per_query["rank"]))
    ours = dict(zip(res.per_query["qid"], res.per_query["rank_own"]))
    assert ours == {k: int(v) for k, v in ref.items()}
    assert np.all(res.per_query["rank_multi"] >= res.per_query["rank_own"])
    # the cache answers a second run without encoding
    again = S.evaluate_shift(model, {"tydi": task}, cache_dir=tmp_path / "cache", model_name="tiny")["tydi"]
    assert again.settings["cache_misses"] == 0 and again.settings["cache_hits"] > 0
    assert again.per_query["rank_multi"].tolist() == res.per_query["rank_multi"].tolist()
    # an exported runtime encodes anew (its vectors are cached apart from torch's) and ranks as torch does
    onnx = S.evaluate_shift(model, {"tydi": task}, cache_dir=tmp_path / "cache", model_name="tiny",
                            encoder="onnx")["tydi"]
    assert onnx.settings["encoder"] == "onnx" and onnx.settings["cache_misses"] > 0
    assert onnx.summary["multi"]["map"] == pytest.approx(res.summary["multi"]["map"], abs=2e-3)


def test_tatoeba_own_segment_p1_equals_alignment_p1(tiny_model: Path, shared_data: Path):
    from hybridbatch.analysis.alignment import translation_accuracy
    from hybridbatch.data.pairs import read_tatoeba
    from hybridbatch.models.loading import load_model

    model = load_model(str(tiny_model), max_seq_length=64)
    pairs = {k: v for k, v in read_tatoeba(shared_data / "tatoeba-laser").items() if k in ("de", "zh", "th")}
    task = T.tatoeba_task(pairs, limit=60)
    q, c = S.encode_task(model, task)
    res = S.evaluate_task_embeddings(task, q, c)
    for lang in res.languages:
        rows = np.array([i for i, lg in enumerate(task.query_langs) if lg == lang])
        p_xy, _ = translation_accuracy(q[rows], c[task.relevant[rows]])
        assert res.per_language[lang]["own_r1"] == pytest.approx(p_xy)
        assert res.per_language[lang]["multi_r1"] <= res.per_language[lang]["own_r1"]


def test_cli_writes_report_with_provenance(tiny_model: Path, shared_data: Path, tmp_path: Path, monkeypatch):
    from typer.testing import CliRunner

    from hybridbatch.cli import app

    monkeypatch.setenv("HYBRIDBATCH_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "out"
    r = CliRunner().invoke(app, ["shift", "--model", str(tiny_model), "--data-dir", str(shared_data), "--out",
                                 str(out), "--limit", "6", "--no-progress", "--max-seq-length", "48"])
    assert r.exit_code == 0, r.output
    body = json.loads((out / "shift.json").read_text())
    assert set(body["tasks"]) == {"tydi", "tatoeba"}
    prov = body["provenance"]
    assert prov["git_commit"] and prov["model"] == str(tiny_model) and prov["model_weights_sha256"]
    assert prov["data"]["tydi"]["checksum"] and prov["data"]["tatoeba"]["checksum"]
    for name in ("tydi", "tatoeba"):
        pq = np.load(out / body["tasks"][name]["per_query_file"])
        by_lang = [np.mean(1.0 / pq["rank_multi"][pq["qlang"] == lg]) for lg in np.unique(pq["qlang"])]
        assert body["tasks"][name]["summary"]["multi"]["map"] == pytest.approx(np.mean(by_lang))
    assert (out / "shift.png").stat().st_size > 5000 and "multilingual pool" in (out / "shift.md").read_text()
    assert "tydi\tmulti_map=" in r.stdout
