"""Fuzzing the data readers (issue "Reliability", part 1; docs/RELIABILITY.md).

Property, for every generated input: `read_lareqa`, `read_squad` (paragraph and sentence units), `read_pairs_jsonl`,
`read_tatoeba`, `load_corpus` (files and folders), `read_xlinghealth` (damaged workbooks) and `read_mkqa` either
return data that satisfies the corpus invariants (`check_corpus`, `check_pairs`, `check_tatoeba`), or raise a
`DataError` whose every problem names one of the input files and a non-empty location (`check_data_error`);
`load_corpus` may also raise a `UsageError` naming the path when a folder holds no `<lang>.json` at all. Any other
exception, or a hang, fails the test: every example runs under a hypothesis deadline and a hard SIGALRM guard, with
bounded input sizes (strings up to 100 kB).

Where the right answer is known (an out-of-range answer start, a shuffled `sentence_breaks`, a truncated file, a
UTF-16 file, ...) the test also asserts which one it is and where the problem is reported.

Each input class counts the examples it tried and how they ended (valid / data-error / usage-error); the counts go
to hypothesis `event()`s (`--hypothesis-show-statistics`) and to a JSON summary written when the module finishes:
`$HYBRIDBATCH_FUZZ_SUMMARY` if set, else `<pytest basetemp>/fuzz_summary.json`. The `[fast]` variants run by
default; the `[slow]` ones (marked slow; still run in CI) try 4x more examples. `HYBRIDBATCH_FUZZ_SCALE=N`
multiplies every budget.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import os
import re
import shutil
import signal
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from corpus_helpers import paragraph, valid_doc
from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context

from hybridbatch.data.checks import check_paths, corpus_stats, pairs_stats
from hybridbatch.data.languages import ISO639_1, normalize_lang
from hybridbatch.data.lookup import load_corpus
from hybridbatch.data.pairs import read_pairs_jsonl, read_tatoeba
from hybridbatch.data.qa import read_lareqa, read_squad
from hybridbatch.data.records import PairSet, QACorpus
from hybridbatch.data.sentences import split_sentences
from hybridbatch.errors import DataError, Problem, UsageError

pytestmark = pytest.mark.xdist_group(name="fuzz_readers")  # one worker: one summary file

SCALE = float(os.environ.get("HYBRIDBATCH_FUZZ_SCALE", "1"))
SLOW_FACTOR = 4
DEADLINE = timedelta(seconds=5)  # per example; typical examples take a few ms
HARD_LIMIT_S = 30  # SIGALRM: a reader that hangs fails instead of blocking CI
HUGE = 100_000  # longest generated string (characters)
SHARED_DATA = Path(os.environ.get("HYBRIDBATCH_TEST_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def budgets(fast: int) -> list[Any]:
    """`[fast]` and `[slow]` parametrisations of a fuzz test's example budget."""
    n = max(1, int(fast * SCALE))
    return [pytest.param(n, id="fast"), pytest.param(n * SLOW_FACTOR, id="slow", marks=pytest.mark.slow)]


def fuzz(n: int, strategy: st.SearchStrategy, prop: Callable[[Any], None]) -> None:
    """Run `prop` on `n` examples of `strategy` (the budget is a parameter, so settings are made here)."""

    @settings(max_examples=n, deadline=DEADLINE, database=None, print_blob=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much,
                                     HealthCheck.large_base_example])
    @given(strategy)
    def run(x: Any) -> None:
        prop(x)

    run()


# ---- bookkeeping: counts per input class, scratch folders, hang guard ------------------------------------------------

COUNTS: dict[str, Counter] = defaultdict(Counter)
_SCRATCH: list[Path] = []


def record(cls: str, outcome: str) -> None:
    COUNTS[cls][outcome] += 1
    if currently_in_test_context():
        event(f"{cls}: {outcome}")


