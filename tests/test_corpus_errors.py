"""One test per class of bad input: each asserts that the DataError names the file and the field (JSON path or line),
that every problem in a file set is reported (not just the first), and that no malformed shape escapes as a bare
KeyError / TypeError."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from corpus_helpers import valid_doc, write
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hybridbatch.data.checks import check_paths
from hybridbatch.data.lookup import lareqa_files, load_corpus, load_pairs
from hybridbatch.data.pairs import read_pairs_jsonl, read_tatoeba
from hybridbatch.data.qa import read_lareqa, read_squad
from hybridbatch.errors import DataError, Problem

P0 = "data[0].paragraphs[0]"


def errors_of(files: dict[str, Path], reader: Any = read_lareqa) -> list[Problem]:
    with pytest.raises(DataError) as e:
        reader(files, "t") if reader is not read_lareqa else reader(files)
    return e.value.problems


def one_error(tmp_path: Path, mutate: Any, lang: str = "en") -> Problem:
    d = valid_doc(lang)
    mutate(d)
    path = write(tmp_path / f"{lang}.json", d)
    problems = errors_of({lang: path})
    assert len(problems) == 1, problems
    assert problems[0].file == str(path)
    return problems[0]


def test_valid_doc_is_valid(tmp_path: Path) -> None:
    corpus = read_lareqa({"en": write(tmp_path / "en.json", valid_doc())})
    assert len(corpus.questions["en"]) == 5 and len(corpus.candidates["en"]) == 7 and not corpus.warnings


# ---- file level ---------------------------------------------------------------------------------------------------


def test_malformed_json_names_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "en.json"
    text = json.dumps(valid_doc(), indent=1).replace('"title": "Mountains"', '"title" "Mountains"')
    path.write_text(text, encoding="utf-8")
    (p,) = errors_of({"en": path})
    line = text[: text.index('"title" "Mountains"')].count("\n") + 1
    assert p.file == str(path) and p.where.startswith(f"line {line} column")
    assert "malformed JSON" in p.message and "Expecting ':'" in p.message


def test_truncated_real_file(shared_data: Path, tmp_path: Path) -> None:
    raw = (shared_data / "xquad-r" / "de.json").read_bytes()
    path = tmp_path / "de.json"
    path.write_bytes(raw[: len(raw) // 2])
    (p,) = errors_of({"de": path})
    assert p.file == str(path) and p.where.startswith("line ") and "truncated" in p.message


@pytest.mark.parametrize(("encoding", "hint"), [("latin-1", ""), ("utf-16", "UTF-16")])
def test_wrong_encoding(tmp_path: Path, encoding: str, hint: str) -> None:
    path = tmp_path / "de.json"
    path.write_bytes(json.dumps(valid_doc("de"), ensure_ascii=False).replace("Rhine", "Rhône").encode(encoding))
    (p,) = errors_of({"de": path})
    assert p.file == str(path) and "not valid UTF-8" in p.message and hint in p.message
    assert p.where.startswith("line 1 (byte")


def test_utf8_bom_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "en.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(valid_doc()).encode())
    assert len(read_lareqa({"en": path}).questions["en"]) == 5


@pytest.mark.parametrize(("obj", "where", "words"), [
    ([1, 2], "top level", "expected a SQuAD-style object"),
    ({"version": "1.1"}, "data", "missing field 'data'"),
    ({"data": {"title": "x"}}, "data", "expected a list, got an object"),
])
def test_wrong_top_level_shape(tmp_path: Path, obj: Any, where: str, words: str) -> None:
    path = write(tmp_path / "en.json", obj)
    (p,) = errors_of({"en": path})
    assert (p.file, p.where) == (str(path), where) and words in p.message


# ---- missing fields and wrong types -------------------------------------------------------------------------------


@pytest.mark.parametrize(("mutate", "where", "words"), [
    (lambda d: d["data"][1].pop("title"), "data[1].title", "missing field 'title'"),
    (lambda d: d["data"][0].update(paragraphs="none"), "data[0].paragraphs", "expected a list, got a string"),
    (lambda d: d["data"].append(7), "data[2]", "expected an object (an article), got an integer"),
    (lambda d: d["data"][0]["paragraphs"][1].pop("context"), "data[0].paragraphs[1].context", "missing field"),
    (lambda d: d["data"][0]["paragraphs"][0]["qas"][1].pop("question"), f"{P0}.qas[1].question", "missing field"),
    (lambda d: d["data"][0]["paragraphs"][0]["qas"][1].pop("id"), f"{P0}.qas[1].id", "missing field 'id'"),
    (lambda d: d["data"][0]["paragraphs"][0]["qas"][0].update(id=None), f"{P0}.qas[0].id", "got null"),
    (lambda d: d["data"][0]["paragraphs"][0]["qas"][0].update(answers={}), f"{P0}.qas[0].answers",
     "expected a list, got an object"),
    (lambda d: d["data"][0]["paragraphs"][0]["qas"][0].update(answers=[]), f"{P0}.qas[0].answers", "empty list"),
    (lambda d: d["data"][0]["paragraphs"][0]["qas"][0]["answers"][0].update(answer_start="12"),
     f"{P0}.qas[0].answers[0].answer_start", "expected an integer, got a string ('12')"),
    (lambda d: d["data"][0]["paragraphs"][0]["qas"][0]["answers"][0].update(answer_start=True),
     f"{P0}.qas[0].answers[0].answer_start", "got a boolean"),
    (lambda d: d["data"][0]["paragraphs"][0]["qas"][0]["answers"].__setitem__(0, "x"),
     f"{P0}.qas[0].answers[0]", "expected an object (an answer)"),
    (lambda d: d["data"][0]["paragraphs"][0].pop("sentences"), f"{P0}.sentences", "missing field 'sentences'"),
    (lambda d: d["data"][0]["paragraphs"][0]["sentences"].__setitem__(1, 5), f"{P0}.sentences[1]",
     "expected a string, got an integer"),
    (lambda d: d["data"][0]["paragraphs"][0]["sentence_breaks"].__setitem__(0, [0, "5"]),
     f"{P0}.sentence_breaks[0]", "[start, end] pair of integers"),
])
def test_missing_fields_and_wrong_types(tmp_path: Path, mutate: Any, where: str, words: str) -> None:
    p = one_error(tmp_path, mutate)
    assert p.where == where and words in p.message


# ---- answers ------------------------------------------------------------------------------------------------------


def test_answer_start_outside_every_sentence(tmp_path: Path) -> None:
    def gap(d: dict) -> None:  # the space between sentence 0 and 1 belongs to no LAReQA sentence
        par = d["data"][0]["paragraphs"][0]
        par["qas"][1]["answers"][0]["answer_start"] = par["sentence_breaks"][0][1]

    p = one_error(tmp_path, gap)
    assert p.where == f"{P0}.qas[1].answers[0].answer_start" and "outside every sentence" in p.message


def test_answer_start_beyond_context(tmp_path: Path) -> None:
    p = one_error(tmp_path, lambda d: d["data"][1]["paragraphs"][0]["qas"][0]["answers"][0].update(answer_start=10**6))
    assert p.where == "data[1].paragraphs[0].qas[0].answers[0].answer_start" and "outside the context" in p.message


def test_answer_start_error_in_real_file(shared_data: Path, tmp_path: Path) -> None:
    d = json.loads((shared_data / "xquad-r" / "es.json").read_text(encoding="utf-8"))
    d["data"][3]["paragraphs"][0]["qas"][2]["answers"][0]["answer_start"] = -4
    path = write(tmp_path / "es.json", d)
    (p,) = errors_of({"es": path})
    assert (p.file, p.where) == (str(path), "data[3].paragraphs[0].qas[2].answers[0].answer_start")


# ---- sentence_breaks vs sentences ---------------------------------------------------------------------------------


def _breaks(d: dict) -> list:
    return d["data"][0]["paragraphs"][0]["sentence_breaks"]


@pytest.mark.parametrize(("mutate", "where", "words"), [
    (lambda d: _breaks(d).pop(), f"{P0}.sentence_breaks", "has 2 breaks but 'sentences' has 3"),
    (lambda d: _breaks(d).__setitem__(2, [_breaks(d)[2][0], 10_000]), f"{P0}.sentence_breaks[2]", "out of range"),
    (lambda d: _breaks(d).__setitem__(0, [5, 5]), f"{P0}.sentence_breaks[0]", "out of range"),
    (lambda d: _breaks(d).__setitem__(1, [_breaks(d)[0][1] - 3, _breaks(d)[1][1]]), f"{P0}.sentence_breaks[1]",
     "overlaps or is out of order"),
    (lambda d: _breaks(d).reverse(), f"{P0}.sentence_breaks[1]", "overlaps or is out of order"),
])
def test_bad_sentence_breaks(tmp_path: Path, mutate: Any, where: str, words: str) -> None:
    d = valid_doc()
    mutate(d)
    path = write(tmp_path / "en.json", d)
    problems = errors_of({"en": path})
    assert any(p.where == where and words in p.message and p.file == str(path) for p in problems), problems


def test_sentence_text_mismatch_is_only_a_warning(tmp_path: Path) -> None:
    d = valid_doc()
    d["data"][0]["paragraphs"][0]["sentences"][1] = "It is 1.230 km long."
    corpus = read_lareqa({"en": write(tmp_path / "en.json", d)})
    (w,) = corpus.warnings
    assert w.where == f"{P0}.sentences[1]" and "differs from context" in w.message
    assert corpus.candidates["en"][1].text == "It is 1.230 km long."  # the `sentences` entry, as upstream
    problems, warnings = check_paths([tmp_path / "en.json"])
    assert not problems and warnings == [w]


# ---- empty texts, duplicates, languages ---------------------------------------------------------------------------


@pytest.mark.parametrize(("mutate", "where"), [
    (lambda d: d["data"][0]["paragraphs"][0]["qas"][0].update(question="  "), f"{P0}.qas[0].question"),
    (lambda d: d["data"][0]["paragraphs"][0]["sentences"].__setitem__(2, ""), f"{P0}.sentences[2]"),
    (lambda d: d["data"][0]["paragraphs"][1].update(context=""), "data[0].paragraphs[1].context"),
    (lambda d: d["data"][1].update(title=""), "data[1].title"),
])
def test_empty_texts(tmp_path: Path, mutate: Any, where: str) -> None:
    p = one_error(tmp_path, mutate)
    assert p.where == where and "empty" in p.message


def test_duplicate_question_id_within_a_language(tmp_path: Path) -> None:
    p = one_error(tmp_path, lambda d: d["data"][1]["paragraphs"][0]["qas"][1].update(id="r2"))
    assert p.where == "data[1].paragraphs[0].qas[1].id"
    assert "duplicate question id 'r2'" in p.message and f"{P0}.qas[1]" in p.message
    # The same id in two languages is parallelism, not a duplicate.
    files = {lang: write(tmp_path / "ok" / f"{lang}.json", valid_doc(lang)) for lang in ("en", "de")}
    assert len(read_lareqa(files).by_id()["r2"]) == 2


def test_unknown_language_codes(tmp_path: Path) -> None:
    write(tmp_path / "en.json", valid_doc())
    bad = write(tmp_path / "xx.json", valid_doc())
    with pytest.raises(DataError) as e:
        lareqa_files(tmp_path)
    assert e.value.file == str(bad) and "unknown language code 'xx'" in str(e.value)
    with pytest.raises(DataError) as e:
        load_corpus(tmp_path)
    assert e.value.file == str(bad)
    with pytest.raises(DataError) as e:
        read_lareqa({"klingon": tmp_path / "en.json"})
    assert "unknown language code 'klingon'" in str(e.value)
    clash = write(tmp_path / "two" / "de.json", valid_doc())
    write(tmp_path / "two" / "deu.json", valid_doc())
    with pytest.raises(DataError, match="given twice"):
        lareqa_files(clash.parent)


# ---- every problem, not just the first ------------------------------------------------------------------------------


def test_all_problems_across_files_are_reported(tmp_path: Path) -> None:
    d = valid_doc()
    d["data"][0]["paragraphs"][0]["qas"][0]["answers"][0]["answer_start"] = "3"
    d["data"][0]["paragraphs"][1]["sentence_breaks"].pop()
    d["data"][1]["paragraphs"][0]["qas"][1]["question"] = ""
    en = write(tmp_path / "en.json", d)
    de = tmp_path / "de.json"
    de.write_text('{"data": [', encoding="utf-8")
    with pytest.raises(DataError) as e:
        read_lareqa({"en": en, "de": de})
    got = {(p.file, p.where) for p in e.value.problems}
    assert got == {
        (str(en), f"{P0}.qas[0].answers[0].answer_start"),
        (str(en), "data[0].paragraphs[1].sentence_breaks"),
        (str(en), "data[1].paragraphs[0].qas[1].question"),
        (str(de), "line 1 column 11"),
    }
    assert "(and 3 more problems)" in str(e.value)


# ---- plain SQuAD ----------------------------------------------------------------------------------------------------


def test_read_squad_errors_name_fields(tmp_path: Path) -> None:
    d = valid_doc()
    for art in d["data"]:
        for par in art["paragraphs"]:
            del par["sentences"], par["sentence_breaks"]
    d["data"][0]["paragraphs"][0]["qas"][0]["answers"][0]["answer_start"] = 999
    d["data"][1]["paragraphs"][0]["qas"][0]["id"] = "r1"
    path = write(tmp_path / "english_tydiqa_dev.json", d)
    problems = errors_of({"en": path}, read_squad)
    assert {p.where for p in problems} == {f"{P0}.qas[0].answers[0].answer_start", "data[1].paragraphs[0].qas[0].id"}


# ---- JSONL pairs ----------------------------------------------------------------------------------------------------


def test_pairs_jsonl_errors_name_the_line(tmp_path: Path) -> None:
    lines = [
        json.dumps({"id": "a", "lang": "en", "query": "q", "positive": "p"}),
        '{"id": "b", "lang": "en", "query": "q", "positive": ',          # 2 malformed
        json.dumps({"id": "c", "lang": "en", "query": "q"}),            # 3 missing positive
        json.dumps({"id": "a", "lang": "eng", "query": "q2", "positive": "p2"}),  # 4 duplicate (a, en)
        json.dumps({"id": "d", "lang": "xx", "query": "q", "positive": "p"}),      # 5 unknown language
        json.dumps({"id": "e", "lang": "de", "query": "q", "positive": "p", "negative": 3}),  # 6 bad negative
        json.dumps(["not", "an", "object"]),                            # 7
        json.dumps({"id": "f", "lang": "de", "query": " ", "positive": "p"}),     # 8 empty query
        "",
        json.dumps({"id": "g", "lang": "de", "query": "q", "positive": "p", "negatives": ["n"]}),  # 10 warning
    ]
    path = tmp_path / "pairs.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(DataError) as e:
        read_pairs_jsonl(path)
    got = {p.where: p.message for p in e.value.problems}
    assert all(p.file == str(path) for p in e.value.problems)
    assert "malformed JSON" in got["line 2"]
    assert "missing field 'positive'" in got["line 3: positive"]
    assert "duplicate (id, lang) ('a', 'en'), first on line 1" in got["line 4"]
    assert "unknown language code 'xx'" in got["line 5: lang"]
    assert "string or a list of strings" in got["line 6: negative"]
    assert "expected a JSON object" in got["line 7"]
    assert "empty" in got["line 8: query"]
    assert len(got) == 7
    problems, warnings = check_paths([path])
    assert len(problems) == 7 and [w.where for w in warnings] == ["line 10: negatives"]


def test_pairs_jsonl_empty_and_duplicate_across_files(tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n\n", encoding="utf-8")
    with pytest.raises(DataError, match="no training pairs"):
        read_pairs_jsonl(empty)
    folder = tmp_path / "many"
    folder.mkdir()
    row = json.dumps({"id": "a", "lang": "en", "query": "q", "positive": "p"}) + "\n"
    (folder / "one.jsonl").write_text(row, encoding="utf-8")
    (folder / "two.jsonl").write_text(row, encoding="utf-8")
    with pytest.raises(DataError, match="duplicate"):
        load_pairs(folder)


# ---- Tatoeba ------------------------------------------------------------------------------------------------------


def test_tatoeba_errors(shared_data: Path, tmp_path: Path) -> None:
    src = shared_data / "tatoeba-laser"
    for name in ("tatoeba.deu-eng.deu", "tatoeba.deu-eng.eng", "tatoeba.spa-eng.spa", "tatoeba.ell-eng.ell",
                 "tatoeba.ell-eng.eng"):
        shutil.copy(src / name, tmp_path / name)
    (tmp_path / "tatoeba.deu-eng.eng").chmod(0o644)
    with open(tmp_path / "tatoeba.deu-eng.eng", "a", encoding="utf-8") as f:
        f.write("One line too many.\n")
    (tmp_path / "tatoeba.ell-eng.ell").chmod(0o644)
    lines = (tmp_path / "tatoeba.ell-eng.ell").read_text(encoding="utf-8").split("\n")
    lines[41] = "  "
    (tmp_path / "tatoeba.ell-eng.ell").write_text("\n".join(lines), encoding="utf-8")
    with pytest.raises(DataError) as e:
        read_tatoeba(tmp_path)
    got = {(Path(p.file).name, p.where): p.message for p in e.value.problems}
    assert "1000 lines but tatoeba.deu-eng.eng has 1001" in got[("tatoeba.deu-eng.deu", "line count")]
    assert "missing" in got[("tatoeba.spa-eng.eng", "file")]
    assert "empty sentence" in got[("tatoeba.ell-eng.ell", "line 42")]


# ---- never a bare KeyError / TypeError ----------------------------------------------------------------------------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 2000) | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)


def _nodes(obj: Any, path: tuple = ()) -> list[tuple]:
    out = [path]
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += _nodes(v, (*path, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += _nodes(v, (*path, i))
    return out


BASE = valid_doc()
NODES = [p for p in _nodes(BASE) if p]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.sampled_from(NODES), JSON_VALUES, st.booleans(), st.sampled_from(["lareqa", "paragraph", "sentence"]))
def test_any_malformed_shape_is_a_data_error(tmp_path: Path, node: tuple, value: Any, delete: bool, reader: str
                                             ) -> None:
    d = copy.deepcopy(BASE)
    parent = d
    for k in node[:-1]:
        parent = parent[k]
    if delete:
        del parent[node[-1]]
    else:
        parent[node[-1]] = value
    path = write(tmp_path / "en.json", d)
    try:
        if reader == "lareqa":
            read_lareqa({"en": path})
        else:
            read_squad({"en": path}, "t", reader)  # type: ignore[arg-type]
    except DataError as e:
        assert all(p.file == str(path) for p in e.problems)
