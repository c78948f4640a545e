"""Fuzzing the SQuAD / LAReQA JSON readers: `read_lareqa`, `read_squad` (paragraph and sentence units) and
`load_corpus` on one file. The property, the bookkeeping and the budgets: tests/fuzz_helpers.py."""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from corpus_helpers import paragraph, valid_doc
from fuzz_helpers import (
    MODULE_MARKS,
    HUGE,
    JSON_ANY,
    NASTY_NUMBERS,
    NASTY_STRINGS,
    attempt,
    budgets,
    check_encoding_outcome,
    check_problem,
    damaged_bytes,
    fuzz,
    hang_guard,
    huge_strings,
    record,
    scratch,
    squad_docs,
    truncations_every_prefix,
    truncations_sampled,
    utf8,
    write_json,
)
from hypothesis import note
from hypothesis import strategies as st

from hybridbatch.data.checks import check_paths
from hybridbatch.data.languages import normalize_lang
from hybridbatch.data.lookup import load_corpus
from hybridbatch.data.qa import read_lareqa, read_squad
from hybridbatch.data.sentences import split_sentences
from hybridbatch.errors import UsageError

pytestmark = MODULE_MARKS

QA_READERS: dict[str, Callable[[Path], Any]] = {
    "read_lareqa": lambda f: read_lareqa({"en": f}),
    "read_squad(paragraph)": lambda f: read_squad({"en": f}, "t", "paragraph"),
    "read_squad(sentence)": lambda f: read_squad({"en": f}, "t", "sentence"),
    "load_corpus(file)": lambda f: load_corpus(f),
}


# ---- 1. arbitrary JSON values, and SQuAD-shaped documents with random changes -----------------------------------------


@pytest.mark.parametrize("n", budgets(60))
def test_arbitrary_json_values(n: int) -> None:
    """Any JSON value as the whole file, or as its `data`."""

    def prop(x: tuple[str, Any, bool, bool]) -> None:
        reader, value, wrap, ascii_only = x
        with scratch() as d:
            f = write_json(d / "en.json", {"data": value} if wrap else value, ascii_only=ascii_only)
            outcome, _ = attempt(f"arbitrary JSON value ({reader})", lambda: QA_READERS[reader](f), files=[f])
            top = {"data": value} if wrap else value
            if not (isinstance(top, dict) and isinstance(top.get("data"), list) and top["data"]):
                assert outcome == "data-error"

    fuzz(n, st.tuples(st.sampled_from(list(QA_READERS)), JSON_ANY, st.booleans(), st.booleans()), prop)


@pytest.mark.parametrize("n", budgets(100))
def test_squad_shaped_documents_with_random_changes(n: int) -> None:
    """Nested wrong types, missing and extra fields, shuffled and duplicated lists, NaN / inf / huge values anywhere."""

    def prop(x: tuple[str, bool, dict, bool]) -> None:
        reader, lareqa, doc, ascii_only = x
        with scratch() as d:
            f = write_json(d / "en.json", doc, ascii_only=ascii_only, indent=1)
            outcome, value = attempt(f"SQuAD/LAReQA doc with random changes ({reader})",
                                     lambda: QA_READERS[reader](f), files=[f])
            # `data check` agrees with the reader it mirrors (auto-detected format, paragraph units)
            if reader == "load_corpus(file)":
                problems, _ = check_paths([f])
                assert bool(problems) == (outcome == "data-error"), problems
                for p in problems:
                    check_problem(p, [f])

    fuzz(n, st.sampled_from(list(QA_READERS)).flatmap(
        lambda r: st.tuples(st.just(r), st.just(r != "read_squad(sentence)"),
                            squad_docs(lareqa=r != "read_squad(sentence)"), st.booleans())), prop)


# ---- 2. sentence_breaks: shuffled, overlapping, out of range, wrong shapes -------------------------------------------

SENTS = ["The Rhine flows north.", "It is 1,230 km long.", "Basel lies on it.", "Its source is in the Alps."]


def _breaks() -> list[list[int]]:
    return paragraph(SENTS, [])["sentence_breaks"]


