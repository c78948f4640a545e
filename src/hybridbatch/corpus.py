"""Parallel question-answer data: questions keyed by (question id, language), per-language candidate pools, and the
training items derived from them. Nothing here assumes full parallelism: an id may exist in only some languages
(MLQA-R style).

Flow: readers (LAReQA JSON, SQuAD JSON, JSONL pairs, Tatoeba text) -> `QACorpus` / `PairSet` -> sampling ->
training; `QACorpus` -> retrieval -> metrics.

Every reader validates while it reads: it collects every `Problem(file, where, message)` it finds (a JSON path such as
`data[3].paragraphs[0].qas[2].answers[0].answer_start`, or `line 17` for line-based files) and raises one `DataError`
at the end, so `hybridbatch data check` can list them all. Malformed shapes never escape as KeyError / TypeError.
Soft issues (e.g. the one XQuAD-R tr paragraph whose `sentences` text differs from the context slice) are warnings,
kept on `QACorpus.warnings` / `PairSet.warnings`. See docs/DATA.md.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import math
import os
import re
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from .errors import DataError, HybridBatchError, Problem, UsageError
from .provenance import atomic_path, sha256_file, sha256_files


@dataclass(frozen=True, slots=True)
class Candidate:
    """One retrievable sentence. `doc` names its paragraph ("article_index/paragraph_index"); in XQuAD-R the same
    `doc` in two languages is the same paragraph translated."""

    lang: str
    text: str
    context: str
    doc: str
    article: str


@dataclass(frozen=True, slots=True)
class Question:
    """One question in one language; `answer` indexes `QACorpus.candidates[lang]` (the sentence holding the answer)."""

    qid: str
    lang: str
    text: str
    answer: int
    article: str


@dataclass(frozen=True, slots=True)
class TrainItem:
    """A query and its positive passage in one language, plus optional hard negatives in the same language."""

    query: str
    positive: str
    negatives: tuple[str, ...] = ()


@dataclass
class PairSet:
    """Training data: items[qid][lang]. A batch pairs the query of one language with the positive of another (X-Y)
    or the same (X-X) language, for the same qid."""

    name: str
    items: dict[str, dict[str, TrainItem]]
    checksum: str = ""
    warnings: list[Problem] = field(default_factory=list)

    @property
    def languages(self) -> list[str]:
        return sorted({lang for by_lang in self.items.values() for lang in by_lang})

    def ids_in(self, *langs: str) -> list[str]:
        """Question ids that exist in every one of `langs`, in a stable order."""
        return [qid for qid, by_lang in self.items.items() if all(lang in by_lang for lang in langs)]

    def __len__(self) -> int:
        return sum(len(v) for v in self.items.values())


@dataclass
class QACorpus:
    """Questions and candidate pools for several languages, as read from one file set."""

    name: str
    questions: dict[str, list[Question]]
    candidates: dict[str, list[Candidate]]
    checksum: str = ""
    files: list[str] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)

    @property
    def languages(self) -> list[str]:
        return sorted(self.questions)

    def by_id(self) -> dict[str, dict[str, Question]]:
        """qid -> lang -> question (only the languages where the id exists)."""
        out: dict[str, dict[str, Question]] = {}
        for lang in self.languages:
            for q in self.questions[lang]:
                out.setdefault(q.qid, {})[lang] = q
        return out

    @property
    def articles(self) -> list[str]:
        """Article titles in first-seen order (file order of the first language that has them)."""
        seen: dict[str, None] = {}
        for lang in self.languages:
            for c in self.candidates[lang]:
                seen.setdefault(c.article, None)
        return list(seen)

    def subset(self, articles: Iterable[str], name: str | None = None) -> QACorpus:
        """Only the questions and candidates of `articles`; answer indices are remapped into the smaller pools."""
        keep = set(articles)
        questions: dict[str, list[Question]] = {}
        candidates: dict[str, list[Candidate]] = {}
        for lang in self.languages:
            old = self.candidates[lang]
            new_index = {}
            pool = []
            for i, c in enumerate(old):
                if c.article in keep:
                    new_index[i] = len(pool)
                    pool.append(c)
            candidates[lang] = pool
            questions[lang] = [
                Question(q.qid, q.lang, q.text, new_index[q.answer], q.article)
                for q in self.questions[lang]
                if q.article in keep
            ]
        return QACorpus(name or self.name, questions, candidates, self.checksum, list(self.files), list(self.warnings))

    def split(self, n_train: int = 36, n_test: int = 12) -> tuple[QACorpus, QACorpus]:
        """Split by article: the first `n_train` articles (file order) train, the last `n_test` test, so no test
        article is ever trained on. XQuAD-R has 48 articles; the order is the upstream file order, identical in all
        languages, which makes the split deterministic and documented (docs/DATA.md): no randomness, no seed.
        Because a question belongs to exactly one article, no test question id is ever in train."""
        arts = self.articles
        if n_train + n_test > len(arts):
            raise UsageError(
                f"split asks for {n_train} train + {n_test} test articles but {self.name} has only {len(arts)}"
            )
        train = self.subset(arts[:n_train], f"{self.name}:train")
        test = self.subset(arts[len(arts) - n_test :], f"{self.name}:test")
        return train, test

    def pairs(self, context: bool = False, hard_negatives: bool = False) -> PairSet:
        """Training items: the question and its answer sentence per language; hard negatives are the other sentences
        of the same paragraph, in the same language."""
        items: dict[str, dict[str, TrainItem]] = {}
        by_doc: dict[tuple[str, str], list[int]] = {}
        if hard_negatives:
            for lang in self.languages:
                for i, c in enumerate(self.candidates[lang]):
                    by_doc.setdefault((lang, c.doc), []).append(i)
        for lang in self.languages:
            pool = self.candidates[lang]
            for q in self.questions[lang]:
                pos = pool[q.answer]
                negs: tuple[str, ...] = ()
                if hard_negatives:
                    negs = tuple(
                        passage_text(pool[j], context) for j in by_doc[(lang, pos.doc)] if j != q.answer
                    )
                items.setdefault(q.qid, {})[lang] = TrainItem(q.text, passage_text(pos, context), negs)
        return PairSet(self.name, items, self.checksum)


def passage_text(c: Candidate, context: bool) -> str:
    """The text a candidate is encoded as: the sentence alone, or the sentence followed by its paragraph (LAReQA /
    XTREME-R encode sentence + context)."""
    return f"{c.text}\n{c.context}" if context else c.text


# ---------------------------------------------------------------------------------------------------------------------
# Language codes. Keys in a corpus are ISO 639-1 codes; files may use an alias (ISO 639-2/3, an English name, a region
# subtag). Anything else is an error, because a misnamed file silently becomes a "language" otherwise.

ISO639_1 = frozenset(
    "aa ab ae af ak am an ar as av ay az ba be bg bh bi bm bn bo br bs ca ce ch co cr cs cu cv cy da de dv dz ee el "
    "en eo es et eu fa ff fi fj fo fr fy ga gd gl gn gu gv ha he hi ho hr ht hu hy hz ia id ie ig ii ik io is it iu ja "
    "jv ka kg ki kj kk kl km kn ko kr ks ku kv kw ky la lb lg li ln lo lt lu lv mg mh mi mk ml mn mr ms mt my na nb nd "
    "ne ng nl nn no nr nv ny oc oj om or os pa pi pl ps pt qu rm rn ro ru rw sa sc sd se sg si sk sl sm sn so sq sr ss "
    "st su sv sw ta te tg th ti tk tl tn to tr ts tt tw ty ug uk ur uz ve vi vo wa wo xh yi yo za zh zu".split()
)

LANG_FROM_FILE = {
    # TyDi QA GoldP file names use language names.
    "arabic": "ar", "bengali": "bn", "english": "en", "finnish": "fi", "indonesian": "id", "korean": "ko",
    "russian": "ru", "swahili": "sw", "telugu": "te",
}

LANG_ALIASES: dict[str, str] = {
    **LANG_FROM_FILE,
    # English names of the XQuAD-R / MLQA-R / Tatoeba languages and a few more.
    "chinese": "zh", "german": "de", "greek": "el", "spanish": "es", "hindi": "hi", "thai": "th", "turkish": "tr",
    "vietnamese": "vi", "romanian": "ro", "french": "fr", "japanese": "ja", "portuguese": "pt", "italian": "it",
    "dutch": "nl", "polish": "pl", "persian": "fa", "urdu": "ur", "tamil": "ta", "marathi": "mr", "hebrew": "he",
    # ISO 639-3 / 639-2 (B and T) codes: Tatoeba/LASER file names (ara cmn deu ell hin ron rus spa tur vie tha eng).
    "ara": "ar", "arb": "ar", "cmn": "zh", "zho": "zh", "chi": "zh", "deu": "de", "ger": "de", "ell": "el",
    "gre": "el", "eng": "en", "spa": "es", "hin": "hi", "ron": "ro", "rum": "ro", "rus": "ru", "tha": "th",
    "tur": "tr", "vie": "vi", "ben": "bn", "fin": "fi", "ind": "id", "kor": "ko", "swa": "sw", "swh": "sw",
    "tel": "te", "jpn": "ja", "fra": "fr", "fre": "fr", "por": "pt", "ita": "it", "nld": "nl", "dut": "nl",
    "pol": "pl", "fas": "fa", "per": "fa", "pes": "fa", "urd": "ur", "tam": "ta", "mar": "mr", "heb": "he",
    "ukr": "uk", "ces": "cs", "cze": "cs", "bul": "bg", "hun": "hu", "swe": "sv", "dan": "da", "nob": "nb",
    "est": "et", "lit": "lt", "lav": "lv", "slk": "sk", "slo": "sk", "slv": "sl", "hrv": "hr", "srp": "sr",
    "cat": "ca", "eus": "eu", "baq": "eu", "glg": "gl", "tgl": "tl", "msa": "ms", "may": "ms", "zsm": "ms",
    "jav": "jv", "mal": "ml", "kan": "kn", "guj": "gu", "pan": "pa", "mya": "my", "bur": "my", "khm": "km",
    "lao": "lo", "kat": "ka", "geo": "ka", "hye": "hy", "arm": "hy", "kaz": "kk", "uzb": "uz", "aze": "az",
    "amh": "am", "yor": "yo", "ibo": "ig", "hau": "ha", "zul": "zu", "xho": "xh", "afr": "af", "isl": "is",
    "ice": "is", "gle": "ga", "cym": "cy", "wel": "cy", "sqi": "sq", "alb": "sq", "mkd": "mk", "mac": "mk",
    "bel": "be", "tat": "tt", "epo": "eo", "lat": "la",
    # Common non-ISO spellings.
    "zh-cn": "zh", "zh-tw": "zh", "zh-hans": "zh", "zh-hant": "zh", "iw": "he", "in": "id", "ji": "yi",
}


def normalize_lang(code: str) -> str | None:
    """The ISO 639-1 code for `code` (a 639-1/2/3 code, an English name or `xx-REGION`), or None if unknown."""
    c = str(code).strip().lower().replace("_", "-")
    if c in ISO639_1:
        return c
    if c in LANG_ALIASES:
        return LANG_ALIASES[c]
    head, *subtags = c.split("-")
    if subtags and all(_SUBTAG.match(t) for t in subtags) and (head in ISO639_1 or head in LANG_ALIASES):
        return normalize_lang(head)
    return None


_SUBTAG = re.compile(r"^([a-z]{2}|\d{3}|hans|hant|latn|cyrl|arab|deva|thai|grek)$")  # BCP 47 region / script


def lang_from_path(path: Path | str) -> str | None:
    """The language a data file holds, from its name: `de.json`, `deu.json`, `german.json`; TyDi style
    `<language>_tydiqa_dev.json` (first `_` token, a language name); XQuAD style `xquad.de.json` (last `.` token).
    Two-letter tokens elsewhere in a name are not trusted (too many collide with words)."""
    stem = Path(path).stem
    if (lang := normalize_lang(stem)) is not None:
        return lang
    first = stem.split("_")[0].lower()
    if len(first) > 3 and first in LANG_ALIASES:
        return LANG_ALIASES[first]
    if "." in stem:
        return normalize_lang(stem.rsplit(".", 1)[1])
    return None


def _unknown_lang(code: str) -> str:
    return (
        f"unknown language code {code!r}: name the file by its ISO 639-1 code (e.g. de.json), an ISO 639-3 code "
        f"(deu.json) or an English name (german.json)"
    )


# ---------------------------------------------------------------------------------------------------------------------
# Validation helpers: every check appends to a _Report instead of raising, so that one pass finds every problem.


# Locations for problems that concern a whole file or folder rather than a field or a line: every Problem names one,
# so `data check` never shows an empty "where" cell.
WHOLE_FILE = "file"
FILE_NAME = "file name"
TOP_LEVEL = "top level"
LINE_COUNT = "line count"
LANGUAGE = "language"  # the language code a file was given under (a key of `files`, often from its name)
FOLDER = "folder"


class _Report:
    """Problems (errors) and warnings collected while reading one file set."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []
        self.warnings: list[Problem] = []

    def error(self, file: Path | str, where: str, message: str) -> None:
        self.problems.append(Problem(str(file), where, message))

    def warn(self, file: Path | str, where: str, message: str) -> None:
        self.warnings.append(Problem(str(file), where, message))

    def raise_if_any(self) -> None:
        if self.problems:
            raise DataError(self.problems)


