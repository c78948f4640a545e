"""`data check` and `data stats`: every problem of a set of paths, and per-language counts.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from hybridbatch.data.consistency import consistency_warnings
from hybridbatch.data.languages import lang_from_path, unknown_lang
from hybridbatch.data.lookup import (
    DATASETS,
    TYDI_FILE,
    dataset_dir,
    is_mkqa_file,
    lang_files,
    load_corpus,
    load_pairs,
    pair_source,
)
from hybridbatch.data.mkqa import check_mkqa, mkqa_stats
from hybridbatch.data.pairs import TATOEBA_FILE, check_pairs_jsonl, check_tatoeba, read_pairs_jsonl, read_tatoeba
from hybridbatch.data.qa import read_qa
from hybridbatch.data.records import PairSet, QACorpus
from hybridbatch.data.validation import FILE_NAME, FOLDER, WHOLE_FILE, ValidationReport
from hybridbatch.data.xlinghealth import check_xlinghealth, xlinghealth_files
from hybridbatch.errors import Problem, UsageError
from hybridbatch.provenance import sha256_files

# ---------------------------------------------------------------------------------------------------------------------
# `data check` and `data stats`.


def check_paths(paths: Sequence[Path | str]) -> tuple[list[Problem], list[Problem]]:
    """Every (error, warning) problem in the given files and folders, without raising. A folder is checked as a file
    set: its `<lang>.json` (LAReQA or SQuAD, auto-detected), `*.jsonl` pairs and `tatoeba.*` files."""
    rep = ValidationReport()
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            rep.error(path, "path", "no such file or folder" + (" (a broken symbolic link)" if path.is_symlink()
                                                                else ""))
            continue
        if path.is_dir():
            before = len(rep.problems)
            checked = False
            if any(TATOEBA_FILE.match(p.name) for p in path.iterdir()):
                check_tatoeba(rep, path)
                checked = True
            workbooks = xlinghealth_files(ValidationReport(), path)
            if workbooks:
                check_xlinghealth(rep, workbooks)
                checked = True
            for p in sorted(path.glob("*.jsonl")):
                _check_jsonl(rep, p, beside_workbooks=bool(workbooks))
                checked = True
            tydi = {p for p in path.glob("*.json") if TYDI_FILE.match(p.name)}
            for p in sorted(tydi):
                lang = lang_from_path(p)
                if lang is None:
                    rep.error(p, FILE_NAME, unknown_lang(p.stem))
                else:
                    read_qa(rep, {lang: p}, p.stem, "auto", "paragraph")
                checked = True
            files = lang_files(rep, path, "*.json", skip=tydi)  # a TyDi dev/train pair is not "en given twice"
            if files:
                corpus = read_qa(rep, files, path.name, "auto", "paragraph")
                rep.warnings.extend(consistency_warnings(corpus, files))  # copies of a language, rotated ids
                checked = True
            if not checked and len(rep.problems) == before:  # hidden files only, or nothing at all: say so
                rep.error(path, FOLDER, "no data files (<lang>.json, *.jsonl, *.xlsx, tatoeba.*) in this folder")
        elif path.suffix == ".jsonl":
            _check_jsonl(rep, path)
        elif path.suffix.lower() == ".xlsx":
            check_xlinghealth(rep, [path])
        elif path.suffix == ".json":
            lang = lang_from_path(path)
            if lang is None:
                rep.error(path, FILE_NAME, unknown_lang(path.stem))
            else:
                read_qa(rep, {lang: path}, path.stem, "auto", "paragraph")
        else:
            rep.error(path, FILE_NAME, "unsupported file type (expected .json, .jsonl, .xlsx, or a folder)")
    return rep.problems, rep.warnings


def _check_jsonl(rep: ValidationReport, path: Path, beside_workbooks: bool = False) -> None:
    """An MKQA file (by its name), a JSONL beside XLingHealth workbooks (a conversion: the xlsx is read, this is
    not), or users' pairs."""
    if is_mkqa_file(path):
        check_mkqa(rep, path)
    elif beside_workbooks:
        rep.warn(path, WHOLE_FILE, "not checked: the .xlsx workbooks beside it are the data (a JSONL in their folder "
                                   "is taken for a conversion of them); check it on its own if it is training pairs")
    else:
        check_pairs_jsonl(rep, path)


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


def dataset_stats(
    spec: str | Path, data_dir: Path | str | None = None, split: str | None = None,
) -> dict[str, Any]:
    """Stats for whatever `spec` names: a dataset name, a LAReQA/SQuAD/TyDi folder or file, a JSONL pairs file or
    folder, or a Tatoeba folder (see `corpus_stats`, `pairs_stats`, `tatoeba_stats`)."""
    spec_s = str(spec)
    if spec_s == "tatoeba-laser":
        return tatoeba_stats(read_tatoeba(dataset_dir(spec_s, data_dir)), spec_s)
    if spec_s == "mkqa" or is_mkqa_file(Path(spec_s)):
        return _mkqa_stats(dataset_dir(spec_s, data_dir) if spec_s == "mkqa" else Path(spec_s))
    special = pair_source(spec_s, data_dir)
    if special is not None:
        return pairs_stats(special)
    path = Path(spec)
    if spec_s not in DATASETS:
        if path.is_file() and path.suffix == ".jsonl":
            return pairs_stats(read_pairs_jsonl(path))
        if path.is_dir():
            if any(TATOEBA_FILE.match(p.name) for p in path.iterdir()):
                return tatoeba_stats(read_tatoeba(path), path.name)
            if any(path.glob("*.jsonl")) and not any(path.glob("*.json")):
                return pairs_stats(load_pairs(path))
    return corpus_stats(load_corpus(spec, data_dir, split=split))


def _mkqa_stats(path: Path) -> dict[str, Any]:
    """Per-language MKQA counts (questions, those with answers, answer strings, ids shared with another language)
    and the ids-in-k-languages histogram; one DataError on any problem, like the readers."""
    files = [p for p in sorted(path.glob("*.jsonl")) if is_mkqa_file(p)] if path.is_dir() else [path]
    if len(files) != 1:
        raise UsageError(f"{path}: expected one mkqa*.jsonl file in this folder, found {len(files)}")
    rep = ValidationReport()
    rows = check_mkqa(rep, files[0])
    rep.raise_if_any()
    hist = Counter(len(v) for v in rows.values())
    langs = mkqa_stats(rows)
    return {"name": "mkqa", "kind": "mkqa", "languages": langs, "ids": len(rows),
            "ids_in_k_languages": {str(k): hist[k] for k in sorted(hist)},
            "questions": sum(v["questions"] for v in langs.values()), "checksum": sha256_files(files),
            "warnings": len(rep.warnings)}