BREAK_CHANGES: dict[str, tuple[str, Callable[[st.DrawFn, list], Any]]] = {
    # name: (expected outcome: "error" or "any", change)
    "shuffled": ("error", lambda draw, b: draw(st.permutations(b).filter(lambda p: list(p) != b))),
    "overlapping": ("error", lambda draw, b: [b[0], [b[0][1] - draw(st.integers(1, 5)), b[1][1]], *b[2:]]),
    "end past context": ("error", lambda draw, b: [*b[:-1], [b[-1][0], b[-1][1] + draw(st.integers(1, 10 ** 6))]]),
    "negative start": ("error", lambda draw, b: [[-draw(st.integers(1, 10 ** 6)), b[0][1]], *b[1:]]),
    "start >= end": ("error", lambda draw, b: [[b[0][1], b[0][0]], *b[1:]]),
    "empty span": ("error", lambda draw, b: [[b[0][0], b[0][0]], *b[1:]]),
    "duplicated": ("error", lambda draw, b: [b[0], b[0], *b[2:]]),
    "one break fewer": ("error", lambda draw, b: b[:-1]),
    "one break more": ("error", lambda draw, b: [*b, [b[-1][1], b[-1][1] + 1]]),
    "no breaks": ("error", lambda draw, b: []),
    "wrong arity": ("error", lambda draw, b: [b[0][:1], *b[1:]] if draw(st.booleans()) else [[*b[0], 9], *b[1:]]),
    "wrong element type": ("error", lambda draw, b: [[draw(NASTY_NUMBERS.filter(
        lambda v: not (isinstance(v, int) and not isinstance(v, bool)))), b[0][1]], *b[1:]]),
    "floats": ("error", lambda draw, b: [[float(s), float(e)] for s, e in b]),
    "not a list": ("error", lambda draw, b: draw(st.sampled_from([None, "0 22", {"0": 22}, 22]))),
    "nested wrong type": ("error", lambda draw, b: [draw(JSON_ANY.filter(lambda v: not (
        isinstance(v, list) and len(v) == 2 and all(type(x) is int for x in v)))), *b[1:]]),
    "shifted (text differs: warning)": ("any", lambda draw, b: [[s + 1, e] if i == 1 else [s, e]
                                                                for i, (s, e) in enumerate(b)]),
    "gap (answer may fall in it)": ("any", lambda draw, b: [[s, e - 3] for s, e in b]),
}


@pytest.mark.parametrize("n", budgets(6))
@pytest.mark.parametrize("name", sorted(BREAK_CHANGES))
def test_sentence_breaks(name: str, n: int) -> None:
    @st.composite
    def cases(draw: st.DrawFn) -> tuple[str, dict]:
        doc = valid_doc()
        par = doc["data"][0]["paragraphs"][0] = paragraph(SENTS, [("r1", "How long is it?", 1, "1,230 km"),
                                                                   ("r2", "Where does it start?", 3, "Alps")])
        par["sentence_breaks"] = BREAK_CHANGES[name][1](draw, _breaks())
        return name, doc

    def prop(x: tuple[str, dict]) -> None:
        name, doc = x
        with scratch() as d:
            f = write_json(d / "en.json", doc)
            outcome, value = attempt(f"sentence_breaks: {name}", lambda: read_lareqa({"en": f}), files=[f])
            if BREAK_CHANGES[name][0] == "error":
                assert outcome == "data-error"
                assert all(p.where.startswith("data[0].paragraphs[0].sentence_breaks") for p in value.problems), \
                    value.problems

    fuzz(n, cases(), prop)


# ---- 3. answer starts: NaN, inf, negative, floats, huge, wrong types --------------------------------------------------


@pytest.mark.parametrize("n", budgets(80))
def test_answer_starts(n: int) -> None:
    def prop(x: tuple[str, Any, int]) -> None:
        reader, start, which = x
        doc = valid_doc()
        if reader != "read_lareqa":
            for art in doc["data"]:
                for par in art["paragraphs"]:
                    del par["sentences"], par["sentence_breaks"]
        par = doc["data"][0]["paragraphs"][0]
        par["qas"][which]["answers"][0]["answer_start"] = start
        is_int = isinstance(start, int) and not isinstance(start, bool)
        kind = ("in range" if is_int and 0 <= start < len(par["context"]) else "out of range") if is_int \
            else ("NaN/inf" if isinstance(start, float) and not math.isfinite(start) else type(start).__name__)
        with scratch() as d:
            f = write_json(d / "en.json", doc)
            outcome, value = attempt(f"answer_start: {kind}", lambda: QA_READERS[reader](f), files=[f])
        if kind == "in range":
            in_gap = reader == "read_lareqa" and not any(a <= start < b for a, b in par["sentence_breaks"])
            assert outcome == ("data-error" if in_gap else "valid")
            if outcome == "valid":  # the answer is the candidate holding that character
                q = next(q for q in value.questions["en"] if q.qid == par["qas"][which]["id"])
                cand = value.candidates["en"][q.answer]
                assert cand.doc == "0/0"
                if reader == "read_squad(sentence)":
                    spans = split_sentences(par["context"], "en")
                    hit = next(k for k, (a, b) in enumerate(spans) if a <= start < b)
                    assert cand.text == par["context"][spans[hit][0]:spans[hit][1]].strip()
        else:
            assert outcome == "data-error"
            assert [p.where for p in value.problems] == [f"data[0].paragraphs[0].qas[{which}].answers[0].answer_start"]

    fuzz(n, st.tuples(st.sampled_from(["read_lareqa", "read_squad(paragraph)", "read_squad(sentence)"]),
                      NASTY_NUMBERS | st.integers(-5, 80) | NASTY_STRINGS | JSON_ANY, st.integers(0, 1)), prop)


