"""Readers on the real data in ../shared/data and on a hand-made partially parallel set; the article split; lookup
order of named datasets; the sentence splitter against LAReQA's own sentence breaks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from corpus_helpers import PARTIAL_IDS, paragraph, partial_set, write

from hybridbatch import data as C
from hybridbatch.data.checks import corpus_stats
from hybridbatch.data.languages import normalize_lang
from hybridbatch.data.lookup import lareqa_files, load_corpus, load_pairs
from hybridbatch.data.pairs import read_pairs_jsonl, read_tatoeba
from hybridbatch.data.qa import read_lareqa, read_squad
from hybridbatch.data.records import QACorpus, passage_text
from hybridbatch.data.sentences import split_sentences
from hybridbatch.errors import UsageError

XQ_CANDIDATES = {"ar": 1222, "de": 1276, "el": 1234, "en": 1180, "es": 1215, "hi": 1244, "ru": 1219, "th": 852,
                 "tr": 1167, "vi": 1209, "zh": 1196}
TYDI_DEV = {"ar": 921, "bn": 113, "en": 440, "fi": 782, "id": 565, "ko": 276, "ru": 812, "sw": 499, "te": 669}


# ---- XQuAD-R (real) ---------------------------------------------------------------------------------------------


def test_xquad_r_counts_and_full_parallelism(xquad: QACorpus) -> None:
    assert xquad.languages == sorted(XQ_CANDIDATES)
    assert {lang: len(v) for lang, v in xquad.candidates.items()} == XQ_CANDIDATES
    assert sum(len(v) for v in xquad.candidates.values()) == 13014
    assert all(len(xquad.questions[lang]) == 1190 for lang in xquad.languages)
    by_id = xquad.by_id()
    assert len(by_id) == 1190
    assert all(len(v) == 11 for v in by_id.values())  # 11 relevant copies per question
    # Every question's answer sentence is a sentence of its own paragraph and article.
    for lang in xquad.languages:
        pool = xquad.candidates[lang]
        for q in xquad.questions[lang]:
            assert pool[q.answer].article == q.article and pool[q.answer].lang == lang


def test_xquad_r_answer_sentence_holds_the_answer_text(shared_data: Path, xquad: QACorpus) -> None:
    raw = json.loads((shared_data / "xquad-r" / "en.json").read_text(encoding="utf-8"))
    answers = {qa["id"]: qa["answers"][0]["text"] for a in raw["data"] for p in a["paragraphs"] for qa in p["qas"]}
    pool = xquad.candidates["en"]
    hits = sum(answers[q.qid] in pool[q.answer].text for q in xquad.questions["en"])
    assert hits >= 0.97 * 1190  # the rest are answers that cross a sentence break upstream


def test_xquad_r_tr_mojibake_paragraph_is_a_warning_not_an_error(xquad: QACorpus) -> None:
    assert len(xquad.warnings) == 2
    assert all(w.file.endswith("tr.json") and w.where.startswith("data[9].paragraphs[3].sentences[")
               for w in xquad.warnings)
    # Candidate text is the `sentences` entry (as upstream LAReQA), not the context slice with "â\x81„".
    texts = [c.text for c in xquad.candidates["tr"] if c.doc == "9/3"]
    assert any("1⁞2 in" in t for t in texts) and not any("â" in t for t in texts)


def test_passage_text_with_context(xquad: QACorpus) -> None:
    c = xquad.candidates["en"][0]
    assert passage_text(c, False) == c.text
    assert passage_text(c, True) == f"{c.text}\n{c.context}" and c.text in c.context


# ---- the article split --------------------------------------------------------------------------------------------


def test_split_is_36_12_by_article_disjoint_and_deterministic(xquad: QACorpus) -> None:
    train, test = xquad.split(36, 12)
    assert len(train.articles) == 36 and len(test.articles) == 12
    assert not set(train.articles) & set(test.articles)
    assert train.articles == xquad.articles[:36] and test.articles == xquad.articles[36:]
    train_ids = set(train.by_id())
    test_ids = set(test.by_id())
    assert train_ids and test_ids and not train_ids & test_ids
    assert len(train_ids) + len(test_ids) == 1190
    # Answers are remapped into the smaller pools.
    for part in (train, test):
        for lang in part.languages:
            for q in part.questions[lang]:
                assert part.candidates[lang][q.answer].article == q.article
    again_train, again_test = xquad.split()
    assert [q.qid for q in again_test.questions["de"]] == [q.qid for q in test.questions["de"]]


def test_load_corpus_split_names(shared_data: Path, xquad: QACorpus) -> None:
    test = load_corpus("xquad-r", shared_data, split="test")
    assert test.articles == xquad.articles[36:]
    assert sum(len(v) for v in test.questions.values()) == 11 * len(xquad.split()[1].by_id())
    with pytest.raises(UsageError, match="split"):
        load_corpus("xquad-r", shared_data, split="dev")


# ---- lookup order ---------------------------------------------------------------------------------------------------


def test_named_dataset_lookup_order(shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import platformdirs

    cache = tmp_path / "cache"
    monkeypatch.setattr(platformdirs, "user_cache_dir", lambda *a, **k: str(cache))
    monkeypatch.delenv("HYBRIDBATCH_DATA", raising=False)
    with pytest.raises(UsageError) as e:
        load_corpus("xquad-r")
    assert "--data-dir" in str(e.value) and "HYBRIDBATCH_DATA" in str(e.value) and "data download" in str(e.value)
    # The cache is the last resort.
    partial_set(cache / "data" / "xquad-r")
    assert load_corpus("xquad-r").languages == ["de", "en", "es", "zh"]
    # $HYBRIDBATCH_DATA beats the cache; --data-dir beats both.
    monkeypatch.setenv("HYBRIDBATCH_DATA", str(shared_data))
    assert len(load_corpus("xquad-r").languages) == 11
    other = tmp_path / "other"
    partial_set(other / "xquad-r")
    assert load_corpus("xquad-r", other).languages == ["de", "en", "es", "zh"]
    assert C.data_roots(other)[:2] == [other, shared_data]


# ---- TyDi QA GoldP (real) -------------------------------------------------------------------------------------------


def test_tydiqa_goldp_dev_paragraph_candidates(shared_data: Path) -> None:
    ty = load_corpus("tydiqa-goldp", shared_data)
    assert {lang: len(ty.questions[lang]) for lang in ty.languages} == TYDI_DEV
    by_id = ty.by_id()
    assert all(len(v) == 1 for v in by_id.values())  # native questions: nothing parallel
    raw = json.loads((shared_data / "tydiqa-goldp" / "finnish_tydiqa_dev.json").read_text(encoding="utf-8"))
    answers = {qa["id"]: qa["answers"][0] for a in raw["data"] for p in a["paragraphs"] for qa in p["qas"]}
    pool = ty.candidates["fi"]
    for q in ty.questions["fi"]:
        c = pool[q.answer]
        a = answers[q.qid]
        assert c.context[a["answer_start"]:].startswith(a["text"]) and c.text == c.context.strip()
    # Repeated (title, paragraph) entries are one candidate, so no relevant paragraph has an identical twin.
    assert len({(c.article, c.text) for c in pool}) == len(pool) < len(ty.questions["fi"])


def test_tydiqa_goldp_train_split(shared_data: Path) -> None:
    ty = load_corpus("tydiqa-goldp", shared_data, split="train")
    assert {lang: len(ty.questions[lang]) for lang in ty.languages} == {"en": 3696, "ko": 1625, "sw": 2755}
    pairs = load_pairs("tydiqa-goldp", shared_data)
    assert pairs.languages == ["en", "ko", "sw"] and len(pairs) == 3696 + 1625 + 2755


# ---- read_squad -----------------------------------------------------------------------------------------------------


def test_read_squad_paragraph_and_sentence_units_on_xquad(shared_data: Path) -> None:
    files = {"en": shared_data / "xquad-r" / "en.json", "zh": shared_data / "xquad-r" / "zh.json"}
    par = read_squad(files, "xquad", "paragraph")
    assert {lang: len(par.candidates[lang]) for lang in par.languages} == {"en": 240, "zh": 240}
    sent = read_squad(files, "xquad", "sentence")
    raw = json.loads(files["en"].read_text(encoding="utf-8"))
    answers = {qa["id"]: qa["answers"][0]["text"] for a in raw["data"] for p in a["paragraphs"] for qa in p["qas"]}
    for lang, gold in (("en", 1180), ("zh", 1196)):
        assert abs(len(sent.candidates[lang]) - gold) <= 0.05 * gold
        assert len(sent.questions[lang]) == 1190
    pool = sent.candidates["en"]
    assert sum(answers[q.qid] in pool[q.answer].text for q in sent.questions["en"]) >= 0.95 * 1190


def test_read_squad_rejects_bad_unit(shared_data: Path) -> None:
    with pytest.raises(UsageError):
        read_squad({"en": shared_data / "xquad-r" / "en.json"}, "x", "word")  # type: ignore[arg-type]


# ---- sentence splitter ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "lang", "expected"),
    [
        ("Mr. Smith paid 3.5 dollars. Then he left! Did he? yes he did.", "en",
         ["Mr. Smith paid 3.5 dollars.", "Then he left!", "Did he? yes he did."]),
        ("The U.S. army won. It was 1945.", "en", ["The U.S. army won.", "It was 1945."]),
        ("北京是首都。上海很大！你去过吗？好。", "zh", ["北京是首都。", "上海很大！", "你去过吗？", "好。"]),
        ("भारत एक देश है। दिल्ली राजधानी है।", "hi", ["भारत एक देश है।", "दिल्ली राजधानी है।"]),
        ("«Он пришёл.» Потом ушёл.", "ru", ["«Он пришёл.»", "Потом ушёл."]),
        ("هل هذا صحيح؟ نعم.", "ar", ["هل هذا صحيح؟", "نعم."]),
    ],
)
def test_split_sentences_examples(text: str, lang: str, expected: list[str]) -> None:
    spans = split_sentences(text, lang)
    assert [text[a:b].strip() for a, b in spans] == expected
    assert spans[0][0] == 0 and spans[-1][1] == len(text)
    assert all(b == c for (_, b), (c, _) in zip(spans, spans[1:]))  # a partition: every offset in one span


@pytest.mark.parametrize("lang", ["en", "de", "ru", "hi", "zh", "ar"])
def test_splitter_reproduces_lareqa_breaks(shared_data: Path, lang: str) -> None:
    raw = json.loads((shared_data / "xquad-r" / f"{lang}.json").read_text(encoding="utf-8"))
    hit = total = 0
    for art in raw["data"]:
        for par in art["paragraphs"]:
            gold = {s for s, _ in par["sentence_breaks"][1:]}
            ours = {s for s, _ in split_sentences(par["context"], lang)[1:]}
            hit += len(gold & ours)
            total += len(gold)
    assert hit / total >= 0.93


def test_thai_split_is_approximate_but_close_in_count(shared_data: Path) -> None:
    raw = json.loads((shared_data / "xquad-r" / "th.json").read_text(encoding="utf-8"))
    ours = sum(len(split_sentences(p["context"], "th")) for a in raw["data"] for p in a["paragraphs"])
    assert abs(ours - 852) <= 0.35 * 852


# ---- partially parallel (MLQA-R style) ------------------------------------------------------------------------------


def test_partial_parallel_set(tmp_path: Path) -> None:
    files = partial_set(tmp_path / "mlqa-r")
    corpus = read_lareqa(files, "partial")
    assert corpus.languages == ["de", "en", "es", "zh"]
    by_id = corpus.by_id()
    assert {qid: tuple(sorted(v)) for qid, v in by_id.items()} == {k: tuple(sorted(v)) for k, v in PARTIAL_IDS.items()}
    for qid, by_lang in by_id.items():
        for lang, q in by_lang.items():
            assert corpus.candidates[lang][q.answer].text == f"{lang} answer {qid} is here."
    st = corpus_stats(corpus)
    assert st["ids_in_k_languages"] == {"2": 3, "3": 3}
    assert st["languages"]["zh"] == {"questions": 3, "paragraphs": 3, "candidates": 9, "shared_ids": 3}
    pairs = corpus.pairs(hard_negatives=True)
    assert pairs.ids_in("en", "zh") == ["q4"]
    assert sorted(pairs.ids_in("de", "es")) == ["q1", "q3", "q6"]
    assert pairs.items["q4"]["zh"].negatives == ("zh intro for q4.", "zh outro q4.")
    # The same folder through load_corpus, and a split that needs more articles than exist.
    assert load_corpus(tmp_path / "mlqa-r").by_id().keys() == by_id.keys()
    train, test = corpus.split(2, 1)
    assert set(train.articles) == {"A", "B"} and test.articles == ["C"]
    assert set(test.by_id()) == {"q5", "q6"}
    with pytest.raises(UsageError):
        corpus.split()


def test_single_file_and_alias_file_names(tmp_path: Path) -> None:
    files = partial_set(tmp_path / "p")
    (tmp_path / "p" / "de.json").rename(tmp_path / "p" / "deu.json")
    assert "de" in lareqa_files(tmp_path / "p")
    one = load_corpus(files["en"])
    assert one.languages == ["en"] and len(one.questions["en"]) == 4


# ---- JSONL pairs ----------------------------------------------------------------------------------------------------


def test_read_pairs_jsonl(tmp_path: Path) -> None:
    rows = [
        {"id": "a", "lang": "en", "query": "Where is Basel?", "positive": "Basel is on the Rhine."},
        {"id": "a", "lang": "deu", "query": "Wo liegt Basel?", "positive": "Basel liegt am Rhein.",
         "negative": "Köln liegt auch am Rhein."},
        {"id": 7, "lang": "es", "query": "¿Qué?", "positive": "Esto.", "negative": ["No.", "Tampoco."]},
    ]
    path = tmp_path / "mine.jsonl"
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n\n", encoding="utf-8")
    ps = read_pairs_jsonl(path)
    assert ps.name == "mine" and ps.languages == ["de", "en", "es"] and len(ps) == 3
    assert ps.ids_in("en", "de") == ["a"]
    assert ps.items["a"]["de"].negatives == ("Köln liegt auch am Rhein.",)
    assert ps.items["7"]["es"].negatives == ("No.", "Tampoco.")
    assert len(ps.checksum) == 64
    assert load_pairs(path).items == ps.items
    # A folder of JSONL files is merged.
    (tmp_path / "more.jsonl").write_text(json.dumps(
        {"id": "b", "lang": "en", "query": "q", "positive": "p"}) + "\n", encoding="utf-8")
    merged = load_pairs(tmp_path)
    assert sorted(merged.items) == ["7", "a", "b"]


def test_load_pairs_from_xquad_train_split(shared_data: Path, xquad: QACorpus) -> None:
    ps = load_pairs("xquad-r", shared_data, context=True, hard_negatives=True)
    train, test = xquad.split()
    assert set(ps.items) == set(train.by_id()) and not set(ps.items) & set(test.by_id())
    assert all(len(v) == 11 for v in ps.items.values())
    item = next(iter(ps.items.values()))["en"]
    assert "\n" in item.positive and item.negatives and all("\n" in n for n in item.negatives)


# ---- Tatoeba (real) -------------------------------------------------------------------------------------------------


def test_read_tatoeba(shared_data: Path) -> None:
    tt = read_tatoeba(shared_data / "tatoeba-laser")
    assert sorted(tt) == ["ar", "de", "el", "es", "hi", "ro", "ru", "th", "tr", "vi", "zh"]
    for lang, (xs, en) in tt.items():
        assert len(xs) == len(en) == (548 if lang == "th" else 1000)
        assert all(x.strip() for x in xs) and all(e.strip() for e in en)
    raw_de = (shared_data / "tatoeba-laser" / "tatoeba.deu-eng.deu").read_text(encoding="utf-8").split("\n")
    raw_en = (shared_data / "tatoeba-laser" / "tatoeba.deu-eng.eng").read_text(encoding="utf-8").split("\n")
    assert tt["de"][0][500] == raw_de[500] and tt["de"][1][500] == raw_en[500]


# ---- language table -------------------------------------------------------------------------------------------------


def test_language_table_covers_every_dataset_code() -> None:
    for code in "ar de el en es hi ru th tr vi zh bn fi id ko sw te ro ja".split():
        assert normalize_lang(code) == code
    for alias, code in {"ara": "ar", "cmn": "zh", "deu": "de", "ell": "el", "hin": "hi", "ron": "ro", "rus": "ru",
                        "spa": "es", "tha": "th", "tur": "tr", "vie": "vi", "eng": "en", "telugu": "te",
                        "zh-CN": "zh", "pt_BR": "pt", "German": "de"}.items():
        assert normalize_lang(alias) == code
    for bad in ("xx", "foo", "", "english2", "q"):
        assert normalize_lang(bad) is None
    assert C.lang_from_path("korean_tydiqa_dev.json") == "ko"
    assert C.lang_from_path("xquad.vi.json") == "vi"
    assert C.lang_from_path("my_data.json") is None


def test_paragraph_helper_roundtrip(tmp_path: Path) -> None:
    """The test builder itself yields valid LAReQA (so error tests break exactly one thing)."""
    p = paragraph(["A b.", "C d."], [("x", "q?", 1, "d")])
    corpus = read_lareqa({"en": write(tmp_path / "en.json", {"data": [{"title": "t", "paragraphs": [p]}]})})
    assert corpus.candidates["en"][corpus.questions["en"][0].answer].text == "C d." and not corpus.warnings


def test_load_pairs_train_split_rules(tmp_path: Path) -> None:
    """A folder without held-out articles is trained on in full; asking load_corpus for the article split of a small
    corpus is an error that says what to do instead."""
    partial_set(tmp_path / "own")
    assert len(load_pairs(tmp_path / "own").items) == 6
    assert len(load_pairs(tmp_path / "own", split=None).items) == 6
    with pytest.raises(UsageError, match="split=None"):
        load_corpus(tmp_path / "own", split="train")


def test_load_pairs_on_an_xquad_folder_still_holds_out_the_test_articles(shared_data: Path, xquad: QACorpus) -> None:
    ps = load_pairs(shared_data / "xquad-r")
    assert set(ps.items) == set(xquad.split()[0].by_id())
