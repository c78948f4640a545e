"""`data check` and `data stats`: every problem of a set of paths, and per-language counts.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from hybridbatch.data.languages import _unknown_lang, lang_from_path
from hybridbatch.data.lookup import _TYDI_FILE, DATASETS, _lang_files, dataset_dir, load_corpus, load_pairs
from hybridbatch.data.pairs import _TATOEBA, _check_pairs_jsonl, _check_tatoeba, read_pairs_jsonl, read_tatoeba
from hybridbatch.data.qa import _read_qa
from hybridbatch.data.records import PairSet, QACorpus
from hybridbatch.data.validation import FILE_NAME, FOLDER, _Report
from hybridbatch.errors import Problem

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