# ---- 4. language sets: missing languages, ids in some languages only, aliases, unknown codes ------------------------

LANG_KEYS = ["en", "de", "deu", "german", "es", "spa", "zh", "zh-CN", "zh_Hant", "th", "ar", "EN", " de ", "english",
             "de-DE", "xx", "", "q", "tlh", "english2"]
IDS = ["q1", "q2", "q3", "q4", "q5", "q6"]
CLEAN_KEYS = ["en", "de", "es", "zh", "th", "ar", "fra", "russian", "pt-BR"]


@pytest.mark.parametrize("n", budgets(60))
def test_language_sets(n: int) -> None:
    @st.composite
    def cases(draw: st.DrawFn) -> tuple[str, list[tuple[str, str, list[str]]]]:
        reader = draw(st.sampled_from(["read_lareqa", "read_squad(paragraph)", "read_squad(sentence)"]))
        if draw(st.booleans()):  # a usable set: distinct known codes, every file present, ids in some languages only
            keys = draw(st.lists(st.sampled_from(CLEAN_KEYS), min_size=1, max_size=5, unique=True))
            return reader, [(k, "ok", draw(st.lists(st.sampled_from(IDS), unique=True, min_size=1, max_size=6)))
                            for k in keys]
        keys = draw(st.lists(st.sampled_from(LANG_KEYS), min_size=0, max_size=5, unique=True))
        files = [(k, draw(st.sampled_from(["ok", "ok", "ok", "missing file", "a folder", "empty data"])),
                  draw(st.lists(st.sampled_from(IDS), unique=True, max_size=6))) for k in keys]
        return reader, files

    def prop(x: tuple[str, list[tuple[str, str, list[str]]]]) -> None:
        reader, specs = x
        with scratch() as d:
            files: dict[str, Path] = {}
            for i, (key, state, ids) in enumerate(specs):
                path = d / f"f{i}.json"
                arts = [("A", [paragraph([f"Intro {q}.", f"Answer {q} is here.", "End."],
                                         [(q, f"Question {q}?", 1, f"Answer {q}")]) for q in ids])] if ids else []
                doc = {"data": [{"title": t, "paragraphs": ps} for t, ps in arts]}
                if reader != "read_lareqa":
                    for art in doc["data"]:
                        for par in art["paragraphs"]:
                            del par["sentences"], par["sentence_breaks"]
                if state == "ok" or state == "empty data":
                    write_json(path, doc if state == "ok" else {"data": []})
                elif state == "a folder":
                    path.mkdir()
                files[key] = path
            langs = [normalize_lang(k) for k in files]
            expect_ok = bool(specs) and None not in langs and len(set(langs)) == len(langs) and all(
                state == "ok" and ids for _, state, ids in specs)
            cls = "language sets: " + ("valid set" if expect_ok else "broken set")
            fn = (lambda: read_lareqa(files)) if reader == "read_lareqa" else (
                lambda: read_squad(files, "t", reader.split("(")[1][:-1]))  # type: ignore[arg-type]
            if not files:  # an empty file set is a wrong argument, not bad data
                with pytest.raises(UsageError, match="no files given"):
                    fn()
                return record("language sets: no files", "usage-error")
            outcome, value = attempt(cls, fn, files=files.values())
            assert outcome == ("valid" if expect_ok else "data-error")
            if expect_ok:
                assert value.languages == sorted(langs)
                by_id = value.by_id()
                for (key, _, ids), lang in zip(specs, langs):
                    assert sorted(q.qid for q in value.questions[lang]) == sorted(ids)
                    for q in ids:
                        assert lang in by_id[q]

    fuzz(n, cases(), prop)


