"""JSONL training pairs and Tatoeba line-aligned text.
"""

from __future__ import annotations

import re
from pathlib import Path

from hybridbatch.data.languages import normalize_lang, unknown_lang
from hybridbatch.data.records import PairSet, TrainItem, union_groups
from hybridbatch.data.validation import (
    FILE_NAME,
    FOLDER,
    LINE_COUNT,
    WHOLE_FILE,
    ValidationReport,
    get_field,
    json_loads,
    kind_name,
    read_text,
    show_value,
    unicode_problem,
)
from hybridbatch.errors import UsageError
from hybridbatch.provenance import sha256_files

# ---------------------------------------------------------------------------------------------------------------------
# JSONL training pairs and Tatoeba.

_PAIR_FIELDS = {"id", "lang", "query", "positive", "negative", "group"}


def check_pairs_jsonl(
    rep: ValidationReport, path: Path, lines_out: dict[tuple[str, str], int] | None = None,
) -> dict[str, dict[str, TrainItem]]:
    """The file's items, recording every problem; `lines_out` (if given) receives the line of each (id, lang)."""
    items: dict[str, dict[str, TrainItem]] = {}
    first_line: dict[tuple[str, str], int] = {} if lines_out is None else lines_out
    text = read_text(rep, path)
    if text is None:
        return items
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
        ok = True
        if "id" not in rec:
            rep.error(path, f"{where}: id", "missing field 'id'")
            ok = False
        elif not isinstance(rec["id"], (str, int)) or isinstance(rec["id"], bool) or not str(rec["id"]).strip():
            rep.error(path, f"{where}: id", f"expected a non-empty string, got {kind_name(rec['id'])}")
            ok = False
        elif bad := unicode_problem(str(rec["id"])):
            rep.error(path, f"{where}: id", bad)
            ok = False
        lang_raw = get_field(rep, path, rec, "lang", f"{where}:", str, nonempty=True)
        lang = normalize_lang(lang_raw) if lang_raw is not None else None
        if lang_raw is not None and lang is None:
            rep.error(path, f"{where}: lang", unknown_lang(lang_raw))
        query = get_field(rep, path, rec, "query", f"{where}:", str, nonempty=True)
        positive = get_field(rep, path, rec, "positive", f"{where}:", str, nonempty=True)
        negs: tuple[str, ...] = ()
        neg = rec.get("negative")
        if isinstance(neg, str):
            neg = [neg]
        if isinstance(neg, list):
            for k, x in enumerate(neg):
                if not isinstance(x, str) or not x.strip():
                    rep.error(path, f"{where}: negative[{k}]", f"expected a non-empty string, got {show_value(x)}")
                    ok = False
                elif bad := unicode_problem(x):
                    rep.error(path, f"{where}: negative[{k}]", bad)
                    ok = False
            negs = tuple(x for x in neg if isinstance(x, str))
        elif neg is not None:
            rep.error(path, f"{where}: negative", f"expected a string or a list of strings, got {kind_name(neg)}")
            ok = False
        group = rec.get("group", "")
        if not isinstance(group, (str, int)) or isinstance(group, bool):
            rep.error(path, f"{where}: group", f"expected a string, got {kind_name(group)}")
            ok = False
        for extra in sorted(set(rec) - _PAIR_FIELDS):
            rep.warn(path, f"{where}: {extra}", f"unknown field {extra!r} ignored (fields: id, lang, query, "
                                                f"positive, negative, group)")
        if not ok or lang is None or query is None or positive is None:
            continue
        key = (str(rec["id"]), lang)
        if key in first_line:
            rep.error(path, where, f"duplicate (id, lang) {key!r}, first on line {first_line[key]}")
            continue
        first_line[key] = n
        items.setdefault(key[0], {})[lang] = TrainItem(query, positive, negs, str(group) if group != "" else "")
    if not items and not any(p.file == str(path) for p in rep.problems):
        rep.error(path, WHOLE_FILE, "no training pairs in this file")
    return items


def read_pairs_jsonl(path: Path | str) -> PairSet:
    """Users' own training pairs: one JSON object a line, `{"id", "lang", "query", "positive", "negative"?,
    "group"?}` where `negative` is a string or a list of strings; rows with the same `id` in different languages are
    parallel copies (what X-Y batches pair up). An optional `group` names the answer language-independently: ids
    sharing it are never in one batch group (without it each id is its own group). Blank lines are skipped. Raises
    one DataError naming every bad line."""
    path = Path(path)
    rep = ValidationReport()
    items = check_pairs_jsonl(rep, path)
    rep.raise_if_any()
    return PairSet(path.stem, items, sha256_files([path]), list(rep.warnings))


TATOEBA_FILE = re.compile(r"^tatoeba\.([a-z]{2,3})-eng\.([a-z]{2,3})$")


def _read_lines(rep: ValidationReport, path: Path) -> list[str] | None:
    text = read_text(rep, path)
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


def check_tatoeba(rep: ValidationReport, folder: Path) -> dict[str, tuple[list[str], list[str]]]:
    pairs: dict[str, dict[str, Path]] = {}
    for p in sorted(folder.iterdir()):
        m = TATOEBA_FILE.match(p.name)
        if m:  # folders and broken links too: reading them reports why, instead of a silent "missing"
            pairs.setdefault(m.group(1), {})[m.group(2)] = p
    if not pairs:
        rep.error(folder, FOLDER, "no tatoeba.<xxx>-eng.{<xxx>,eng} files in this folder")
    out: dict[str, tuple[list[str], list[str]]] = {}
    for xxx, sides in pairs.items():
        lang = normalize_lang(xxx)
        if lang is None:
            rep.error(next(iter(sides.values())), FILE_NAME, unknown_lang(xxx))
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
    rep = ValidationReport()
    folder = Path(folder)
    if not folder.is_dir():
        raise UsageError(f"{folder}: not a folder")
    out = check_tatoeba(rep, folder)
    rep.raise_if_any()
    return out


def tatoeba_pairs(data: dict[str, tuple[list[str], list[str]]], name: str = "tatoeba-laser",
                  checksum: str = "") -> PairSet:
    """Tatoeba bitext as alignment pairs: id `tatoeba:<lang>:<line>` exists in <lang> and in English, its query and
    "passage" both the sentence, so only X-Y rows (X -> English, English -> X) pair two texts; X-X rows would pair a
    sentence with itself. Ids whose English (or X) sentence is one text share an answer group (the English sides of
    different language pairs repeat sentences). Note: these are the test pairs of the Tatoeba pool."""
    keys: dict[str, list[tuple[str, str]]] = {}
    items: dict[str, dict[str, TrainItem]] = {}
    for lang, (xs, en) in data.items():
        for i, (x, e) in enumerate(zip(xs, en, strict=True)):
            qid = f"tatoeba:{lang}:{i}"
            keys[qid] = [(lang, x.strip().casefold()), ("en", e.strip().casefold())]
            items[qid] = {lang: TrainItem(x.strip(), x.strip()), "en": TrainItem(e.strip(), e.strip())}
    groups = union_groups(keys)
    for qid, by in items.items():
        for lang, it in by.items():
            by[lang] = TrainItem(it.query, it.positive, (), groups[qid])
    return PairSet(name, items, checksum)
