"""MKQA (MIA 2022 dev split): parallel open-domain questions with short answers, no passages, one JSON line per
question and language: `{"pid", "lang", "question", "answers": [...], "split"}`, `pid` shared by all languages.

Two ways to train on it (`pairing`):
- "questions": the question in X paired with the same question in Y. Only X-Y batches (and per-pair X-Y) are
  meaningful: in an X-X row query and "passage" are one text. Each id is its own answer group.
- "answers": the question in X paired with its first answer string in Y (X = Y included): every kind of batch.
  Answers repeat across questions ("yes", "no", "United States of America", years): ids whose first answer is one
  text (case-folded) in some language share an answer group, so they never meet in a batch as false negatives. An id
  with no answer in a language is left out of that language.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hybridbatch.data.languages import normalize_lang, unknown_lang
from hybridbatch.data.records import PairSet, TrainItem, union_groups
from hybridbatch.data.validation import (
    WHOLE_FILE,
    ValidationReport,
    get_field,
    json_loads,
    kind_name,
    read_text,
    show_value,
    unicode_problem,
)
from hybridbatch.errors import DataError, Problem, UsageError
from hybridbatch.provenance import sha256_files

MKQA_FIELDS = ("pid", "lang", "question", "answers", "split")
MKQA_PAIRINGS = ("questions", "answers")


def _answers(rep: ValidationReport, path: Path, rec: dict, where: str) -> list[str] | None:
    ans = get_field(rep, path, rec, "answers", f"{where}:", list)
    if ans is None:
        return None
    ok = True
    for k, a in enumerate(ans):
        if not isinstance(a, str) or not a.strip():
            rep.error(path, f"{where}: answers[{k}]", f"expected a non-empty string, got {show_value(a)}")
            ok = False
        elif bad := unicode_problem(a):
            rep.error(path, f"{where}: answers[{k}]", bad)
            ok = False
    return [a.strip() for a in ans] if ok else None


def check_mkqa(rep: ValidationReport, path: Path) -> dict[str, dict[str, tuple[str, list[str]]]]:
    """pid -> lang -> (question, answers), recording every problem (line and field)."""
    out: dict[str, dict[str, tuple[str, list[str]]]] = {}
    first_line: dict[tuple[str, str], int] = {}
    text = read_text(rep, path)
    if text is None:
        return out
    for n, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        where = f"line {n}"
        ok, rec = json_loads(rep, path, line, where)
        if not ok:
            continue
        if not isinstance(rec, dict):
            rep.error(path, where, f"expected a JSON object, got {kind_name(rec)}")
            continue
        pid = get_field(rep, path, rec, "pid", f"{where}:", str, nonempty=True)
        lang_raw = get_field(rep, path, rec, "lang", f"{where}:", str, nonempty=True)
        lang = normalize_lang(lang_raw) if lang_raw is not None else None
        if lang_raw is not None and lang is None:
            rep.error(path, f"{where}: lang", unknown_lang(lang_raw))
        question = get_field(rep, path, rec, "question", f"{where}:", str, nonempty=True)
        answers = _answers(rep, path, rec, where)
        if "split" in rec and not isinstance(rec["split"], str):
            rep.error(path, f"{where}: split", f"expected a string, got {kind_name(rec['split'])}")
        for extra in sorted(set(rec) - set(MKQA_FIELDS)):
            rep.warn(path, f"{where}: {extra}", f"unknown field {extra!r} ignored (fields: {', '.join(MKQA_FIELDS)})")
        if pid is None or lang is None or question is None or answers is None:
            continue
        if (pid, lang) in first_line:
            rep.error(path, where, f"duplicate (pid, lang) {(pid, lang)!r}, first on line {first_line[(pid, lang)]}")
            continue
        first_line[(pid, lang)] = n
        out.setdefault(pid, {})[lang] = (question.strip(), answers)
    if not out and not any(p.file == str(path) for p in rep.problems):
        rep.error(path, WHOLE_FILE, "no MKQA questions in this file")
    return out


def mkqa_pairs(rows: dict[str, dict[str, tuple[str, list[str]]]], pairing: str, name: str,
               checksum: str = "") -> PairSet:
    """Training items of checked MKQA rows: question -> same question ("questions") or -> first answer ("answers")."""
    if pairing not in MKQA_PAIRINGS:
        raise UsageError(f"MKQA pairing must be one of {', '.join(MKQA_PAIRINGS)}, not {pairing!r}")
    if pairing == "questions":
        items = {pid: {lang: TrainItem(q, q, (), pid) for lang, (q, _) in by.items()} for pid, by in rows.items()}
        return PairSet(name, items, checksum)
    keys = {pid: [(lang, a[0].casefold()) for lang, (_, a) in by.items() if a] for pid, by in rows.items()}
    groups = union_groups({pid: k for pid, k in keys.items() if k})
    items = {pid: {lang: TrainItem(q, a[0], (), groups[pid]) for lang, (q, a) in by.items() if a}
             for pid, by in rows.items() if pid in groups}
    return PairSet(name, items, checksum)


def read_mkqa(path: Path | str, pairing: str = "questions") -> PairSet:
    """MKQA training pairs from its JSONL file (see the module doc for the two pairings). Raises one DataError
    naming every bad line and field; unknown fields are warnings."""
    path = Path(path)
    if pairing not in MKQA_PAIRINGS:
        raise UsageError(f"MKQA pairing must be one of {', '.join(MKQA_PAIRINGS)}, not {pairing!r}")
    if path.is_dir():
        files = sorted(path.glob("*.jsonl"))
        if len(files) != 1:
            raise UsageError(f"{path}: expected one MKQA .jsonl file in this folder, found {len(files)}")
        path = files[0]
    rep = ValidationReport()
    rows = check_mkqa(rep, path)
    rep.raise_if_any()
    name = "mkqa" if pairing == "questions" else "mkqa:answers"
    ps = mkqa_pairs(rows, pairing, name, sha256_files([path]))
    if not ps.items:
        raise DataError(Problem(str(path), WHOLE_FILE, "no question has an answer: no question -> answer pairs"))
    ps.warnings = list(rep.warnings)
    return ps


def mkqa_stats(rows: dict[str, dict[str, tuple[str, list[str]]]]) -> dict[str, Any]:
    """Per language: questions, those with an answer, answer strings, ids shared with another language."""
    langs: dict[str, dict[str, int]] = {}
    for by in rows.values():
        for lang, (_, answers) in by.items():
            row = langs.setdefault(lang, {"questions": 0, "with_answers": 0, "answers": 0, "shared_ids": 0})
            row["questions"] += 1
            row["with_answers"] += bool(answers)
            row["answers"] += len(answers)
            row["shared_ids"] += len(by) > 1
    return dict(sorted(langs.items()))