# ---- 5. truncated real files (the XQuAD-R paragraph, \u escaped and UTF-8) -------------------------------------------

TRUNCATED = ("lareqa (\\u escapes)", "lareqa (UTF-8)")


@pytest.mark.parametrize("n", budgets(30))
def test_truncated_real_files_sampled(n: int, real_small_files: dict[str, Path]) -> None:
    truncations_sampled(n, real_small_files, TRUNCATED)


@pytest.mark.slow
@pytest.mark.heavy  # the exhaustive variant of the sampled test above
def test_truncated_real_files_every_prefix(real_small_files: dict[str, Path]) -> None:
    truncations_every_prefix(real_small_files, TRUNCATED)


# ---- 6. wrong encodings and random bytes -----------------------------------------------------------------------------

UNICODE_DOC = valid_doc("de")
UNICODE_DOC["data"][0]["title"] = "Flüsse Straße Rhône"
UNICODE_DOC["data"][1]["paragraphs"][0]["qas"][0]["question"] = "Wie hoch ist der Mont Blanc? ¿Qué? Ça!"


@pytest.mark.parametrize("n", budgets(20))
def test_wrong_encodings_and_random_bytes(n: int) -> None:
    def prop(x: tuple[str, bytes]) -> None:
        how, raw = x
        with scratch() as d:
            f = d / "de.json"
            f.write_bytes(raw)
            outcome, value = attempt(f"encoding: {how} (LAReQA JSON)", lambda: read_lareqa({"de": f}), files=[f])
        check_encoding_outcome(how, outcome, value)

    fuzz(n, damaged_bytes(json.dumps(UNICODE_DOC, ensure_ascii=False)), prop)


# ---- 7. huge (100 kB) and empty strings -----------------------------------------------------------------------------

STRING_FIELDS = ["context", "question", "sentence", "title", "id", "answer text"]


@pytest.mark.parametrize("n", budgets(40))
def test_huge_and_empty_strings(n: int) -> None:
    """Up to 100 kB in any text field (sentence-splitter worst cases included), or an empty / blank string."""

    def prop(x: tuple[str, str, str, int]) -> None:
        reader, field, s, offset = x
        doc = valid_doc()
        par = doc["data"][0]["paragraphs"][0]
        qa = par["qas"][0]
        if field == "context":  # one sentence spanning the whole (huge) context, the answer somewhere in it
            par.update(context=s, sentences=[s], sentence_breaks=[[0, len(s)]], qas=[qa])
            qa["answers"][0] = {"text": s[offset % max(1, len(s)):][:5], "answer_start": offset % max(1, len(s))}
        elif field == "sentence":
            par["sentences"][0] = s
        elif field == "question":
            qa["question"] = s
        elif field == "title":
            doc["data"][0]["title"] = s
        elif field == "id":
            qa["id"] = s
        else:
            qa["answers"][0]["text"] = s
        if reader != "read_lareqa":
            for art in doc["data"]:
                for p in art["paragraphs"]:
                    p.pop("sentences"), p.pop("sentence_breaks")
        blank = not s.strip()
        with scratch() as d:
            f = write_json(d / "en.json", doc, ascii_only=False)
            t0 = time.perf_counter()
            outcome, value = attempt(f"{'empty/blank' if blank else 'huge' if len(s) > 1000 else 'short'} string: "
                                     f"{field}", lambda: QA_READERS[reader](f), files=[f])
            note(f"{reader} on {len(s)} chars took {time.perf_counter() - t0:.2f} s")
        if field == "answer text" or (field == "sentence" and reader != "read_lareqa"):
            assert outcome == "valid", value  # a wrong answer text is a warning; squad readers ignore sentences
        elif blank or (field == "id" and s in ("r2", "r3", "m1", "m2")):
            assert outcome == "data-error"
            assert len(value.problems) == 1 and value.problems[0].where.endswith(
                {"context": ".context", "question": ".question", "sentence": ".sentences[0]", "title": ".title",
                 "id": ".id"}[field]), value.problems
        else:
            assert outcome == "valid", value

    fuzz(n, st.tuples(st.sampled_from(["read_lareqa", "read_squad(sentence)", "read_squad(paragraph)"]),
                      st.sampled_from(STRING_FIELDS), huge_strings() | NASTY_STRINGS.filter(utf8),
                      st.integers(0, HUGE)), prop)