@pytest.fixture(scope="module", autouse=True)
def fuzz_summary(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    root = tmp_path_factory.mktemp("fuzz")
    _SCRATCH.append(root)
    yield
    body = {
        "scale": SCALE,
        "classes": {k: {**dict(sorted(v.items())), "total": sum(v.values())} for k, v in sorted(COUNTS.items())},
        "total": sum(sum(v.values()) for v in COUNTS.values()),
    }
    path = Path(os.environ.get("HYBRIDBATCH_FUZZ_SUMMARY") or tmp_path_factory.getbasetemp() / "fuzz_summary.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(body, indent=2) + "\n", encoding="utf-8")
    tr = request.config.pluginmanager.get_plugin("terminalreporter")
    if tr is not None:
        tr.ensure_newline()
        tr.write_line(f"fuzz_readers: {body['total']} examples in {len(COUNTS)} input classes -> {path}")


@contextlib.contextmanager
def scratch() -> Iterator[Path]:
    """A fresh folder per example, removed afterwards (the 100 kB examples would otherwise pile up)."""
    d = Path(tempfile.mkdtemp(dir=_SCRATCH[-1]))
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


class Hang(Exception):
    pass


@contextlib.contextmanager
def hang_guard(seconds: int = HARD_LIMIT_S) -> Iterator[None]:
    def boom(signum: int, frame: Any) -> None:
        raise Hang(f"reader still running after {seconds} s")

    old = signal.signal(signal.SIGALRM, boom)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


# ---- the property ---------------------------------------------------------------------------------------------------


def utf8(s: str) -> bool:
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def check_corpus(c: QACorpus) -> None:
    """Invariants every QACorpus must satisfy, and downstream code (stats, training pairs) must run on it."""
    assert isinstance(c, QACorpus)
    assert set(c.questions) == set(c.candidates) and c.languages
    for lang in c.languages:
        assert lang in ISO639_1, lang
        pool = c.candidates[lang]
        assert c.questions[lang], f"{lang}: a language without questions"
        seen: set[str] = set()
        for q in c.questions[lang]:
            assert q.lang == lang
            assert isinstance(q.answer, int) and not isinstance(q.answer, bool) and 0 <= q.answer < len(pool), q
            assert pool[q.answer].article == q.article
            assert isinstance(q.qid, str) and q.qid.strip() and q.qid not in seen, q.qid
            seen.add(q.qid)
            assert isinstance(q.text, str) and q.text.strip() and utf8(q.text), q
        for cand in pool:
            assert cand.lang == lang and isinstance(cand.text, str) and cand.text.strip() and utf8(cand.text), cand
            assert cand.context.strip() and utf8(cand.context) and cand.article.strip() and utf8(cand.article)
    by_id = c.by_id()
    assert sum(len(v) for v in by_id.values()) == sum(len(v) for v in c.questions.values())
    stats = corpus_stats(c)
    json.dumps(stats, ensure_ascii=False).encode("utf-8")
    check_pairs(c.pairs(hard_negatives=True), from_corpus=True)


def check_pairs(ps: PairSet, from_corpus: bool = False) -> None:
    assert isinstance(ps, PairSet) and ps.items
    for qid, by_lang in ps.items.items():
        assert isinstance(qid, str) and qid.strip() and by_lang
        for lang, item in by_lang.items():
            assert lang in ISO639_1
            for s in (item.query, item.positive, *item.negatives):
                assert isinstance(s, str) and s.strip() and utf8(s), item
    json.dumps(pairs_stats(ps), ensure_ascii=False).encode("utf-8")


def check_tatoeba(data: dict[str, tuple[list[str], list[str]]]) -> None:
    assert data
    for lang, (xs, en) in data.items():
        assert lang in ISO639_1 and len(xs) == len(en)
        assert all(isinstance(s, str) and s.strip() and utf8(s) for s in (*xs, *en))


def check_problem(p: Problem, files: Iterable[Path | str] = (), folder: Path | None = None) -> None:
    names = {str(f) for f in files}
    assert p.file in names or (folder is not None and (Path(p.file) == folder or Path(p.file).parent == folder)), (
        p, names, folder)
    assert isinstance(p.where, str) and p.where.strip(), f"problem without a location: {p}"
    assert isinstance(p.message, str) and p.message.strip(), p
    str(p).encode("utf-8")  # printable: the CLI writes it as UTF-8


def check_data_error(e: DataError, files: Iterable[Path | str] = (), folder: Path | None = None) -> None:
    files = list(files)
    assert e.problems
    for p in e.problems:
        check_problem(p, files, folder)
    str(e).encode("utf-8")


def attempt(cls: str, fn: Callable[[], Any], *, files: Iterable[Path | str] = (), folder: Path | None = None,
            usage_ok: bool = False) -> tuple[str, Any]:
    """Run one reader call; check whichever outcome it has; count it under `cls`. Returns (outcome, value)."""
    with hang_guard():
        try:
            value = fn()
        except DataError as e:
            check_data_error(e, files, folder)
            record(cls, "data-error")
            if currently_in_test_context():
                note(f"problems: {e.problems[:5]}")
            return "data-error", e
        except UsageError as e:
            if not usage_ok:
                raise
            assert folder is not None and str(folder) in str(e), e
            record(cls, "usage-error")
            return "usage-error", e
    if isinstance(value, QACorpus):
        check_corpus(value)
    elif isinstance(value, PairSet):
        check_pairs(value)
    else:
        check_tatoeba(value)
    record(cls, "valid")
    return "valid", value


# ---- strategies -----------------------------------------------------------------------------------------------------

# Patterns repeated up to HUGE characters: sentence ends, runs of punctuation and spaces (the splitter's worst
# cases), Thai and CJK, whitespace only, astral and zero-width characters.
PATTERNS = ["Ab. ", "!", "! ", " ", "\n", "x.", "Mr. X. ", "?!\") ", "…  ", "\u0e01" * 12 + " ", "一。", "é",
            "\U0001F600", "\u200b", "a", "\t\r\n", ".", "1.5 ", "Ä ö. Ü! "]


@st.composite
def huge_strings(draw: st.DrawFn, max_size: int = HUGE) -> str:
    n = draw(st.sampled_from([0, 1, 2, 1000, 10_000, max_size]) | st.integers(0, max_size))
    a, b = draw(st.sampled_from(PATTERNS)), draw(st.sampled_from(PATTERNS))
    s = a * (n // (2 * len(a)) + 1) + b * (n // (2 * len(b)) + 1) if draw(st.booleans()) else a * (n // len(a) + 1)
    return s[:n]


SURROGATES = st.builds(lambda a, s, b: a + s + b, st.text(max_size=3), st.characters(categories=["Cs"]),
                       st.text(max_size=3))
NASTY_STRINGS = st.sampled_from(["", " ", "\t\n", "\u00a0", "\u200b", "null", "NaN", "0", "-1", "\x00", "\ufeff"]) \
    | SURROGATES | st.text(max_size=12)
NASTY_NUMBERS = st.sampled_from([math.nan, math.inf, -math.inf, -1, 0, 1, -(10 ** 30), 10 ** 30, 0.0, -0.0, 2.5, 3.0,
                                 1e308, 5e-324, True, False, None, 2 ** 63, -(2 ** 63) - 1]) \
    | st.integers(-10 ** 6, 10 ** 6) | st.floats()
JSON_ANY = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8) | NASTY_STRINGS | NASTY_NUMBERS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8) | NASTY_STRINGS, inner,
                                                                max_size=4),
    max_leaves=12,
)
NASTY = JSON_ANY | NASTY_NUMBERS | NASTY_STRINGS | huge_strings(20_000)