_TYPE_NAMES = {dict: "an object", list: "a list", str: "a string", int: "an integer"}


def _kind(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "a boolean"
    for t, name in _TYPE_NAMES.items():
        if isinstance(v, t):
            return name
    return "a number" if isinstance(v, float) else type(v).__name__


def _show(v: Any, limit: int = 40) -> str:
    """A short, printable rendering of a value for a message (lone surrogates come out as \\udXXX escapes)."""
    if isinstance(v, str):
        s = repr(v[: limit + 2])
    else:
        try:
            s = json.dumps(v, ensure_ascii=False)
        except (ValueError, RecursionError):
            s = f"<{_kind(v)}>"
    s = s.encode("utf-8", "backslashreplace").decode("utf-8")
    return s if len(s) <= limit else s[: limit - 3] + "..."


def _bad_unicode(s: str) -> int | None:
    """Index of the first lone surrogate in `s` (from a broken `\\udXXX` escape: not valid Unicode, so tokenizers
    and UTF-8 writers fail on it later), or None."""
    if s.isascii():
        return None
    try:
        s.encode("utf-8")
    except UnicodeEncodeError as e:
        return e.start
    return None


def _unicode_problem(s: str) -> str | None:
    i = _bad_unicode(s)
    if i is None:
        return None
    return (f"contains a lone surrogate {s[i]!r} at character {i} (a broken \\u escape): not valid Unicode; "
            f"fix the escape or drop the character")


def _get(rep: _Report, file: Path, obj: dict, key: str, where: str, want: type, *, nonempty: bool = False) -> Any:
    """obj[key] if it exists and has type `want` (bools are not integers; strings must be non-blank when `nonempty`),
    else None after recording the problem."""
    path = (f"{where} {key}" if where.endswith(":") else f"{where}.{key}") if where else key
    if key not in obj:
        rep.error(file, path, f"missing field {key!r}")
        return None
    v = obj[key]
    ok = isinstance(v, want) and not (want is int and isinstance(v, bool))
    if not ok:
        rep.error(file, path, f"expected {_TYPE_NAMES.get(want, want.__name__)}, got {_kind(v)} ({_show(v)})")
        return None
    if nonempty and ((isinstance(v, str) and not v.strip()) or (isinstance(v, list) and not v)):
        rep.error(file, path, "is empty" if isinstance(v, str) else "is an empty list")
        return None
    if isinstance(v, str) and (bad := _unicode_problem(v)):
        rep.error(file, path, bad)
        return None
    return v


def _read_text(rep: _Report, path: Path) -> str | None:
    """The file as UTF-8 text (a BOM is accepted), or None after recording why it cannot be read."""
    try:
        raw = path.read_bytes()
    except OSError as e:
        what = (" (a broken symbolic link)" if path.is_symlink() and not path.exists()
                else " (a folder, not a file)" if path.is_dir() else "")
        rep.error(path, WHOLE_FILE, f"cannot read: {e.strerror or e}{what}")
        return None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        start = e.start + (3 if raw.startswith(b"\xef\xbb\xbf") else 0)
        line = raw.count(b"\n", 0, start) + 1
        where = f"line {line} (byte {start})"
        if e.reason == "unexpected end of data" and start + 4 > len(raw):
            rep.error(path, where, "the file ends in the middle of a UTF-8 character (truncated: the file ends "
                                   "before the data does)")
            return None
        hint = ""
        if raw[:2] in (b"\xff\xfe", b"\xfe\xff"):
            hint = " (it looks like UTF-16)"
        rep.error(path, where, f"wrong encoding: not valid UTF-8{hint}; save it as UTF-8")
        return None


def _json_loads(rep: _Report, path: Path, text: str, where_prefix: str = "") -> tuple[bool, Any]:
    """(True, value), or (False, None) after recording why `text` is not JSON: malformed (with line and column,
    and whether it looks truncated), nested deeper than the parser allows, or a number too long to convert."""
    try:
        return True, json.loads(text)
    except json.JSONDecodeError as e:
        body = text.strip()
        cut = e.pos >= len(text.rstrip()) or (body[:1] in "{[" and body[-1:] not in "}]")
        truncated = " (truncated: the file ends before the JSON does)" if cut and not where_prefix else ""
        if where_prefix:
            rep.error(path, where_prefix, f"malformed JSON: {e.msg} (column {e.colno})")
        elif not body:
            rep.error(path, f"line {e.lineno} column {e.colno}", "malformed JSON: the file is empty")
        else:
            rep.error(path, f"line {e.lineno} column {e.colno}", f"malformed JSON: {e.msg}{truncated}")
    except (RecursionError, ValueError) as e:  # ValueError: Python's limit on digits in an integer
        depth, deep_at, long_at = _json_hotspots(text)
        if isinstance(e, RecursionError):
            pos, msg = deep_at, f"malformed JSON: nested {depth} levels deep, more than the parser allows"
        else:
            pos, msg = long_at, f"malformed JSON: a number with more than {_max_digits()} digits"
        line = text.count("\n", 0, max(pos, 0)) + 1
        col = max(pos, 0) - (text.rfind("\n", 0, max(pos, 0)) + 1) + 1
        rep.error(path, where_prefix or f"line {line} column {col}",
                  f"{msg} (column {col})" if where_prefix else msg)
    return False, None


def _max_digits() -> int:
    import sys

    return sys.get_int_max_str_digits() if hasattr(sys, "get_int_max_str_digits") else 4300


def _json_hotspots(text: str) -> tuple[int, int, int]:
    """(deepest nesting, offset where it is first reached, offset of the first over-long number) in `text`, with
    strings skipped; only called to locate a JSON error the parser could not place."""
    depth = best = 0
    best_at = long_at = -1
    in_str = esc = False
    run_start, limit = -1, _max_digits()
    for i, ch in enumerate(text):
        if in_str:
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                in_str = False
            continue
        if ch.isdigit():
            if run_start < 0:
                run_start = i
            if long_at < 0 and i - run_start + 1 > limit:
                long_at = run_start
            continue
        run_start = -1
        if ch == '"':
            in_str = True
        elif ch in "[{":
            depth += 1
            if depth > best:
                best, best_at = depth, i
        elif ch in "]}":
            depth -= 1
    return best, best_at, long_at


def _parse_json(rep: _Report, path: Path) -> dict | None:
    """The SQuAD-style top-level object, or None after recording a malformed / truncated / wrong-shape problem."""
    text = _read_text(rep, path)
    if text is None:
        return None
    ok, obj = _json_loads(rep, path, text)
    if not ok:
        return None
    if not isinstance(obj, dict):
        rep.error(path, TOP_LEVEL, f"expected a SQuAD-style object with a 'data' list, got {_kind(obj)}")
        return None
    if _get(rep, path, obj, "data", "", list) is None:
        return None
    return obj


# ---------------------------------------------------------------------------------------------------------------------
# Sentence splitting for plain SQuAD JSON (unit="sentence").

_CLOSERS = "\"'”’»)]}」』）"
_ABBREVIATIONS = frozenset(
    "mr mrs ms dr prof st jr sr vs etc e.g i.e no nos fig vol inc ltd co corp approx ca cf al u.s u.k gen col lt sgt "
    "mt ft jan feb aug sept oct nov dec z.b bzw d.h usw sra av".split()
)
# Possessive quantifiers and the look-behind (a match starts only at the start of a run of end marks) keep this linear
# on runs of punctuation and spaces: "!" * 50_000 + " " * 50_000 took 29 s with plain `+`.
_LATIN_END = re.compile(r"(?<![.!?…])[.!?…]++[" + re.escape(_CLOSERS) + r"]*+(?=\s++\S)")
_WIDE_END = re.compile(r"[。！？｡।॥؟۔።]+[" + re.escape(_CLOSERS) + r"]*\s*")
_THAI_CHAR = re.compile(r"[\u0E00-\u0E7F]")
_THAI_GAP = re.compile(r"(?<=[\u0E00-\u0E7F\d)\"”])\s+(?=[\u0E00-\u0E7F])")
THAI_MIN_CHARS = 150


def split_sentences(text: str, lang: str | None = None) -> list[tuple[int, int]]:
    """Sentence spans `(start, end)` that partition `text` (each span keeps the whitespace that follows it, so every
    character offset, e.g. an answer start, falls in exactly one span). A simple rule-based splitter, not a model:

    - Latin/Cyrillic/Greek/Arabic-script: after `. ! ? …` (+ closing quotes/brackets) and whitespace, unless the next
      word starts lower-case, or the full stop follows a known abbreviation (Mr., e.g., U.S., ...) or a single letter
      (initials). Decimal points and `3.5` never split (no whitespace).
    - CJK `。！？`, Devanagari `। ॥`, Arabic `؟`, Urdu `۔`, Ethiopic `።`: split right after, with or without a space.
    - Thai has no sentence punctuation: split at a space between Thai characters once the current piece has at least
      `THAI_MIN_CHARS` characters (about the mean XQuAD-R th sentence length). Approximate: matches ~20% of LAReQA's
      Thai boundaries, though the count per paragraph is close.

    On XQuAD-R contexts it reproduces the LAReQA `sentence_breaks` at 95-99% of boundaries for the non-Thai languages.
    """
    cuts: set[int] = set()
    for m in _LATIN_END.finditer(text):
        # Linear in len(text) overall: the whitespace after a match and the word before it are scanned once (they
        # lie between consecutive matches); slicing `text[m.end():]` per match was quadratic (73 s on 100 kB).
        j = m.end()
        while j < len(text) and text[j].isspace():
            j += 1
        if text[j:j + 1].islower():
            continue
        if m.group(0).rstrip(_CLOSERS) == ".":
            k = m.start()
            while k > 0 and not text[k - 1].isspace():
                k -= 1
            word = text[k:m.start()].lower().lstrip("(\"'“‘«")
            if word in _ABBREVIATIONS or (len(word) == 1 and word.isalpha()):
                continue
        cuts.add(j)
    for m in _WIDE_END.finditer(text):
        cuts.add(m.end())
    if lang == "th" or (lang is None and len(_THAI_CHAR.findall(text)) > len(text) // 2):
        last = 0
        for m in _THAI_GAP.finditer(text):
            j = m.end()
            if j - last >= THAI_MIN_CHARS and len(text) - j >= THAI_MIN_CHARS // 2:
                cuts.add(j)
                last = j
    bounds = [0, *sorted(c for c in cuts if 0 < c < len(text)), len(text)]
    spans: list[tuple[int, int]] = []
    for a, b in zip(bounds, bounds[1:]):
        if spans and not text[a:b].strip():
            spans[-1] = (spans[-1][0], b)  # a whitespace-only piece joins the previous sentence
        else:
            spans.append((a, b))
    return spans or [(0, len(text))]


# ---------------------------------------------------------------------------------------------------------------------
# SQuAD / LAReQA JSON walking.

Mode = Literal["auto", "lareqa", "squad"]


def _is_lareqa(obj: dict) -> bool:
    """Whether a parsed SQuAD-style object carries LAReQA `sentences` / `sentence_breaks` (first paragraph found)."""
    for art in obj.get("data", []):
        if isinstance(art, dict) and isinstance(art.get("paragraphs"), list):
            for par in art["paragraphs"]:
                if isinstance(par, dict):
                    return "sentences" in par or "sentence_breaks" in par
    return False


def _lareqa_spans(
    rep: _Report, path: Path, par: dict, ctx: str, where: str,
) -> tuple[list[str], list[tuple[int, int]]] | None:
    """Validate `sentences` against `sentence_breaks`; return (texts, spans) or None if unusable. A sentence whose
    text differs from its context slice (with a matching count) is only a warning: upstream LAReQA uses `sentences`
    as the candidate text and `sentence_breaks` to find the answer, and the real tr.json has one such paragraph."""
    sents = _get(rep, path, par, "sentences", where, list, nonempty=True)
    breaks = _get(rep, path, par, "sentence_breaks", where, list, nonempty=True)
    if sents is None or breaks is None:
        return None
    ok = True
    for k, s in enumerate(sents):
        if not isinstance(s, str):
            rep.error(path, f"{where}.sentences[{k}]", f"expected a string, got {_kind(s)} ({_show(s)})")
            ok = False
        elif not s.strip():
            rep.error(path, f"{where}.sentences[{k}]", "is empty")
            ok = False
        elif bad := _unicode_problem(s):
            rep.error(path, f"{where}.sentences[{k}]", bad)
            ok = False
    spans: list[tuple[int, int]] = []
    for k, b in enumerate(breaks):
        bw = f"{where}.sentence_breaks[{k}]"
        if not (isinstance(b, list) and len(b) == 2 and all(isinstance(x, int) and not isinstance(x, bool) for x in b)):
            rep.error(path, bw, f"expected a [start, end] pair of integers, got {_show(b)}")
            ok = False
            continue
        s, e = b
        if not 0 <= s < e <= len(ctx):
            rep.error(path, bw, f"break [{s}, {e}] is out of range for a context of {len(ctx)} characters "
                                f"(need 0 <= start < end <= {len(ctx)})")
            ok = False
            continue
        if spans and s < spans[-1][1]:
            rep.error(path, bw, f"break [{s}, {e}] overlaps or is out of order with the previous break "
                                f"[{spans[-1][0]}, {spans[-1][1]}]")
            ok = False
        spans.append((s, e))
    if len(sents) != len(breaks):
        rep.error(path, f"{where}.sentence_breaks", f"has {len(breaks)} breaks but 'sentences' has {len(sents)} "
                                                   f"entries; they must match one to one")
        ok = False
    if not ok:
        return None
    for k, (s, (a, b)) in enumerate(zip(sents, spans)):
        if ctx[a:b] != s:
            got = ctx[a:b]
            i = next((j for j, (x, y) in enumerate(zip(s, got)) if x != y), min(len(s), len(got)))
            rep.warn(path, f"{where}.sentences[{k}]",
                     f"text differs from context[{a}:{b}] from character {i} ({_show(s[i:i + 12])} vs "
                     f"{_show(got[i:i + 12])}); the candidate is the 'sentences' entry, as in upstream LAReQA")
    return list(sents), spans


def _walk_qa_file(
    rep: _Report, path: Path, obj: dict, lang: str, *, lareqa: bool, unit: str,
) -> tuple[list[Question], list[Candidate]]:
    """Questions and candidates of one parsed SQuAD/LAReQA file, recording every problem on `rep`."""
    qs: list[Question] = []
    pool: list[Candidate] = []
    seen_ids: dict[str, str] = {}
    seen_par: dict[tuple[str, str], int] = {}  # (title, context) -> candidate index, for paragraph units
    for ai, art in enumerate(obj["data"]):
        aw = f"data[{ai}]"
        if not isinstance(art, dict):
            rep.error(path, aw, f"expected an object (an article), got {_kind(art)}")
            continue
        title = _get(rep, path, art, "title", aw, str, nonempty=True)
        pars = _get(rep, path, art, "paragraphs", aw, list)
        if title is None or pars is None:
            continue
        for pi, par in enumerate(pars):
            pw = f"{aw}.paragraphs[{pi}]"
            if not isinstance(par, dict):
                rep.error(path, pw, f"expected an object (a paragraph), got {_kind(par)}")
                continue
            ctx = _get(rep, path, par, "context", pw, str, nonempty=True)
            qas = _get(rep, path, par, "qas", pw, list)
            if ctx is None:
                continue
            doc = f"{ai}/{pi}"
            spans: list[tuple[int, int]] | None
            first = len(pool)
            if lareqa:
                got = _lareqa_spans(rep, path, par, ctx, pw)
                spans = got[1] if got else None
                if got:
                    pool.extend(Candidate(lang, s, ctx, doc, title) for s in got[0])
            elif unit == "sentence":
                spans = split_sentences(ctx, lang)
                pool.extend(Candidate(lang, ctx[a:b].strip(), ctx, doc, title) for a, b in spans)
            else:
                spans = [(0, len(ctx))]
                key = (title, ctx)
                if key in seen_par:  # TyDi repeats a paragraph for several questions: one candidate, not twins
                    first = seen_par[key]
                else:
                    seen_par[key] = first
                    pool.append(Candidate(lang, ctx.strip(), ctx, doc, title))
            for qi, qa in enumerate(qas or []):
                qw = f"{pw}.qas[{qi}]"
                qid = _question_id(rep, path, qa, qw)
                if qid is not None:
                    if qid in seen_ids:
                        rep.error(path, f"{qw}.id", f"duplicate question id {qid!r} in this language "
                                                    f"(first at {seen_ids[qid]})")
                        qid = None
                    else:
                        seen_ids[qid] = qw
                q = _walk_question(rep, path, qa, qw, ctx, spans, lareqa)
                if q is None or qid is None:
                    continue
                text, hit = q
                if hit is not None:
                    qs.append(Question(qid, lang, text, first + hit, title))
    return qs, pool


def _question_id(rep: _Report, path: Path, qa: Any, qw: str) -> str | None:
    """The question's id as a string (SQuAD ids are strings; integers are accepted), or None after recording why."""
    if not isinstance(qa, dict):
        return None  # reported by _walk_question
    if "id" not in qa:
        rep.error(path, f"{qw}.id", "missing field 'id'")
        return None
    qid = qa["id"]
    if not (isinstance(qid, (str, int)) and not isinstance(qid, bool)) or not str(qid).strip():
        rep.error(path, f"{qw}.id", f"expected a non-empty string, got {_kind(qid)} ({_show(qid)})")
        return None
    if bad := _unicode_problem(str(qid)):
        rep.error(path, f"{qw}.id", bad)
        return None
    return str(qid)


def _walk_question(
    rep: _Report, path: Path, qa: Any, qw: str, ctx: str, spans: list[tuple[int, int]] | None, lareqa: bool,
) -> tuple[str, int | None] | None:
    """(question text, index of the answer span or None if spans are unusable), or None after recording why."""
    if not isinstance(qa, dict):
        rep.error(path, qw, f"expected an object (a question), got {_kind(qa)}")
        return None
    ok = True
    text = _get(rep, path, qa, "question", qw, str, nonempty=True)
    answers = _get(rep, path, qa, "answers", qw, list, nonempty=True)
    start = None
    if answers is not None:
        for k, ans in enumerate(answers):
            aw = f"{qw}.answers[{k}]"
            if not isinstance(ans, dict):
                rep.error(path, aw, f"expected an object (an answer), got {_kind(ans)}")
                ok = False
                continue
            s = _get(rep, path, ans, "answer_start", aw, int)
            if "text" in ans and not isinstance(ans["text"], str):
                rep.error(path, f"{aw}.text", f"expected a string, got {_kind(ans['text'])}")
            if s is None:
                ok = False
                continue
            if not 0 <= s < len(ctx):
                rep.error(path, f"{aw}.answer_start", f"answer start {s} is outside the context "
                                                      f"(0..{len(ctx) - 1})")
                ok = False
                continue
            if isinstance(ans.get("text"), str) and ans["text"] and ctx[s:s + len(ans["text"])] != ans["text"]:
                rep.warn(path, f"{aw}.text", f"answer text {_show(ans['text'], 30)} is not at context[{s}:] "
                                             f"({_show(ctx[s:s + len(ans['text'])], 30)})")
            if k == 0:
                start = s
    if not ok or text is None or answers is None or start is None:
        return None
    hit = None
    if spans is not None:
        k = bisect.bisect_right(spans, (start, math.inf)) - 1  # spans are sorted and disjoint
        hit = k if k >= 0 and spans[k][0] <= start < spans[k][1] else None
        if hit is None:
            rep.error(path, f"{qw}.answers[0].answer_start",
                      f"answer start {start} lies outside every sentence (between sentence_breaks)"
                      if lareqa else f"answer start {start} lies outside every sentence")
            return None
    return text, hit


def _resolve_langs(rep: _Report, files: Mapping[str, Path | str]) -> dict[str, Path]:
    """Normalise the language keys of `files` (aliases -> ISO 639-1), recording unknown and clashing codes."""
    out: dict[str, Path] = {}
    for key, path in files.items():
        lang = normalize_lang(key)
        if lang is None:
            rep.error(path, LANGUAGE, _unknown_lang(key))
            continue
        if lang in out:
            rep.error(path, LANGUAGE, f"language {lang!r} given twice (also {out[lang]})")
            continue
        out[lang] = Path(path)
    return dict(sorted(out.items()))


def _read_qa(
    rep: _Report, files: Mapping[str, Path | str], name: str, mode: Mode, unit: str,
) -> QACorpus:
    """Read a file set into a QACorpus, recording (not raising) every problem."""
    questions: dict[str, list[Question]] = {}
    candidates: dict[str, list[Candidate]] = {}
    resolved = _resolve_langs(rep, files)
    for lang, path in resolved.items():
        obj = _parse_json(rep, path)
        if obj is None:
            continue
        lareqa = _is_lareqa(obj) if mode == "auto" else mode == "lareqa"
        qs, pool = _walk_qa_file(rep, path, obj, lang, lareqa=lareqa, unit=unit)
        if not qs and not any(p.file == str(path) for p in rep.problems):
            rep.error(path, "data", "no questions in this file")
        questions[lang], candidates[lang] = qs, pool
    readable = [p for p in resolved.values() if p.is_file()]
    checksum = sha256_files(readable) if readable else ""
    return QACorpus(name, questions, candidates, checksum, [str(p) for p in resolved.values()], list(rep.warnings))


def _need_files(files: Mapping[str, Path | str]) -> None:
    if not files:
        raise UsageError("no files given: pass {language code: path}, e.g. lareqa_files(FOLDER)")


def read_lareqa(files: Mapping[str, Path], name: str = "lareqa") -> QACorpus:
    """Read LAReQA JSON (XQuAD-R / MLQA-R): SQuAD JSON whose paragraphs carry `sentences` and `sentence_breaks`.
    `files` maps language code (or alias, e.g. 'deu') -> file. Candidates are the `sentences` entries; a question's
    answer is the sentence whose break has start <= answer_start < end. Ids need not exist in every language.
    Raises one DataError listing every problem (UsageError if `files` is empty)."""
    _need_files(files)
    rep = _Report()
    corpus = _read_qa(rep, files, name, "lareqa", "sentence")
    rep.raise_if_any()
    return corpus


def read_squad(
    files: Mapping[str, Path], name: str, unit: Literal["paragraph", "sentence"] = "paragraph",
) -> QACorpus:
    """Read plain SQuAD JSON (XQuAD, TyDi QA GoldP, MLQA). unit="paragraph": each distinct paragraph (per article) is
    one candidate whose text is the context; unit="sentence": contexts are cut by `split_sentences` and the answer is
    the sentence holding answer_start. LAReQA fields, if present, are ignored."""
    if unit not in ("paragraph", "sentence"):
        raise UsageError(f"unit must be 'paragraph' or 'sentence', not {unit!r}")
    _need_files(files)
    rep = _Report()
    corpus = _read_qa(rep, files, name, "squad", unit)
    rep.raise_if_any()
    return corpus


# ---------------------------------------------------------------------------------------------------------------------
# JSONL training pairs and Tatoeba.

_PAIR_FIELDS = {"id", "lang", "query", "positive", "negative"}


def _check_pairs_jsonl(
    rep: _Report, path: Path, lines_out: dict[tuple[str, str], int] | None = None,
) -> dict[str, dict[str, TrainItem]]:
    """The file's items, recording every problem; `lines_out` (if given) receives the line of each (id, lang)."""
    items: dict[str, dict[str, TrainItem]] = {}
    first_line: dict[tuple[str, str], int] = {} if lines_out is None else lines_out
    text = _read_text(rep, path)
    if text is None:
        return items
    for n, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        where = f"line {n}"
        ok, rec = _json_loads(rep, path, line, where)
        if not ok:
            continue
        if not isinstance(rec, dict):
            rep.error(path, where, f"expected a JSON object, got {_kind(rec)}")
            continue
        ok = True
        if "id" not in rec:
            rep.error(path, f"{where}: id", "missing field 'id'")
            ok = False
        elif not isinstance(rec["id"], (str, int)) or isinstance(rec["id"], bool) or not str(rec["id"]).strip():
            rep.error(path, f"{where}: id", f"expected a non-empty string, got {_kind(rec['id'])}")
            ok = False
        elif bad := _unicode_problem(str(rec["id"])):
            rep.error(path, f"{where}: id", bad)
            ok = False
        lang_raw = _get(rep, path, rec, "lang", f"{where}:", str, nonempty=True)
        lang = normalize_lang(lang_raw) if lang_raw is not None else None
        if lang_raw is not None and lang is None:
            rep.error(path, f"{where}: lang", _unknown_lang(lang_raw))
        query = _get(rep, path, rec, "query", f"{where}:", str, nonempty=True)
        positive = _get(rep, path, rec, "positive", f"{where}:", str, nonempty=True)
        negs: tuple[str, ...] = ()
        neg = rec.get("negative")
        if isinstance(neg, str):
            neg = [neg]
        if isinstance(neg, list):
            for k, x in enumerate(neg):
                if not isinstance(x, str) or not x.strip():
                    rep.error(path, f"{where}: negative[{k}]", f"expected a non-empty string, got {_show(x)}")
                    ok = False
                elif bad := _unicode_problem(x):
                    rep.error(path, f"{where}: negative[{k}]", bad)
                    ok = False
            negs = tuple(x for x in neg if isinstance(x, str))
        elif neg is not None:
            rep.error(path, f"{where}: negative", f"expected a string or a list of strings, got {_kind(neg)}")
            ok = False
        for extra in sorted(set(rec) - _PAIR_FIELDS):
            rep.warn(path, f"{where}: {extra}", f"unknown field {extra!r} ignored (fields: id, lang, query, "
                                                f"positive, negative)")
        if not ok or lang is None or query is None or positive is None:
            continue
        key = (str(rec["id"]), lang)
        if key in first_line:
            rep.error(path, where, f"duplicate (id, lang) {key!r}, first on line {first_line[key]}")
            continue
        first_line[key] = n
        items.setdefault(key[0], {})[lang] = TrainItem(query, positive, negs)
    if not items and not any(p.file == str(path) for p in rep.problems):
        rep.error(path, WHOLE_FILE, "no training pairs in this file")
    return items


def read_pairs_jsonl(path: Path | str) -> PairSet:
    """Users' own training pairs: one JSON object a line, `{"id", "lang", "query", "positive", "negative"?}` where
    `negative` is a string or a list of strings; rows with the same `id` in different languages are parallel copies
    (what X-Y batches pair up). Blank lines are skipped. Raises one DataError naming every bad line."""
    path = Path(path)
    rep = _Report()
    items = _check_pairs_jsonl(rep, path)
    rep.raise_if_any()
    return PairSet(path.stem, items, sha256_files([path]), list(rep.warnings))


_TATOEBA = re.compile(r"^tatoeba\.([a-z]{2,3})-eng\.([a-z]{2,3})$")


def _read_lines(rep: _Report, path: Path) -> list[str] | None:
    text = _read_text(rep, path)
    if text is None:
        return None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    out = [ln.rstrip("\r") for ln in lines]
    for n, ln in enumerate(out, 1):
        if not ln.strip():
            rep.error(path, f"line {n}", "empty sentence (lines must be aligned 1:1 with the other side)")
    return out


def _check_tatoeba(rep: _Report, folder: Path) -> dict[str, tuple[list[str], list[str]]]:
    pairs: dict[str, dict[str, Path]] = {}
    for p in sorted(folder.iterdir()):
        m = _TATOEBA.match(p.name)
        if m:  # folders and broken links too: reading them reports why, instead of a silent "missing"
            pairs.setdefault(m.group(1), {})[m.group(2)] = p
    if not pairs:
        rep.error(folder, FOLDER, "no tatoeba.<xxx>-eng.{<xxx>,eng} files in this folder")
    out: dict[str, tuple[list[str], list[str]]] = {}
    for xxx, sides in pairs.items():
        lang = normalize_lang(xxx)
        if lang is None:
            rep.error(next(iter(sides.values())), FILE_NAME, _unknown_lang(xxx))
            continue
        missing = [s for s in (xxx, "eng") if s not in sides]
        if missing:
            rep.error(folder / f"tatoeba.{xxx}-eng.{missing[0]}", WHOLE_FILE, "missing: each pair needs both sides")
            continue
        if lang in out:
            rep.error(sides[xxx], FILE_NAME, f"language {lang!r} given twice")
            continue
        xs, en = _read_lines(rep, sides[xxx]), _read_lines(rep, sides["eng"])
        if xs is None or en is None:
            continue
        if len(xs) != len(en):
            rep.error(sides[xxx], LINE_COUNT, f"{len(xs)} lines but {sides['eng'].name} has {len(en)}; the two sides "
                                              f"must be line-aligned")
            continue
        out[lang] = (xs, en)
    return dict(sorted(out.items()))


def read_tatoeba(folder: Path | str) -> dict[str, tuple[list[str], list[str]]]:
    """Tatoeba (LASER) pairs: ISO 639-1 code -> (sentences in that language, their English translations), line
    aligned. The English sides differ from pair to pair (not multi-way parallel)."""
    rep = _Report()
    folder = Path(folder)
    if not folder.is_dir():
        raise UsageError(f"{folder}: not a folder")
    out = _check_tatoeba(rep, folder)
    rep.raise_if_any()
    return out


# ---------------------------------------------------------------------------------------------------------------------
# Finding files and datasets.


def lareqa_files(folder: Path) -> dict[str, Path]:
    """`<lang>.json` files in a folder, keyed by ISO 639-1 code (aliases such as `deu.json` are normalised).
    A JSON file whose name is not a known language is an error, not silently skipped."""
    rep = _Report()
    out = _lang_files(rep, Path(folder), "*.json")
    rep.raise_if_any()
    return out


def _lang_files(rep: _Report, folder: Path, pattern: str, skip: Iterable[Path] = ()) -> dict[str, Path]:
    """`<lang>.json` entries of a folder by language. Hidden files are skipped; folders and broken links named like
    data files are kept, so that reading them reports them instead of a language silently going missing."""
    out: dict[str, Path] = {}
    skipped = set(skip)
    for p in sorted(folder.glob(pattern)):
        if p.name.startswith(".") or p in skipped:
            continue
        lang = lang_from_path(p)
        if lang is None:
            rep.error(p, FILE_NAME, _unknown_lang(p.stem))
        elif lang in out:
            rep.error(p, FILE_NAME, f"language {lang!r} given twice (also {out[lang].name})")
        else:
            out[lang] = p
    return out


DATASETS = ("xquad-r", "mlqa-r", "tydiqa-goldp", "tatoeba-laser")


def data_root(data_dir: Path | str | None = None) -> Path:
    """Where named datasets live: `--data-dir`, else `$HYBRIDBATCH_DATA`, else the user cache."""
    import platformdirs

    if data_dir:
        return Path(data_dir)
    if os.environ.get("HYBRIDBATCH_DATA"):
        return Path(os.environ["HYBRIDBATCH_DATA"])
    return Path(platformdirs.user_cache_dir("hybridbatch")) / "data"


def data_roots(data_dir: Path | str | None = None) -> list[Path]:
    """Every place a named dataset is looked for, in order: `--data-dir`, `$HYBRIDBATCH_DATA`, the user cache."""
    import platformdirs

    roots = [Path(data_dir)] if data_dir else []
    if os.environ.get("HYBRIDBATCH_DATA"):
        roots.append(Path(os.environ["HYBRIDBATCH_DATA"]))
    roots.append(Path(platformdirs.user_cache_dir("hybridbatch")) / "data")
    return roots


def dataset_dir(name: str, data_dir: Path | str | None = None) -> Path:
    """The folder of a named dataset: the first of `data_roots(data_dir)` that holds `<name>/`."""
    if name not in DATASETS:
        raise UsageError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")
    roots = data_roots(data_dir)
    for root in roots:
        if (root / name).is_dir():
            return root / name
    how = (f"Run `hybridbatch data download {name}` (needs network)" if name in SOURCES
           else f"{name} cannot be downloaded (see docs/DATA.md); put its <lang>.json files in a folder")
    raise UsageError(
        f"dataset {name!r} not found (looked in {', '.join(str(r / name) for r in roots)}). {how}, or point at a "
        f"local copy with --data-dir DIR or $HYBRIDBATCH_DATA=DIR (DIR holds {name}/)."
    )


_TYDI_FILE = re.compile(r"^([a-z]+)_tydiqa_(dev|train)\.json$")


def _split_corpus(corpus: QACorpus, split: str | None) -> QACorpus:
    if split is None:
        return corpus
    if split in ("train", "test"):
        try:
            train, test = corpus.split()
        except UsageError as e:
            raise UsageError(f"{e}; the 36/12 article split is XQuAD-R's protocol: use split=None for all of "
                             f"{corpus.name}, or QACorpus.split(n_train, n_test)") from None
        return train if split == "train" else test
    raise UsageError(f"split must be 'train' or 'test' (the 36/12 article split) for {corpus.name}, not {split!r}")


def load_corpus(spec: str | Path, data_dir: Path | str | None = None, split: str | None = None) -> QACorpus:
    """A QA corpus from a name or a path:

    - 'xquad-r' / 'mlqa-r': the LAReQA folder under the data root; split 'train'/'test' = `QACorpus.split()`.
    - 'tydiqa-goldp': `<language>_tydiqa_<split>.json` (split 'dev' by default, or 'train'), paragraph candidates.
    - a folder of `<lang>.json` files or a single JSON file: LAReQA if paragraphs carry `sentences`, else SQuAD with
      paragraph candidates; a TyDi-style folder is recognised by its file names.
    Names are looked up in `--data-dir`, then `$HYBRIDBATCH_DATA`, then the user cache (`dataset_dir`)."""
    spec_s = str(spec)
    if spec_s == "tatoeba-laser":
        raise UsageError("tatoeba-laser is a set of translation pairs, not a QA corpus: use read_tatoeba(folder)")
    path = dataset_dir(spec_s, data_dir) if spec_s in DATASETS else Path(spec)
    if not path.exists():
        raise UsageError(f"{path}: no such file or folder")
    if path.is_file():
        if path.suffix == ".jsonl":
            raise UsageError(f"{path}: JSONL training pairs are not a QA corpus; use load_pairs / read_pairs_jsonl")
        lang = lang_from_path(path)
        if lang is None:
            raise DataError(Problem(str(path), FILE_NAME, _unknown_lang(path.stem)))
        return _split_corpus(_load_auto({lang: path}, path.stem), split)
    tydi = [p for p in sorted(path.glob("*.json")) if _TYDI_FILE.match(p.name)]
    if tydi:
        which = split or "dev"
        if which not in ("dev", "train"):
            raise UsageError(f"split must be 'dev' or 'train' for TyDi QA GoldP, not {which!r}")
        rep = _Report()
        files: dict[str, Path] = {}
        for p in tydi:
            m = _TYDI_FILE.match(p.name)
            assert m is not None
            if m.group(2) != which:
                continue
            lang = normalize_lang(m.group(1))
            if lang is None:
                rep.error(p, FILE_NAME, _unknown_lang(m.group(1)))
            else:
                files[lang] = p
        rep.raise_if_any()
        if not files:
            raise UsageError(f"{path}: no *_tydiqa_{which}.json files")
        return read_squad(files, f"{path.name}:{which}", "paragraph")
    files = lareqa_files(path)
    if not files:
        raise UsageError(f"{path}: no <lang>.json files in this folder")
    return _split_corpus(_load_auto(files, path.name), split)


def _load_auto(files: Mapping[str, Path], name: str) -> QACorpus:
    """LAReQA or SQuAD (paragraph units), decided per file by whether paragraphs carry `sentences`."""
    rep = _Report()
    corpus = _read_qa(rep, files, name, "auto", "paragraph")
    rep.raise_if_any()
    return corpus


def load_pairs(
    spec: str | Path, data_dir: Path | str | None = None, context: bool = False, hard_negatives: bool = False,
    split: str | None = "train",
) -> PairSet:
    """Training pairs from a JSONL file, a folder of JSONL files (merged; (id, lang) must stay unique), or a dataset
    name / folder turned into pairs with `QACorpus.pairs(context, hard_negatives)`.

    split="train" means: XQuAD-R (by name, or any corpus with exactly the 48 XQuAD articles) -> the 36-article train
    half, so test articles are never trained on; TyDi -> its train files; any other QA folder or file -> all of it
    (it has no held-out articles, and cutting the first 36 articles of a large training set would silently drop
    data). split=None: everything; "test"/"dev": as in `load_corpus`."""
    spec_s = str(spec)
    path = Path(spec)
    if spec_s not in DATASETS and path.is_file() and path.suffix == ".jsonl":
        return read_pairs_jsonl(path)
    if spec_s not in DATASETS and path.is_dir():
        jsonl = sorted(path.glob("*.jsonl"))
        if jsonl and not list(path.glob("*.json")):
            return _merge_pairs(path.name, jsonl)
    is_tydi = spec_s == "tydiqa-goldp" or (
        spec_s not in DATASETS and path.is_dir() and any(_TYDI_FILE.match(p.name) for p in path.glob("*.json")))
    if is_tydi or split != "train":
        corpus = load_corpus(spec, data_dir, split=split)
    else:
        corpus = load_corpus(spec, data_dir)
        if spec_s in ("xquad-r", "mlqa-r") or len(corpus.articles) == XQUAD_ARTICLES:
            corpus = corpus.split()[0]
    return corpus.pairs(context=context, hard_negatives=hard_negatives)


XQUAD_ARTICLES = 48


def _merge_pairs(name: str, files: list[Path]) -> PairSet:
    rep = _Report()
    items: dict[str, dict[str, TrainItem]] = {}
    origin: dict[tuple[str, str], tuple[Path, int]] = {}
    for f in files:
        lines: dict[tuple[str, str], int] = {}
        for qid, by_lang in _check_pairs_jsonl(rep, f, lines).items():
            for lang, item in by_lang.items():
                if (qid, lang) in origin:
                    first, line = origin[(qid, lang)]
                    rep.error(f, f"line {lines[(qid, lang)]}", f"duplicate (id, lang) {(qid, lang)!r}, also in "
                                                               f"{first.name} line {line}")
                    continue
                origin[(qid, lang)] = (f, lines[(qid, lang)])
                items.setdefault(qid, {})[lang] = item
    rep.raise_if_any()
    return PairSet(name, items, sha256_files(files), list(rep.warnings))


# ---------------------------------------------------------------------------------------------------------------------
# `data check` and `data stats`.


def check_paths(paths: Sequence[Path | str]) -> tuple[list[Problem], list[Problem]]:
    """Every (error, warning) problem in the given files and folders, without raising. A folder is checked as a file
    set: its `<lang>.json` (LAReQA or SQuAD, auto-detected), `*.jsonl` pairs and `tatoeba.*` files."""
    rep = _Report()
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            rep.error(path, "path", "no such file or folder" + (" (a broken symbolic link)" if path.is_symlink()
                                                                else ""))
            continue
        if path.is_dir():
            before = len(rep.problems)
            checked = False
            if any(_TATOEBA.match(p.name) for p in path.iterdir()):
                _check_tatoeba(rep, path)
                checked = True
            for p in sorted(path.glob("*.jsonl")):
                _check_pairs_jsonl(rep, p)
                checked = True
            tydi = {p for p in path.glob("*.json") if _TYDI_FILE.match(p.name)}
            for p in sorted(tydi):
                lang = lang_from_path(p)
                if lang is None:
                    rep.error(p, FILE_NAME, _unknown_lang(p.stem))
                else:
                    _read_qa(rep, {lang: p}, p.stem, "auto", "paragraph")
                checked = True
            files = _lang_files(rep, path, "*.json", skip=tydi)  # a TyDi dev/train pair is not "en given twice"
            if files:
                _read_qa(rep, files, path.name, "auto", "paragraph")
                checked = True
            if not checked and len(rep.problems) == before:  # hidden files only, or nothing at all: say so
                rep.error(path, FOLDER, "no data files (<lang>.json, *.jsonl, tatoeba.*) in this folder")
        elif path.suffix == ".jsonl":
            _check_pairs_jsonl(rep, path)
        elif path.suffix == ".json":
            lang = lang_from_path(path)
            if lang is None:
                rep.error(path, FILE_NAME, _unknown_lang(path.stem))
            else:
                _read_qa(rep, {lang: path}, path.stem, "auto", "paragraph")
        else:
            rep.error(path, FILE_NAME, "unsupported file type (expected .json, .jsonl, or a folder)")
    return rep.problems, rep.warnings


def corpus_stats(corpus: QACorpus) -> dict[str, Any]:
    """Per-language counts (questions, paragraphs, candidates, ids shared with another language) and how many
    question ids exist in exactly k languages: the parallelism of a corpus at a glance."""
    by_id = corpus.by_id()
    hist = Counter(len(v) for v in by_id.values())
    langs = {}
    for lang in corpus.languages:
        langs[lang] = {
            "questions": len(corpus.questions[lang]),
            "paragraphs": len({c.doc for c in corpus.candidates[lang]}),
            "candidates": len(corpus.candidates[lang]),
            "shared_ids": sum(1 for q in corpus.questions[lang] if len(by_id[q.qid]) > 1),
        }
    return {
        "name": corpus.name,
        "kind": "qa",
        "languages": langs,
        "ids": len(by_id),
        "ids_in_k_languages": {str(k): hist[k] for k in sorted(hist)},
        "articles": len(corpus.articles),
        "questions": sum(v["questions"] for v in langs.values()),
        "candidates": sum(v["candidates"] for v in langs.values()),
        "warnings": len(corpus.warnings),
        "checksum": corpus.checksum,
    }


def pairs_stats(pairs: PairSet) -> dict[str, Any]:
    """Per-language item counts and the ids-in-k-languages histogram of a PairSet."""
    hist = Counter(len(v) for v in pairs.items.values())
    langs = {}
    for lang in pairs.languages:
        ids = [qid for qid, by in pairs.items.items() if lang in by]
        langs[lang] = {
            "questions": len(ids),
            "shared_ids": sum(1 for qid in ids if len(pairs.items[qid]) > 1),
            "negatives": sum(len(pairs.items[qid][lang].negatives) for qid in ids),
        }
    return {"name": pairs.name, "kind": "pairs", "languages": langs, "ids": len(pairs.items),
            "ids_in_k_languages": {str(k): hist[k] for k in sorted(hist)}, "questions": len(pairs),
            "checksum": pairs.checksum}


def tatoeba_stats(data: Mapping[str, tuple[list[str], list[str]]], name: str = "tatoeba") -> dict[str, Any]:
    """Pairs per language of a Tatoeba folder."""
    return {"name": name, "kind": "tatoeba",
            "languages": {lang: {"pairs": len(x)} for lang, (x, _) in data.items()},
            "pairs": sum(len(x) for x, _ in data.values())}


# ---------------------------------------------------------------------------------------------------------------------
# Download: pinned upstream commits, sha256 per file, atomic writes, skip files already good.

RAW_BASE = "https://raw.githubusercontent.com"


@dataclass(frozen=True)
class RemoteFile:
    """One upstream file: its path in the repository, its size and sha256 (of the exact upstream bytes)."""

    path: str
    size: int
    sha256: str

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class Source:
    """A dataset's pinned origin: GitHub `owner/repo` at `commit`, and its files."""

    repo: str
    commit: str
    license: str
    files: tuple[RemoteFile, ...]

    def url(self, f: RemoteFile, base: str = RAW_BASE) -> str:
        return f"{base.rstrip('/')}/{self.repo}/{self.commit}/{f.path}"


def _files(prefix: str, table: str) -> tuple[RemoteFile, ...]:
    out = []
    for row in table.split(";"):
        name, size, sha = row.split()
        out.append(RemoteFile(f"{prefix}{name}", int(size), sha))
    return tuple(out)


SOURCES: dict[str, Source] = {
    "xquad-r": Source(
        "google-research-datasets/lareqa", "9bc8c7fb6dd8d01d72a05a93c2cb96882b0d299c", "CC BY-SA 4.0",
        _files("xquad-r/", (
            "ar.json 2234875 c52922d3b8ac1ae03ed5ac38647ad59870dca3dda2beefe18ecdc30729acb69d;"
            "de.json 732156 16fb0f4bf4916154b585a20c24c66074591c9718a1affe764ff4697572328949;"
            "el.json 2810127 163fd43ee785a30eb534ae2061e9eaa766a7ee4e8ffce5e4b422480c150f64b6;"
            "en.json 628651 7b0954f39297c27a31fef610f0883337dd2907fa8699151dc922afdd0fa12ffe;"
            "es.json 746335 f8e836b2d91009c4363e04315f7ede363eedbbb49c67dda60de6c4aa782f58de;"
            "hi.json 2408404 ea45ba8ae4513d1533b222bebdc02a90bc319c055d3aeea68584a053d2e92872;"
            "ru.json 2764904 7f4dff853538b9a5fcc28c070b8bb983a5c5d190ac747b8e005a1ada9cab18f1;"
            "th.json 2618544 c3a041864c3a9fb0b4dd91cfdf99cf36b411b3e704c58a303c97bc6dc786cfe4;"
            "tr.json 827827 f3e8c13002bbce154a4578f535f7533cb70f3da08840e6b62735935baec7bd94;"
            "vi.json 1132303 e35926bf5cc6fc6ecbdfca49467aabeb454f08d152d7818143a906bd31dde995;"
            "zh.json 959291 80c2cde7b9c2fb134c303cbb52f2ba396ead9eb0014aec43993543d2ba9e93ed"
        )),
    ),
    "tydiqa-goldp": Source(
        "sagorbrur/tydiqa-language-specific", "55c6649475e0765f717a6d32a173c6664096a8ce", "Apache-2.0",
        tuple(
            RemoteFile(f"language_data/{f.name.split('_')[0]}/{f.name}", f.size, f.sha256)
            for f in _files("", (
                "arabic_tydiqa_dev.json 1096961 a53ebb2db172c0e391d2fe499c43ba342d33992cf7bb28733b47147a2057574c;"
                "bengali_tydiqa_dev.json 239642 548ef1e26217481aca1a304713350bc4bebb8c0084092ca1c5520a067dede71c;"
                "english_tydiqa_dev.json 399934 0a79feb66a13d4e5df8a5e1e8ad40b4a2d6622be6816c2914863b495cf0ee3e4;"
                "english_tydiqa_train.json 3170735 ab4317b6f2fcf3367e8890226631deaf3af283ffb5a878fc54ebb0d6b2afe377;"
                "finnish_tydiqa_dev.json 649804 df0bbe1dc355b33e003728f7408ed47f3403ec3ba50eca35ea58f5c98930cdee;"
                "indonesian_tydiqa_dev.json 494484 f77d7d241ae86fe87d2ae2224bd4f52c50d47a380d3febd39a4e379d37789432;"
                "korean_tydiqa_dev.json 255157 9bbdc6aa944f7c632eb4b56f9e291d178a4a6c18645c84c2da52604a84a14ed0;"
                "korean_tydiqa_train.json 1564116 59146463f1f6017dba48bed9ca16148d31d34692172b59ba65859e8e327ee0c0;"
                "russian_tydiqa_dev.json 1101142 bcc3d154713c26bd9a6c735087c76cb45f2d39e01b95a0d07ba07503c8737e85;"
                "swahili_tydiqa_dev.json 290638 0846933d9b60f1f7532b32641efccecc9ada29bafef5a87c26e740046c858ac9;"
                "swahili_tydiqa_train.json 1613532 dfeedb0903de73e3cca9294358dd399dcc4d642805a72871a364814ba1dcb27d;"
                "telugu_tydiqa_dev.json 1089682 373255d29d0bbaec24153041ceab057ea99a472fd18eaa3514233abab2074920"
            ))
        ),
    ),
    "tatoeba-laser": Source(
        "facebookresearch/LASER", "74bc6ae7ffb7cba670fe0f428d0ede9f666fb821", "CC BY 2.0 FR (Tatoeba)",
        _files("data/tatoeba/v1/", (
            "tatoeba.ara-eng.ara 43582 e67a0ae072b79cd9e8eb09f166c3bc0b23488d39f5720f2ee0a8350ae17b719f;"
            "tatoeba.ara-eng.eng 29068 3c11838c963f598a52dcf2f452b666353538257001db5c59c3a5f54a999b336b;"
            "tatoeba.cmn-eng.cmn 33410 965d033966fcd186c89741ad49ab4b0a0b2bbd33e02666635ff3b2be23c1ac1f;"
            "tatoeba.cmn-eng.eng 35521 29ba36232488f5806aceccac57c59c5e750ddd08edb40eef417e3ada9ff9a239;"
            "tatoeba.deu-eng.deu 57121 edfa6f75a42554df388f45891735d5e4214158a99def4b73b5908af4a3054551;"
            "tatoeba.deu-eng.eng 48446 eb9cc83a42f2c4b22f310d05311207e41abb56c2a084666cac3ee0f84d2d0b84;"
            "tatoeba.ell-eng.ell 52202 4fb3d3d30bdafd15100dfad5c4680f8f2ed5ca87ed0a6122e2fe2aa21fee65e8;"
            "tatoeba.ell-eng.eng 26759 1f630710e718e2f85a4e757d3c7f3d6e78ded0b25c99653b4c552138318d9ffe;"
            "tatoeba.hin-eng.eng 34090 adfce2269a55dbac69b25c0f4f6eb89e0f9383165485925a2e042e61b9480562;"
            "tatoeba.hin-eng.hin 88468 15e4fb0a394be4438319f1d6955d1aea226e2a8c5ad38798b23b76ae43d742ed;"
            "tatoeba.ron-eng.eng 34494 1064c638220dc9de0868baee327e091ae815214674295b62b13448ef442c448d;"
            "tatoeba.ron-eng.ron 37990 ad5c4a9f4920718203534d1f8271e27021b9af54b2c908dec66851d4dc681fd4;"
            "tatoeba.rus-eng.eng 33650 7b26f52d6085b7c4944d6f5f6f5b6e1932085b42112f1444db515ce59e878fb8;"
            "tatoeba.rus-eng.rus 58822 446ff2cae66053c2277d9735b2c2df6b786cae258385f7ade7bed68d8835c6a0;"
            "tatoeba.spa-eng.eng 34776 89e4470f4572040b1ca94b3edad97dcd8bd2f0141f072e12933b8659dadf917d;"
            "tatoeba.spa-eng.spa 37490 f9628cea40481e8251f0999718bd893cff0f261752f5e526b3bc20284e2ca018;"
            "tatoeba.tha-eng.eng 18439 2881c82d2c5fa59cf0a68bc9e012f5e0b0a716f7357cbecf77c247efc2fd7294;"
            "tatoeba.tha-eng.tha 44759 65c7b3c01a56a1ac8971e72e0ea8e74a027718dc84044d8802c0ab36395a3156;"
            "tatoeba.tur-eng.eng 34278 a768df7dd3d1344f872a458b32c3a65e24f8381826ccb16ba6677426176c8121;"
            "tatoeba.tur-eng.tur 37607 1ffa0acc006018b3105abda41a4d4ca42f3c122964a49b71793546367b079a86;"
            "tatoeba.vie-eng.eng 38686 a1f60bd8ae6c42224a4c050d2aa1ff4242d14827d64d7831e96ecf2b2c367f5f;"
            "tatoeba.vie-eng.vie 52721 6dbb02d778b0bfc8678cd85f87db76de55dd7e409a26fe32ad42d50e0f1fff77"
        )),
    ),
}

MLQA_R_NOTE = (
    "MLQA-R cannot be downloaded: the pinned LAReQA commit ships only XQuAD-R (its README lists one folder), and "
    "MLQA-R files existed only in unreleased development commits with no license statement. Build it (LAReQA JSON, "
    "one <lang>.json per language) and point at the folder: load_corpus(FOLDER) or --data-dir DIR with DIR/mlqa-r/."
)


def download(
    name: str, data_dir: Path | str | None = None, *, mirror: str | None = None, progress: bool = True,
    timeout: float = 60.0,
) -> Path:
    """Download a dataset's pinned files into `data_root(data_dir)/<name>/`; return that folder.

    Each file goes to a temp file beside its destination, is checked against the sha256 table, then renamed into
    place (atomic); files already present with the right checksum are skipped, so an interrupted download resumes
    where it stopped. `mirror` replaces https://raw.githubusercontent.com (same `<owner>/<repo>/<commit>/<path>`
    layout; `file://` works). Checksum mismatches are collected into one DataError; a network failure stops at once
    with a message saying how to use a local copy instead."""
    if name == "mlqa-r":
        raise UsageError(MLQA_R_NOTE)
    if name not in SOURCES:
        raise UsageError(f"unknown dataset {name!r}; downloadable: {', '.join(SOURCES)}")
    src = SOURCES[name]
    dest_dir = data_root(data_dir) / name
    base = mirror or os.environ.get("HYBRIDBATCH_MIRROR") or RAW_BASE
    try:  # before any network access: a --data-dir that is a file or read-only is the user's to fix, not "offline"
        dest_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UsageError(f"{dest_dir}: cannot create the dataset folder ({e.strerror or e}); pass --data-dir DIR or "
                         f"set $HYBRIDBATCH_DATA to a writable folder") from None
    todo = [f for f in src.files if not ((dest_dir / f.name).is_file() and sha256_file(dest_dir / f.name) == f.sha256)]
    rep = _Report()
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TransferSpeedColumn,
    )

    with Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                  console=Console(stderr=True), disable=not progress, transient=True) as bar:
        task = bar.add_task(f"{name}: {len(todo)} of {len(src.files)} files", total=sum(f.size for f in todo))
        for f in todo:
            url = src.url(f, base)
            dest = dest_dir / f.name
            try:
                _fetch(url, dest, f, rep, lambda n: bar.advance(task, n), timeout)
            except urllib.error.HTTPError as e:
                if dest_dir.is_dir() and not any(dest_dir.iterdir()):
                    dest_dir.rmdir()
                raise HybridBatchError(f"cannot download {name}: HTTP {e.code} {e.reason} for {url}") from None
            except (urllib.error.URLError, OSError) as e:
                if dest_dir.is_dir() and not any(dest_dir.iterdir()):
                    dest_dir.rmdir()  # an empty folder would hide the "not found, download it" hint later
                reason = getattr(e, "reason", None) or e
                raise HybridBatchError(
                    f"cannot download {name} from {url}: {reason}. If this machine is offline, copy the {name}/ folder "
                    f"from a machine that has it (or run `hybridbatch data download {name}` there) and point at its "
                    f"parent with --data-dir DIR or HYBRIDBATCH_DATA=DIR."
                ) from None
    if rep.problems and not any(dest_dir.iterdir()):
        dest_dir.rmdir()  # nothing was saved: leave no empty folder behind
    rep.raise_if_any()
    (dest_dir / "SOURCE.txt").write_text(
        f"https://github.com/{src.repo} at commit {src.commit}\nlicense: {src.license}\n"
        + "".join(f"{f.sha256}  {f.name}\n" for f in src.files), encoding="utf-8")
    return dest_dir