@pytest.mark.parametrize("text", [
    pytest.param("Ab. " * 25_000, id="25k short sentences"),
    pytest.param("!" * 50_000 + " " * 50_000, id="punctuation run then spaces"),
    pytest.param("Mr. X. " * 14_000, id="abbreviations and initials"),
    pytest.param("?!\") " * 20_000, id="closers"),
    pytest.param("a." + " " * 99_990 + "B", id="one long gap"),
    pytest.param(("\u0e01" * 12 + " ") * 7_500, id="Thai"),
    pytest.param("一。" * 50_000, id="CJK"),
])
def test_sentence_splitter_is_linear_on_100kB(text: str) -> None:
    """split_sentences on 100 kB pathological contexts: well under a second (it was quadratic: 73 s for the first),
    and the spans still partition the text."""
    t0 = time.perf_counter()
    with hang_guard():
        spans = split_sentences(text)
    assert time.perf_counter() - t0 < 5.0
    assert spans[0][0] == 0 and spans[-1][1] == len(text)
    assert all(a < b and b == c for (a, b), (c, _) in zip(spans, spans[1:]))
    record("huge string: split_sentences worst cases", "valid")


# ---- 11. edge cases named one by one ---------------------------------------------------------------------------------


def _edge_json(d: Path, name: str) -> Path:
    f = d / "en.json"
    if name == "deeply nested JSON (100k brackets)":
        f.write_text('{"data": ' + "[" * 100_000 + "]" * 100_000 + "}", encoding="utf-8")
    elif name == "deeply nested objects":
        f.write_text('{"data": [' + '{"a": ' * 50_000 + "1" + "}" * 50_000 + "]}", encoding="utf-8")
    elif name == "5000-digit answer_start":
        text = re.sub(r'"answer_start": \d+', '"answer_start": ' + "9" * 5000, json.dumps(valid_doc()), count=1)
        f.write_text(text, encoding="utf-8")
    elif name == "5000-digit id":
        f.write_text(json.dumps(valid_doc()).replace('"id": "r1"', '"id": ' + "1" * 5000), encoding="utf-8")
    elif name == "1e999 answer_start":
        f.write_text(re.sub(r'"answer_start": \d+', '"answer_start": 1e999', json.dumps(valid_doc()), count=1),
                     encoding="utf-8")
    elif name == "a folder named en.json":
        f.mkdir()
    elif name == "dangling symlink":
        f.symlink_to(d / "missing.json")
    elif name == "missing file":
        pass
    elif name == "empty file":
        f.write_bytes(b"")
    elif name == "BOM only":
        f.write_bytes(b"\xef\xbb\xbf")
    elif name == "NUL bytes":
        f.write_bytes(json.dumps(valid_doc()).encode()[:100] + b"\x00" * 10)
    elif name == "lone surrogate in a question":
        doc = valid_doc()
        doc["data"][0]["paragraphs"][0]["qas"][0]["question"] = "How long\ud800?"
        write_json(f, doc)
    elif name == "lone surrogate in a sentence":
        doc = valid_doc()
        doc["data"][0]["paragraphs"][0]["sentences"][0] = "\udc80"
        write_json(f, doc)
    elif name == "lone surrogate in a wrong-typed value":
        write_json(f, {"data": {"x": "\ud800"}})
    elif name == "CESU-8 surrogate bytes":
        doc = valid_doc()
        doc["data"][0]["title"] = "Rivers \ud83d"
        write_json(f, doc, ascii_only=False)
    else:
        raise AssertionError(name)
    return f


EDGE_JSON = ["deeply nested JSON (100k brackets)", "deeply nested objects", "5000-digit answer_start", "5000-digit id",
             "1e999 answer_start", "a folder named en.json", "dangling symlink", "missing file", "empty file",
             "BOM only", "NUL bytes", "lone surrogate in a question", "lone surrogate in a sentence",
             "lone surrogate in a wrong-typed value", "CESU-8 surrogate bytes"]


@pytest.mark.parametrize("reader", ["read_lareqa", "read_squad(paragraph)", "read_squad(sentence)"])
@pytest.mark.parametrize("name", EDGE_JSON)
def test_edge_cases_json(name: str, reader: str, tmp_path: Path) -> None:
    f = _edge_json(tmp_path, name)
    outcome, value = attempt(f"edge case: {name}", lambda: QA_READERS[reader](f), files=[f])
    if name == "lone surrogate in a sentence" and reader != "read_lareqa":
        assert outcome == "valid"  # plain SQuAD readers ignore `sentences`
    else:
        assert outcome == "data-error"  # none of these is a usable file
