"""Shared parts of the reader fuzz tests (tests/test_fuzz_*.py, one file per reader; issue "Reliability", part 1;
docs/RELIABILITY.md).

Property, for every generated input: the reader under test (`read_lareqa`, `read_squad` (paragraph and sentence
units), `read_pairs_jsonl`, `read_tatoeba`, `load_corpus` (files and folders), `read_xlinghealth` (damaged workbooks),
`read_mkqa`) either returns data that satisfies the corpus invariants (`check_corpus`, `check_pairs`,
`check_tatoeba`), or raises a `DataError` whose every problem names one of the input files and a non-empty location
(`check_data_error`); `load_corpus` may also raise a `UsageError` naming the path when a folder holds no
`<lang>.json` at all. Any other exception, or a hang, fails the test: every example runs under a hypothesis deadline
and a hard SIGALRM guard, with bounded input sizes (strings up to 100 kB).

Each input class counts the examples it tried and how they ended (valid / data-error / usage-error); the counts go
to hypothesis `event()`s (`--hypothesis-show-statistics`) and to a JSON summary rewritten, with the counts of every
fuzz module run so far in this process, when each module finishes: `$HYBRIDBATCH_FUZZ_SUMMARY` if set, else
`<pytest basetemp>/fuzz_summary.json` (the modules share one xdist group, so one worker runs them all; the fixtures
`fuzz_summary` and `real_small_files` are in conftest.py). The `[fast]`
variants run in CI; the `[slow]` ones try 4x more examples and are marked `slow` and `heavy` (`make test-all`).
`HYBRIDBATCH_FUZZ_SCALE=N` multiplies every budget.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import os
import shutil
import signal
import tempfile
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context

from hybridbatch.data.checks import corpus_stats, pairs_stats
from hybridbatch.data.languages import ISO639_1
from hybridbatch.data.lookup import load_corpus
from hybridbatch.data.pairs import read_pairs_jsonl, read_tatoeba
from hybridbatch.data.qa import read_lareqa
from hybridbatch.data.records import PairSet, QACorpus
from hybridbatch.errors import DataError, Problem, UsageError

# every fuzz module's `pytestmark`: one worker runs them all (one counts file), conftest's `fuzz_summary` around each
MODULE_MARKS = [pytest.mark.xdist_group(name="fuzz_readers"), pytest.mark.usefixtures("fuzz_summary")]
SCALE = float(os.environ.get("HYBRIDBATCH_FUZZ_SCALE", "1"))
SLOW_FACTOR = 4
DEADLINE = timedelta(seconds=5)  # per example; typical examples take a few ms
HARD_LIMIT_S = 30  # SIGALRM: a reader that hangs fails instead of blocking CI
HUGE = 100_000  # longest generated string (characters)
SHARED_DATA = Path(os.environ.get("HYBRIDBATCH_TEST_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def budgets(fast: int) -> list[Any]:
    """`[fast]` (CI) and `[slow]` (4x the examples; `slow` and `heavy`: `make test-all`) parametrisations of a fuzz
    test's example budget."""
    n = max(1, int(fast * SCALE))
    return [pytest.param(n, id="fast"),
            pytest.param(n * SLOW_FACTOR, id="slow", marks=[pytest.mark.slow, pytest.mark.heavy])]


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


def new_scratch_root(root: Path) -> None:
    """Where `scratch()` makes its folders from now on (conftest's `fuzz_summary`, once per fuzz module)."""
    _SCRATCH.append(root)


def write_summary(basetemp: Path) -> tuple[Path, dict[str, Any]]:
    """The counts of every fuzz module run so far in this process, to $HYBRIDBATCH_FUZZ_SUMMARY or
    <basetemp>/fuzz_summary.json (rewritten after each module: the last one holds them all)."""
    body = {
        "scale": SCALE,
        "classes": {k: {**dict(sorted(v.items())), "total": sum(v.values())} for k, v in sorted(COUNTS.items())},
        "total": sum(sum(v.values()) for v in COUNTS.values()),
    }
    path = Path(os.environ.get("HYBRIDBATCH_FUZZ_SUMMARY") or basetemp / "fuzz_summary.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(body, indent=2) + "\n", encoding="utf-8")
    return path, body


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


# ---- truncated real files (each reader's file cuts its own) --------------------------------------------------------


def write_real_small_files(d: Path) -> dict[str, Path]:
    """Small files cut from the real data: one XQuAD-R ru paragraph (3 questions) as upstream writes it (\\u
    escapes) and as UTF-8; JSONL pairs from it (ru + en); the first 12 lines of Tatoeba rus-eng."""
    if not (SHARED_DATA / "xquad-r" / "ru.json").exists():
        pytest.fail(f"test data not found at {SHARED_DATA}; set HYBRIDBATCH_TEST_DATA")
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


def truncation_case(kind: str, src: Path, cut: int) -> None:
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


def truncations_sampled(n: int, files: dict[str, Path], kinds: Iterable[str]) -> None:
    """A prefix of every length (sampled) of the small real files of `kinds`."""
    kinds = sorted(kinds)
    sizes = {k: files[k].stat().st_size for k in kinds}
    fuzz(n, st.sampled_from(kinds).flatmap(lambda k: st.tuples(st.just(k), st.integers(0, sizes[k]))),
         lambda x: truncation_case(x[0], files[x[0]], x[1]))


def truncations_every_prefix(files: dict[str, Path], kinds: Iterable[str]) -> None:
    """Every prefix length of the same files (every k-th byte beyond 1000 bytes, so each file takes about 1000
    reads), exhaustively rather than sampled."""
    for kind in kinds:
        size = files[kind].stat().st_size
        for cut in range(0, size + 1, max(1, size // 1000)):
            truncation_case(kind, files[kind], cut)


# ---- wrong encodings and random bytes (each reader's file feeds it its own format) ----------------------------------

ENCODINGS = ["latin-1", "cp1252", "utf-16", "utf-16-le", "utf-16-be", "utf-32", "mac-roman"]


@st.composite
def damaged_bytes(draw: st.DrawFn, text: str) -> tuple[str, bytes]:
    """(how, bytes): `text` (holding non-ASCII letters) in another encoding than UTF-8, random bytes, or its UTF-8
    with a few bytes flipped or inserted."""
    how = draw(st.sampled_from(["encoding", "encoding", "random bytes", "flipped bytes", "inserted bytes"]))
    if how == "encoding":
        enc = draw(st.sampled_from(ENCODINGS))
        return enc, text.encode(enc, errors="replace")
    raw = bytearray(text.encode("utf-8"))
    if how == "random bytes":
        return how, draw(st.binary(max_size=2000))
    for _ in range(draw(st.integers(1, 5))):
        i = draw(st.integers(0, len(raw) - 1))
        b = draw(st.integers(0, 255))
        if how == "flipped bytes":
            raw[i] = b
        else:
            raw.insert(i, b)
    return how, bytes(raw)


def check_encoding_outcome(how: str, outcome: str, value: Any) -> None:
    if how in ENCODINGS:  # the texts hold non-ASCII letters, so none of these is valid UTF-8
        assert outcome == "data-error"
        assert any("not valid UTF-8" in p.message for p in value.problems), value.problems
        if how in ("utf-16", "utf-32"):  # with a byte order mark
            assert "UTF-16" in value.problems[0].message