def _fetch(url: str, dest: Path, f: RemoteFile, rep: _Report, advance: Any, timeout: float) -> None:
    """Stream `url` into a temp file, hashing as it goes; rename into `dest` only if the sha256 matches."""
    h = hashlib.sha256()

    class _Mismatch(Exception):
        pass

    try:
        with atomic_path(dest) as tmp, urllib.request.urlopen(url, timeout=timeout) as resp, open(tmp, "wb") as out:
            for chunk in iter(lambda: resp.read(1 << 16), b""):
                out.write(chunk)
                h.update(chunk)
                advance(len(chunk))
            out.close()
            if h.hexdigest() != f.sha256:
                raise _Mismatch
    except _Mismatch:
        rep.error(dest, url, f"sha256 mismatch: expected {f.sha256}, got {h.hexdigest()}; the download is corrupt "
                             f"or upstream changed, so the file was not saved")


def dataset_stats(
    spec: str | Path, data_dir: Path | str | None = None, split: str | None = None,
) -> dict[str, Any]:
    """Stats for whatever `spec` names: a dataset name, a LAReQA/SQuAD/TyDi folder or file, a JSONL pairs file or
    folder, or a Tatoeba folder (see `corpus_stats`, `pairs_stats`, `tatoeba_stats`)."""
    spec_s = str(spec)
    if spec_s == "tatoeba-laser":
        return tatoeba_stats(read_tatoeba(dataset_dir(spec_s, data_dir)), spec_s)
    path = Path(spec)
    if spec_s not in DATASETS:
        if path.is_file() and path.suffix == ".jsonl":
            return pairs_stats(read_pairs_jsonl(path))
        if path.is_dir():
            if any(_TATOEBA.match(p.name) for p in path.iterdir()):
                return tatoeba_stats(read_tatoeba(path), path.name)
            if any(path.glob("*.jsonl")) and not any(path.glob("*.json")):
                return pairs_stats(load_pairs(path))
    return corpus_stats(load_corpus(spec, data_dir, split=split))