WORD = st.text(st.characters(categories=["L", "N", "P", "Zs", "M", "S"], exclude_characters="\x00"), min_size=1,
               max_size=20)
SENTENCE = WORD.filter(lambda s: bool(s.strip()))
QID = st.text(st.characters(categories=["L", "N"]), min_size=1, max_size=6) | st.integers(0, 20)


def nodes(obj: Any, path: tuple = ()) -> list[tuple]:
    """Every JSON path in `obj` (the root is `()`)."""
    out = [path]
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += nodes(v, (*path, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += nodes(v, (*path, i))
    return out


def mutate(draw: st.DrawFn, doc: Any) -> str:
    """One random change to a JSON document (in place); returns its kind."""
    paths = [p for p in nodes(doc) if p]
    if not paths:
        return "none"
    path = draw(st.sampled_from(paths))
    parent = doc
    for k in path[:-1]:
        parent = parent[k]
    key = path[-1]
    kind = draw(st.sampled_from(["replace", "replace", "delete", "shuffle", "duplicate", "wrap"]))
    if kind == "replace":
        parent[key] = draw(NASTY)
    elif kind == "delete":
        del parent[key]
    elif kind == "wrap":
        parent[key] = draw(st.sampled_from([[parent[key]], {"value": parent[key]}]))
    elif isinstance(parent[key], list) and parent[key]:
        items = parent[key]
        if kind == "shuffle":
            items[:] = draw(st.permutations(items))
        else:
            items.append(copy.deepcopy(items[draw(st.integers(0, len(items) - 1))]))
    return kind


@st.composite
def squad_docs(draw: st.DrawFn, lareqa: bool = True, max_mutations: int = 3) -> dict[str, Any]:
    """A SQuAD / LAReQA document with random texts (valid as generated), then 0..max_mutations random changes."""
    arts = []
    for _ in range(draw(st.integers(0, 3))):
        pars = []
        for _ in range(draw(st.integers(0, 3))):
            sents = draw(st.lists(SENTENCE, min_size=1, max_size=4))
            context = " ".join(sents)
            breaks, pos = [], 0
            for s in sents:
                breaks.append([pos, pos + len(s)])
                pos += len(s) + 1
            qas = []
            for _ in range(draw(st.integers(0, 3))):
                k = draw(st.integers(0, len(sents) - 1))
                start = breaks[k][0] + draw(st.integers(0, len(sents[k]) - 1))
                qas.append({"id": draw(QID), "question": draw(SENTENCE),
                            "answers": [{"text": context[start:start + 4], "answer_start": start}]})
            par: dict[str, Any] = {"context": context, "qas": qas}
            if lareqa:
                par.update(sentences=sents, sentence_breaks=breaks)
            pars.append(par)
        arts.append({"title": draw(SENTENCE), "paragraphs": pars})
    doc = {"version": "1.1", "data": arts}
    kinds = [mutate(draw, doc) for _ in range(draw(st.integers(0, max_mutations)))]
    event(f"mutations: {'+'.join(kinds) or 'none'}")
    return doc


def write_json(path: Path, obj: Any, *, ascii_only: bool = True, indent: int | None = None) -> Path:
    """json.dumps (NaN / Infinity allowed, as Python writes them); lone surrogates go out as \\ud800 escapes, or,
    with ascii_only=False, as CESU bytes that are not valid UTF-8."""
    path.write_bytes(json.dumps(obj, ensure_ascii=ascii_only, indent=indent).encode("utf-8", "surrogatepass"))
    return path


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


# ---- 5. truncated real files --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def real_small_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Small files cut from the real data: one XQuAD-R ru paragraph (3 questions) as upstream writes it (\\u
    escapes) and as UTF-8; JSONL pairs from it (ru + en); the first 12 lines of Tatoeba rus-eng."""
    if not (SHARED_DATA / "xquad-r" / "ru.json").exists():
        pytest.fail(f"test data not found at {SHARED_DATA}; set HYBRIDBATCH_TEST_DATA")
    d = tmp_path_factory.mktemp("real-small")
    out: dict[str, Path] = {}
    rows = []
    for lang in ("ru", "en"):
        full = json.loads((SHARED_DATA / "xquad-r" / f"{lang}.json").read_text(encoding="utf-8"))
        art = full["data"][0]
        par = dict(art["paragraphs"][0], qas=art["paragraphs"][0]["qas"][:3])
        small = {"data": [{"title": art["title"], "paragraphs": [par]}], "version": full["version"]}
        if lang == "ru":
            (d / "escaped").mkdir()
            (d / "utf8").mkdir()
            out["lareqa (\\u escapes)"] = d / "escaped" / "ru.json"
            out["lareqa (\\u escapes)"].write_text(json.dumps(small), encoding="utf-8")
            out["lareqa (UTF-8)"] = d / "utf8" / "ru.json"
            out["lareqa (UTF-8)"].write_text(json.dumps(small, ensure_ascii=False, indent=1), encoding="utf-8")
        corpus = read_lareqa({lang: SHARED_DATA / "xquad-r" / f"{lang}.json"}).subset([art["title"]])
        for q in corpus.questions[lang][:4]:
            rows.append({"id": q.qid, "lang": lang, "query": q.text, "positive": corpus.candidates[lang][q.answer].text})
    out["pairs JSONL"] = d / "pairs.jsonl"
    out["pairs JSONL"].write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    (d / "tatoeba").mkdir()
    for side in ("rus", "eng"):
        lines = (SHARED_DATA / "tatoeba-laser" / f"tatoeba.rus-eng.{side}").read_text(encoding="utf-8").split("\n")
        (d / "tatoeba" / f"tatoeba.rus-eng.{side}").write_text("\n".join(lines[:12]) + "\n", encoding="utf-8")
    out["tatoeba (rus side)"] = d / "tatoeba" / "tatoeba.rus-eng.rus"
    return out


def _truncation_case(kind: str, src: Path, cut: int) -> None:
    raw = src.read_bytes()
    with scratch() as d:
        if kind.startswith("tatoeba"):
            shutil.copy(src.parent / "tatoeba.rus-eng.eng", d / "tatoeba.rus-eng.eng")
        f = d / src.name
        f.write_bytes(raw[:cut])
        whole = raw[:cut].strip() == raw.strip()
        if kind.startswith("lareqa"):
            outcome, value = attempt(f"truncated file: {kind}", lambda: load_corpus(f), files=[f])
            assert outcome == ("valid" if whole else "data-error")
            if not whole:
                (p,) = value.problems
                assert p.where.startswith("line ") and (
                    "truncated" in p.message or "not valid UTF-8" in p.message or cut == 0), p
        elif kind.startswith("pairs"):
            outcome, value = attempt(f"truncated file: {kind}", lambda: read_pairs_jsonl(f), files=[f])
            complete = raw[:cut].count(b"\n")
            if outcome == "valid":
                assert len(value) in (complete, complete + 1)  # the cut fell at a line or JSON end
            else:
                assert cut < len(raw) and all(p.where.startswith("line ") or complete == 0 for p in value.problems)
        else:
            outcome, value = attempt(f"truncated file: {kind}", lambda: read_tatoeba(d), folder=d)
            if outcome == "valid":  # only the last line may be cut short and still align
                assert raw[:cut].count(b"\n") >= raw.count(b"\n") - 1


@pytest.mark.parametrize("n", budgets(60))
def test_truncated_real_files_sampled(n: int, real_small_files: dict[str, Path]) -> None:
    """A prefix of every length (sampled) of small real files: JSON, JSONL and Tatoeba."""
    sizes = {k: p.stat().st_size for k, p in real_small_files.items()}
    fuzz(n, st.sampled_from(sorted(real_small_files)).flatmap(
        lambda k: st.tuples(st.just(k), st.integers(0, sizes[k]))),
        lambda x: _truncation_case(x[0], real_small_files[x[0]], x[1]))


@pytest.mark.slow
def test_truncated_real_files_every_prefix(real_small_files: dict[str, Path]) -> None:
    """Every prefix length of the same files (every k-th byte beyond 1000 bytes, so each file takes about 1000
    reads), exhaustively rather than sampled."""
    for kind, src in real_small_files.items():
        size = src.stat().st_size
        for cut in range(0, size + 1, max(1, size // 1000)):
            _truncation_case(kind, src, cut)


# ---- 6. wrong encodings and random bytes --------------------------------------------------------------------------

UNICODE_DOC = valid_doc("de")
UNICODE_DOC["data"][0]["title"] = "Flüsse Straße Rhône"
UNICODE_DOC["data"][1]["paragraphs"][0]["qas"][0]["question"] = "Wie hoch ist der Mont Blanc? ¿Qué? Ça!"
ENCODINGS = ["latin-1", "cp1252", "utf-16", "utf-16-le", "utf-16-be", "utf-32", "mac-roman"]


def _encode(text: str, encoding: str) -> bytes:
    return text.encode(encoding, errors="replace")


@pytest.mark.parametrize("n", budgets(60))
def test_wrong_encodings_and_random_bytes(n: int) -> None:
    @st.composite
    def cases(draw: st.DrawFn) -> tuple[str, str, bytes]:
        fmt = draw(st.sampled_from(["lareqa", "pairs JSONL", "tatoeba"]))
        if fmt == "lareqa":
            text = json.dumps(UNICODE_DOC, ensure_ascii=False)
        elif fmt == "pairs JSONL":
            text = "".join(json.dumps({"id": f"q{i}", "lang": "de", "query": f"Frage {i} über Größe?",
                                       "positive": "Die Größe ist 3 m."}, ensure_ascii=False) + "\n" for i in range(3))
        else:
            text = "Über den Fluss.\nÇa va très bien.\nStraße.\n"
        how = draw(st.sampled_from(["encoding", "encoding", "random bytes", "flipped bytes", "inserted bytes"]))
        if how == "encoding":
            enc = draw(st.sampled_from(ENCODINGS))
            return fmt, enc, _encode(text, enc)
        raw = bytearray(text.encode("utf-8"))
        if how == "random bytes":
            return fmt, how, draw(st.binary(max_size=2000))
        for _ in range(draw(st.integers(1, 5))):
            i = draw(st.integers(0, len(raw) - 1))
            b = draw(st.integers(0, 255))
            if how == "flipped bytes":
                raw[i] = b
            else:
                raw.insert(i, b)
        return fmt, how, bytes(raw)

    def prop(x: tuple[str, str, bytes]) -> None:
        fmt, how, raw = x
        with scratch() as d:
            if fmt == "lareqa":
                f = d / "de.json"
                f.write_bytes(raw)
                outcome, value = attempt(f"encoding: {how} (LAReQA JSON)", lambda: read_lareqa({"de": f}), files=[f])
            elif fmt == "pairs JSONL":
                f = d / "pairs.jsonl"
                f.write_bytes(raw)
                outcome, value = attempt(f"encoding: {how} (pairs JSONL)", lambda: read_pairs_jsonl(f), files=[f])
            else:
                f = d / "tatoeba.deu-eng.deu"
                f.write_bytes(raw)
                (d / "tatoeba.deu-eng.eng").write_text("One.\nTwo.\nThree.\n", encoding="utf-8")
                outcome, value = attempt(f"encoding: {how} (Tatoeba)", lambda: read_tatoeba(d), folder=d)
        if how in ENCODINGS:  # the texts hold non-ASCII letters, so none of these is valid UTF-8
            assert outcome == "data-error"
            assert any("not valid UTF-8" in p.message for p in value.problems), value.problems
            if how in ("utf-16", "utf-32"):  # with a byte order mark
                assert "UTF-16" in value.problems[0].message

    fuzz(n, cases(), prop)


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


# ---- 8. JSONL training pairs ----------------------------------------------------------------------------------------


@st.composite
def jsonl_files(draw: st.DrawFn) -> tuple[bytes, list[tuple[str, str]] | None]:
    """Lines mixing valid records, records with one bad field, arbitrary JSON, broken JSON and blank lines; returns
    the bytes and, when every line is valid and (id, lang) unique, the expected keys."""
    lines: list[str] = []
    keys: list[tuple[str, str]] = []
    clean = True
    for _ in range(draw(st.integers(0, 8))):
        kind = draw(st.sampled_from(["valid", "valid", "valid", "bad field", "missing field", "extra field",
                                     "arbitrary JSON", "broken JSON", "blank", "duplicate"]))
        rec: dict[str, Any] = {"id": draw(QID), "lang": draw(st.sampled_from(["en", "de", "deu", "zh-CN"])),
                               "query": draw(SENTENCE), "positive": draw(SENTENCE)}
        if draw(st.booleans()):
            rec["negative"] = draw(SENTENCE | st.lists(SENTENCE, max_size=3))
        if kind == "duplicate" and not keys:
            kind = "valid"
        if kind == "duplicate":
            rec["id"], rec["lang"] = keys[-1]
            clean = False
        elif kind == "bad field":
            rec[draw(st.sampled_from(sorted(rec)))] = draw(NASTY)
            clean = False
        elif kind == "missing field":
            del rec[draw(st.sampled_from(["id", "lang", "query", "positive"]))]
            clean = False
        elif kind == "extra field":
            rec[draw(st.text(max_size=6).filter(lambda k: k not in rec))] = draw(JSON_ANY)
        if kind == "arbitrary JSON":
            line = json.dumps(draw(JSON_ANY))
            clean = False
        elif kind == "broken JSON":
            full = json.dumps(rec, ensure_ascii=False)
            line = full[: draw(st.integers(0, len(full) - 1))] + draw(st.sampled_from(["", "}", "]", ",", "\\"]))
            clean = clean and not line.strip()
        elif kind == "blank":
            line = draw(st.sampled_from(["", " ", "\t", "\r"]))
        else:
            line = json.dumps(rec, ensure_ascii=draw(st.booleans()))
            if kind in ("valid", "extra field"):
                key = (str(rec["id"]), normalize_lang(rec["lang"]) or "")
                clean = clean and key not in keys and utf8(line)  # a raw lone surrogate is not UTF-8
                keys.append(key)
        lines.append(line)
    eol = draw(st.sampled_from(["\n", "\r\n"]))
    text = eol.join(lines) + draw(st.sampled_from(["", eol]))
    raw = (b"\xef\xbb\xbf" if draw(st.booleans()) else b"") + text.encode("utf-8", "surrogatepass")
    return raw, (keys if clean and keys else None)


@pytest.mark.parametrize("n", budgets(80))
def test_pairs_jsonl(n: int) -> None:
    def prop(x: tuple[bytes, list[tuple[str, str]] | None]) -> None:
        raw, expected = x
        with scratch() as d:
            f = d / "pairs.jsonl"
            f.write_bytes(raw)
            outcome, value = attempt("pairs JSONL: " + ("all lines valid" if expected else "mixed lines"),
                                     lambda: read_pairs_jsonl(f), files=[f])
        if expected is not None:
            assert outcome == "valid"
            assert sorted((q, lang) for q, by in value.items.items() for lang in by) == sorted(expected)
        elif outcome == "data-error":
            assert all(p.where.startswith("line ") or "no training pairs" in p.message for p in value.problems)

    fuzz(n, jsonl_files(), prop)


# ---- 9. Tatoeba folders ----------------------------------------------------------------------------------------------


@st.composite
def tatoeba_folders(draw: st.DrawFn) -> tuple[dict[str, bytes | None], dict[str, int] | None]:
    """(file name -> bytes (None: a folder with that name), expected {language: pairs} or None). Sides with random
    lines, counts that may differ, missing sides, unknown codes, CRLF / CR line ends; or (half the time) a clean
    folder that must read."""
    files: dict[str, bytes | None] = {}
    if draw(st.booleans()):
        expected = {}
        for code in draw(st.lists(st.sampled_from(["deu", "spa", "cmn", "tha", "ara"]), unique=True, min_size=1,
                                  max_size=3)):
            n_lines = draw(st.integers(1, 6))
            eol = draw(st.sampled_from(["\n", "\r\n"]))
            for side in (code, "eng"):
                lines = [draw(SENTENCE | huge_strings(2000).filter(lambda s: s.strip() and "\n" not in s))
                         for _ in range(n_lines)]
                files[f"tatoeba.{code}-eng.{side}"] = (eol.join(lines) + draw(st.sampled_from([eol, ""]))).encode()
            expected[normalize_lang(code)] = n_lines
        return files, expected
    for code in draw(st.lists(st.sampled_from(["deu", "spa", "cmn", "xxx", "tha", "de", "eng"]), unique=True,
                              max_size=3)):
        n_lines = draw(st.integers(0, 6))
        for side in draw(st.sampled_from([(code, "eng"), (code, "eng"), (code,), ("eng",)])):
            lines = [draw(SENTENCE | st.sampled_from(["", " ", "\r", "x\ry"]) | huge_strings(2000))
                     for _ in range(n_lines + draw(st.sampled_from([0, 0, 0, 1, -1])))]
            text = draw(st.sampled_from(["\n", "\r\n"])).join(lines) + draw(st.sampled_from(["\n", ""]))
            files[f"tatoeba.{code}-eng.{side}"] = None if draw(st.integers(0, 20)) == 0 else text.encode("utf-8")
    if draw(st.booleans()):
        files["README.md"] = b"not data\n"
    return files, None


@pytest.mark.parametrize("n", budgets(60))
def test_tatoeba_folders(n: int) -> None:
    def prop(x: tuple[dict[str, bytes | None], dict[str, int] | None]) -> None:
        files, expected = x
        with scratch() as d:
            for name, raw in files.items():
                if raw is None:
                    (d / name).mkdir()
                else:
                    (d / name).write_bytes(raw)
            outcome, value = attempt(f"Tatoeba folder ({'clean' if expected else 'broken'})",
                                     lambda: read_tatoeba(d), folder=d)
        if expected is not None:
            assert outcome == "valid" and {k: len(v[0]) for k, v in value.items()} == expected

    fuzz(n, tatoeba_folders(), prop)


# ---- 10. load_corpus on folders -------------------------------------------------------------------------------------

FOLDER_NAMES = ["en.json", "de.json", "deu.json", "german.json", "xquad.es.json", "zh-CN.json", "xx.json",
                "notes.json", ".hidden.json", "english_tydiqa_dev.json", "arabic_tydiqa_dev.json",
                "english_tydiqa_train.json", "klingon_tydiqa_dev.json", "pairs.jsonl", "README.md"]


@st.composite
def qa_folders(draw: st.DrawFn) -> dict[str, Any]:
    """File name -> content: a valid document, a randomly changed one, garbage, empty; or a folder / dangling link."""
    out: dict[str, Any] = {}
    for name in draw(st.lists(st.sampled_from(FOLDER_NAMES), unique=True, max_size=4)):
        kind = draw(st.sampled_from(["valid LAReQA", "valid LAReQA", "valid SQuAD", "changed", "garbage", "empty",
                                     "a folder", "dangling symlink"]))
        if kind == "valid LAReQA":
            out[name] = valid_doc()
        elif kind == "valid SQuAD":
            doc = valid_doc()
            for art in doc["data"]:
                for par in art["paragraphs"]:
                    del par["sentences"], par["sentence_breaks"]
            out[name] = doc
        elif kind == "changed":
            out[name] = draw(squad_docs(lareqa=draw(st.booleans()), max_mutations=2))
        elif kind == "garbage":
            out[name] = draw(st.binary(max_size=200))
        else:
            out[name] = {"empty": b"", "a folder": "<dir>", "dangling symlink": "<dangling>"}[kind]
    return out


@pytest.mark.parametrize("n", budgets(60))
def test_load_corpus_folders(n: int) -> None:
    def prop(spec: dict[str, Any]) -> None:
        with scratch() as d:
            folder = d / "set"
            folder.mkdir()
            for name, content in spec.items():
                p = folder / name
                if content == "<dir>":
                    p.mkdir()
                elif content == "<dangling>":
                    p.symlink_to(d / "nowhere.json")
                elif isinstance(content, bytes):
                    p.write_bytes(content)
                else:
                    write_json(p, content)
            outcome, value = attempt("load_corpus(folder)", lambda: load_corpus(folder), folder=folder,
                                     usage_ok=True)
            if outcome == "usage-error":  # only when there is nothing to read
                entries = [p.name for p in folder.glob("*.json") if not p.name.startswith(".")]
                tydi = [e for e in entries if "_tydiqa_" in e]  # any TyDi name makes it a TyDi folder
                assert not entries or (tydi and not any(e.endswith("_dev.json") for e in tydi)), value
            if not any("_tydiqa_" in n or n.endswith(".jsonl") for n in spec):  # data check agrees
                problems, _ = check_paths([folder])
                assert bool(problems) == (outcome != "valid"), (problems, outcome)

    fuzz(n, qa_folders(), prop)


# ---- 11. edge cases named one by one --------------------------------------------------------------------------------


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


EDGE_JSONL = {
    "deeply nested line": "[" * 100_000 + "]" * 100_000 + "\n",
    "5000-digit id": '{"id": ' + "1" * 5000 + ', "lang": "en", "query": "q", "positive": "p"}\n',
    "lone surrogate in query": '{"id": "a", "lang": "en", "query": "\\ud800", "positive": "p"}\n',
    "lone surrogate in negative": '{"id": "a", "lang": "en", "query": "q", "positive": "p", "negative": ["\\udfff"]}\n',
    "lone surrogate in id": '{"id": "\\ud800", "lang": "en", "query": "q", "positive": "p"}\n',
    "NaN id": '{"id": NaN, "lang": "en", "query": "q", "positive": "p"}\n',
    "only blank lines": "\n \n\t\n",
}


@pytest.mark.parametrize("name", sorted(EDGE_JSONL))
def test_edge_cases_jsonl(name: str, tmp_path: Path) -> None:
    f = tmp_path / "pairs.jsonl"
    f.write_text(EDGE_JSONL[name], encoding="utf-8")
    outcome, value = attempt(f"edge case: JSONL {name}", lambda: read_pairs_jsonl(f), files=[f])
    assert outcome == "data-error"


@pytest.mark.parametrize("name", ["a folder named like a side", "dangling symlink side", "CR-only line ends",
                                  "U+2028 inside a line", "empty folder"])
def test_edge_cases_tatoeba(name: str, tmp_path: Path) -> None:
    eng = tmp_path / "tatoeba.deu-eng.eng"
    deu = tmp_path / "tatoeba.deu-eng.deu"
    if name != "empty folder":
        eng.write_text("One.\nTwo.\n", encoding="utf-8")
    if name == "a folder named like a side":
        deu.mkdir()
    elif name == "dangling symlink side":
        deu.symlink_to(tmp_path / "nowhere")
    elif name == "CR-only line ends":
        deu.write_bytes(b"Eins.\rZwei.\r")
    elif name == "U+2028 inside a line":
        deu.write_text("Eins\u2028drei.\nZwei.\n", encoding="utf-8")
    outcome, value = attempt(f"edge case: Tatoeba {name}", lambda: read_tatoeba(tmp_path), folder=tmp_path)
    if name == "U+2028 inside a line":  # a Unicode line separator is not a line end: still two lines
        assert outcome == "valid" and value["de"][0] == ["Eins\u2028drei.", "Zwei."]
    else:
        assert outcome == "data-error"


# ---- 12. `data check` renders whatever the readers report -------------------------------------------------------------


@pytest.mark.parametrize("n", budgets(15))
def test_data_check_cli_on_fuzzed_files(n: int) -> None:
    """Any problem text (lone surrogates, 100 kB values, control characters) prints: exit 0 or 2, no traceback."""
    from typer.testing import CliRunner

    from hybridbatch.cli import base as cli
    runner = CliRunner()

    def prop(x: tuple[dict, bool]) -> None:
        doc, ascii_only = x
        with scratch() as d:
            write_json(d / "en.json", doc, ascii_only=ascii_only)
            with hang_guard():
                r = runner.invoke(cli.app, ["data", "check", str(d)])
            assert r.exit_code in (0, 2), (r.exception, r.output[-2000:])
            assert r.exception is None or isinstance(r.exception, SystemExit), (r.exception, r.output[-2000:])
            assert "Traceback" not in r.output
            record("data check CLI on fuzzed files", "exit 0" if r.exit_code == 0 else "exit 2")

    fuzz(n, st.tuples(squad_docs(), st.booleans()), prop)



# ---- 11. XLingHealth workbooks and MKQA lines --------------------------------------------------------------------


def _small_workbook(src: Path, rows: int = 31) -> bytes:
    """The real LiveQA.xlsx cut to its header and first `rows - 1` rows (6 question ids): a small valid workbook."""
    import io
    import zipfile

    out = io.BytesIO()
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            if info.filename == "xl/worksheets/sheet1.xml":
                text = data.decode("utf-8")
                head, body = text.split("<sheetData>", 1)
                rows_xml = [m.group(0) for m in re.finditer(r"<row r=\"(\d+)\".*?</row>", body)
                            if int(m.group(1)) <= rows]
                assert len(rows_xml) == rows
                data = (head + "<sheetData>" + "".join(rows_xml) + "</sheetData>"
                        + body.split("</sheetData>", 1)[1]).encode("utf-8")
            zout.writestr(info, data)
    return out.getvalue()


@pytest.fixture(scope="module")
def small_workbook() -> bytes:
    return _small_workbook(SHARED_DATA / "xlinghealth" / "LiveQA.xlsx")


CELL_VALUES = st.sampled_from(['<v>-1</v>', '<v>2</v>', '<v>1.5</v>', '<v>1e3</v>', '<v>abc</v>', '<v></v>',
                               '<v>' + '9' * 400 + '</v>']) | st.builds(lambda i: f'<v>{i}</v>', st.integers(0, 5000))


@st.composite
def workbook_edits(draw: st.DrawFn) -> tuple[str, Any]:
    """One damage to the small workbook: a cell rewritten (numbers, text, booleans, errors, shared-string indexes in
    and out of range, removed), the file cut at a random byte, or random bytes flipped."""
    what = draw(st.sampled_from(["cell", "cell", "cell", "cut", "flip"]))
    if what == "cell":
        ref = f"{draw(st.sampled_from('ABCDEFGHIJK'))}{draw(st.integers(1, 31))}"
        kind = draw(st.sampled_from(["", ' t="s"', ' t="b"', ' t="e"', ' t="str"', "inline", "remove"]))
        if kind == "inline":
            text = draw(SENTENCE | NASTY_STRINGS).replace("&", "&amp;").replace("<", "&lt;")
            return what, (ref, f'<c r="{ref}" t="inlineStr"><is><t>{text}</t></is></c>')
        return what, (ref, "" if kind == "remove" else f'<c r="{ref}"{kind}>{draw(CELL_VALUES)}</c>')
    if what == "cut":
        return what, draw(st.floats(0, 1))
    return what, draw(st.lists(st.tuples(st.floats(0, 1), st.integers(0, 255)), min_size=1, max_size=8))


def _damage(raw: bytes, edit: tuple[str, Any]) -> bytes:
    import io
    import zipfile

    what, arg = edit
    if what == "cut":
        return raw[: int(arg * len(raw))]
    if what == "flip":
        b = bytearray(raw)
        for at, value in arg:
            b[min(len(b) - 1, int(at * len(b)))] = value
        return bytes(b)
    ref, cell = arg
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(raw)) as zin, zipfile.ZipFile(out, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            if info.filename == "xl/worksheets/sheet1.xml":
                data = re.sub(rf'<c r="{ref}"[^>]*?(/>|>.*?</c>)', lambda m: cell, data.decode("utf-8"),
                              count=1).encode("utf-8", "surrogatepass")  # a lone surrogate: invalid UTF-8
            zout.writestr(info, data)
    return out.getvalue()


@pytest.mark.parametrize("n", budgets(25))
def test_xlinghealth_workbooks(n: int, small_workbook: bytes) -> None:
    """A damaged workbook reads (items valid) or raises one DataError whose problems name it and a location."""
    from hybridbatch.data.xlinghealth import read_xlinghealth

    def prop(edit: tuple[str, Any]) -> None:
        with scratch() as d:
            f = d / "LiveQA.xlsx"
            f.write_bytes(_damage(small_workbook, edit))
            outcome, value = attempt(f"xlsx workbook: {edit[0]}", lambda: read_xlinghealth(f), files=[f])
            problems, _ = check_paths([f])
        assert (outcome == "valid") == (not problems)
        if outcome == "valid":
            assert len(value.items) <= 6

    fuzz(n, workbook_edits(), prop)


@st.composite
def mkqa_lines(draw: st.DrawFn) -> tuple[bytes, list[tuple[str, str]] | None]:
    """(file bytes, the (pid, language) keys it must read as, or None). Half the time a clean file (unique keys,
    language codes as MKQA writes them, non-empty answers); else MKQA-shaped lines with random damage: fields
    missing or of the wrong type, unknown or bad language codes, empty answers, duplicates, random JSON and text."""
    if draw(st.booleans()):
        keys = draw(st.lists(st.tuples(st.sampled_from(["mkqa:1", "mkqa:2", "mkqa:-3"]),
                                       st.sampled_from(["en", "zh_cn", "ja", "km", "ms"])), min_size=1, max_size=8,
                             unique=True))
        lines = [json.dumps({"pid": pid, "lang": lang, "question": draw(SENTENCE),
                             "answers": draw(st.lists(SENTENCE, min_size=1, max_size=3)), "split": "dev"},
                            ensure_ascii=draw(st.booleans())) for pid, lang in keys]
        return "\n".join(lines).encode("utf-8"), [(pid, normalize_lang(lang)) for pid, lang in keys]
    lines = []
    for _ in range(draw(st.integers(0, 8))):
        choice = draw(st.integers(0, 9))
        if choice <= 5:
            rec: dict[str, Any] = {"pid": draw(st.sampled_from(["mkqa:1", "mkqa:2", "mkqa:-3"]) | QID),
                                   "lang": draw(st.sampled_from(["en", "zh_cn", "ja", "km", "xx", ""]) | JSON_ANY),
                                   "question": draw(SENTENCE | NASTY_STRINGS | SURROGATES | JSON_ANY),
                                   "answers": draw(st.lists(SENTENCE | NASTY_STRINGS, max_size=3) | JSON_ANY),
                                   "split": "dev"}
            for k in draw(st.lists(st.sampled_from(sorted(rec)), max_size=2, unique=True)):
                del rec[k]
            line = json.dumps(rec, ensure_ascii=draw(st.booleans()))
        elif choice <= 7:
            line = json.dumps(draw(JSON_ANY))
        else:
            line = draw(st.text(max_size=40)).replace("\n", " ")
        lines.append(line)
    return "\n".join(lines).encode("utf-8", "surrogatepass"), None


@pytest.mark.parametrize("n", budgets(60))
def test_mkqa_lines(n: int) -> None:
    from hybridbatch.data.mkqa import read_mkqa

    def prop(x: tuple[bytes, list[tuple[str, str]] | None]) -> None:
        raw, expected = x
        with scratch() as d:
            f = d / "mkqa_dev.jsonl"
            f.write_bytes(raw)
            for pairing in ("questions", "answers"):
                label = f"MKQA JSONL ({pairing}): " + ("clean" if expected else "damaged")
                outcome, value = attempt(label, lambda: read_mkqa(f, pairing), files=[f])
                if expected is not None:
                    assert outcome == "valid"
                    assert sorted((q, lang) for q, by in value.items.items() for lang in by) == sorted(expected)
                elif outcome == "data-error":
                    assert all(p.where.startswith("line ") or p.where == "file" for p in value.problems)

    fuzz(n, mkqa_lines(), prop)
