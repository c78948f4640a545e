"""SQuAD / LAReQA JSON readers: walk the file, validate every field, build a QACorpus.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from hybridbatch.data.languages import normalize_lang, unknown_lang
from hybridbatch.data.records import Candidate, QACorpus, Question
from hybridbatch.data.sentences import split_sentences
from hybridbatch.data.validation import (
    LANGUAGE,
    ValidationReport,
    get_field,
    kind_name,
    parse_json,
    show_value,
    unicode_problem,
)
from hybridbatch.errors import UsageError
from hybridbatch.provenance import sha256_files

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
    rep: ValidationReport, path: Path, par: dict, ctx: str, where: str,
) -> tuple[list[str], list[tuple[int, int]]] | None:
    """Validate `sentences` against `sentence_breaks`; return (texts, spans) or None if unusable. A sentence whose
    text differs from its context slice (with a matching count) is only a warning: upstream LAReQA uses `sentences`
    as the candidate text and `sentence_breaks` to find the answer, and the real tr.json has one such paragraph."""
    sents = get_field(rep, path, par, "sentences", where, list, nonempty=True)
    breaks = get_field(rep, path, par, "sentence_breaks", where, list, nonempty=True)
    if sents is None or breaks is None:
        return None
    ok = True
    for k, s in enumerate(sents):
        if not isinstance(s, str):
            rep.error(path, f"{where}.sentences[{k}]", f"expected a string, got {kind_name(s)} ({show_value(s)})")
            ok = False
        elif not s.strip():
            rep.error(path, f"{where}.sentences[{k}]", "is empty")
            ok = False
        elif bad := unicode_problem(s):
            rep.error(path, f"{where}.sentences[{k}]", bad)
            ok = False
    spans: list[tuple[int, int]] = []
    for k, b in enumerate(breaks):
        bw = f"{where}.sentence_breaks[{k}]"
        if not (isinstance(b, list) and len(b) == 2 and all(isinstance(x, int) and not isinstance(x, bool) for x in b)):
            rep.error(path, bw, f"expected a [start, end] pair of integers, got {show_value(b)}")
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
                     f"text differs from context[{a}:{b}] from character {i} ({show_value(s[i:i + 12])} vs "
                     f"{show_value(got[i:i + 12])}); the candidate is the 'sentences' entry, as in upstream LAReQA")
    return list(sents), spans


def _walk_qa_file(
    rep: ValidationReport, path: Path, obj: dict, lang: str, *, lareqa: bool, unit: str,
) -> tuple[list[Question], list[Candidate]]:
    """Questions and candidates of one parsed SQuAD/LAReQA file, recording every problem on `rep`."""
    qs: list[Question] = []
    pool: list[Candidate] = []
    seen_ids: dict[str, str] = {}
    seen_par: dict[tuple[str, str], int] = {}  # (title, context) -> candidate index, for paragraph units
    for ai, art in enumerate(obj["data"]):
        aw = f"data[{ai}]"
        if not isinstance(art, dict):
            rep.error(path, aw, f"expected an object (an article), got {kind_name(art)}")
            continue
        title = get_field(rep, path, art, "title", aw, str, nonempty=True)
        pars = get_field(rep, path, art, "paragraphs", aw, list)
        if title is None or pars is None:
            continue
        for pi, par in enumerate(pars):
            pw = f"{aw}.paragraphs[{pi}]"
            if not isinstance(par, dict):
                rep.error(path, pw, f"expected an object (a paragraph), got {kind_name(par)}")
                continue
            ctx = get_field(rep, path, par, "context", pw, str, nonempty=True)
            qas = get_field(rep, path, par, "qas", pw, list)
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


def _question_id(rep: ValidationReport, path: Path, qa: Any, qw: str) -> str | None:
    """The question's id as a string (SQuAD ids are strings; integers are accepted), or None after recording why."""
    if not isinstance(qa, dict):
        return None  # reported by _walk_question
    if "id" not in qa:
        rep.error(path, f"{qw}.id", "missing field 'id'")
        return None
    qid = qa["id"]
    if not (isinstance(qid, (str, int)) and not isinstance(qid, bool)) or not str(qid).strip():
        rep.error(path, f"{qw}.id", f"expected a non-empty string, got {kind_name(qid)} ({show_value(qid)})")
        return None
    if bad := unicode_problem(str(qid)):
        rep.error(path, f"{qw}.id", bad)
        return None
    return str(qid)


def _walk_question(
    rep: ValidationReport, path: Path, qa: Any, qw: str, ctx: str, spans: list[tuple[int, int]] | None, lareqa: bool,
) -> tuple[str, int | None] | None:
    """(question text, index of the answer span or None if spans are unusable), or None after recording why."""
    if not isinstance(qa, dict):
        rep.error(path, qw, f"expected an object (a question), got {kind_name(qa)}")
        return None
    ok = True
    text = get_field(rep, path, qa, "question", qw, str, nonempty=True)
    answers = get_field(rep, path, qa, "answers", qw, list, nonempty=True)
    start = None
    if answers is not None:
        for k, ans in enumerate(answers):
            aw = f"{qw}.answers[{k}]"
            if not isinstance(ans, dict):
                rep.error(path, aw, f"expected an object (an answer), got {kind_name(ans)}")
                ok = False
                continue
            s = get_field(rep, path, ans, "answer_start", aw, int)
            if "text" in ans and not isinstance(ans["text"], str):
                rep.error(path, f"{aw}.text", f"expected a string, got {kind_name(ans['text'])}")
            if s is None:
                ok = False
                continue
            if not 0 <= s < len(ctx):
                rep.error(path, f"{aw}.answer_start", f"answer start {s} is outside the context "
                                                      f"(0..{len(ctx) - 1})")
                ok = False
                continue
            if isinstance(ans.get("text"), str) and ans["text"] and ctx[s:s + len(ans["text"])] != ans["text"]:
                rep.warn(path, f"{aw}.text", f"answer text {show_value(ans['text'], 30)} is not at context[{s}:] "
                                             f"({show_value(ctx[s:s + len(ans['text'])], 30)})")
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


def _resolve_langs(rep: ValidationReport, files: Mapping[str, Path | str]) -> dict[str, Path]:
    """Normalise the language keys of `files` (aliases -> ISO 639-1), recording unknown and clashing codes."""
    out: dict[str, Path] = {}
    for key, path in files.items():
        lang = normalize_lang(key)
        if lang is None:
            rep.error(path, LANGUAGE, unknown_lang(key))
            continue
        if lang in out:
            rep.error(path, LANGUAGE, f"language {lang!r} given twice (also {out[lang]})")
            continue
        out[lang] = Path(path)
    return dict(sorted(out.items()))


def read_qa(
    rep: ValidationReport, files: Mapping[str, Path | str], name: str, mode: Mode, unit: str,
) -> QACorpus:
    """Read a file set into a QACorpus, recording (not raising) every problem."""
    questions: dict[str, list[Question]] = {}
    candidates: dict[str, list[Candidate]] = {}
    resolved = _resolve_langs(rep, files)
    for lang, path in resolved.items():
        obj = parse_json(rep, path)
        if obj is None:
            continue
        lareqa = _is_lareqa(obj) if mode == "auto" else mode == "lareqa"
        qs, pool = _walk_qa_file(rep, path, obj, lang, lareqa=lareqa, unit=unit)
        if not qs and not any(p.file == str(path) for p in rep.problems):
            rep.error(path, "data", "no questions in this file")
        questions[lang], candidates[lang] = qs, pool
    readable = [p for p in resolved.values() if p.is_file()]
    checksum = sha256_files(readable) if readable else ""
    corpus = QACorpus(name, questions, candidates, checksum, [str(p) for p in resolved.values()], list(rep.warnings))
    return corpus.with_answer_groups()


def _need_files(files: Mapping[str, Path | str]) -> None:
    if not files:
        raise UsageError("no files given: pass {language code: path}, e.g. lareqa_files(FOLDER)")


def read_lareqa(files: Mapping[str, Path], name: str = "lareqa") -> QACorpus:
    """Read LAReQA JSON (XQuAD-R / MLQA-R): SQuAD JSON whose paragraphs carry `sentences` and `sentence_breaks`.
    `files` maps language code (or alias, e.g. 'deu') -> file. Candidates are the `sentences` entries; a question's
    answer is the sentence whose break has start <= answer_start < end. Ids need not exist in every language.
    Raises one DataError listing every problem (UsageError if `files` is empty)."""
    _need_files(files)
    rep = ValidationReport()
    corpus = read_qa(rep, files, name, "lareqa", "sentence")
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
    rep = ValidationReport()
    corpus = read_qa(rep, files, name, "squad", unit)
    rep.raise_if_any()
    return corpus


