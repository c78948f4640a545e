"""The parallel data the alignment measures read: row-aligned texts per language pair, from XQuAD-R / MLQA-R
(the two copies of one question, or of its answer sentence) and Tatoeba (each language with its English side).
Everything is read and checked here before any model is loaded, so a missing folder fails in a second."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from hybridbatch.data.lookup import DATASETS, dataset_dir, load_corpus
from hybridbatch.data.pairs import read_tatoeba
from hybridbatch.data.records import QACorpus
from hybridbatch.errors import UsageError
from hybridbatch.provenance import sha256_files

ALIGN_SOURCES = ("xquad-r-questions", "xquad-r-answers", "tatoeba")
SPLITS = ("test", "train", "all")  # XQuAD-R / MLQA-R articles: the 12 held-out, the 36 trained on, or all
# Which prefix each source is encoded with (models.prefixes): questions are queries and answer sentences are
# passages, as in retrieval; Tatoeba is symmetric bitext matching, encoded as queries on both sides (E5's advice for
# symmetric tasks).
SOURCE_KIND = {"questions": "query", "answers": "passage", "tatoeba": "query"}
TATOEBA_FOLDER = "tatoeba-laser"
PIVOT = "en"


@dataclass
class ParallelSet:
    """Row-aligned texts for one language pair: texts_a[i] is parallel to texts_b[i]; kind picks the prefix."""

    source: str
    a: str
    b: str
    kind: str
    texts_a: list[str]
    texts_b: list[str]


def _unique_pairs(pairs: Iterable[tuple[str, str]], limit: int | None) -> tuple[list[str], list[str]]:
    """Drop repeated (text_a, text_b) pairs (several XQuAD questions share one answer sentence) and keep at most
    `limit` of the remaining in order."""
    seen: dict[tuple[str, str], None] = {}
    for p in pairs:
        seen.setdefault(p, None)
    kept = list(seen)[: limit if limit is not None else None]
    return [p[0] for p in kept], [p[1] for p in kept]


def _lareqa_sets(source: str, data_dir: Path | str | None, limit: int | None,
                 corpora: dict[str, QACorpus], split: str = "all") -> tuple[list[ParallelSet], str, list[str]]:
    """XQuAD-R (or any LAReQA dataset): per unordered language pair, the ids present in both languages, in file
    order; the first `limit` ids. Questions: the two copies of one question. Answers: the answer sentences of those
    copies (may repeat, and may differ in segmentation between languages; exact repeats are dropped). `split`:
    'test' / 'train' articles (`QACorpus.split`), or 'all'."""
    dataset, _, unit = source.rpartition("-")
    if dataset not in corpora:  # questions and answers share one read
        corpora[dataset] = load_corpus(dataset, data_dir, split=None if split == "all" else split)
    corpus_ = corpora[dataset]
    by_id = corpus_.by_id()
    langs = corpus_.languages
    sets = []
    for i, a in enumerate(langs):
        for b in langs[i + 1 :]:
            ids = [qid for qid, by_lang in by_id.items() if a in by_lang and b in by_lang]
            if limit is not None:
                ids = ids[:limit]
            if unit == "questions":
                pairs = ((by_id[q][a].text, by_id[q][b].text) for q in ids)
            else:
                ca, cb = corpus_.candidates[a], corpus_.candidates[b]
                pairs = ((ca[by_id[q][a].answer].text, cb[by_id[q][b].answer].text) for q in ids)
            ta, tb = _unique_pairs(pairs, None)
            sets.append(ParallelSet(source, a, b, SOURCE_KIND[unit], ta, tb))
    return sets, corpus_.checksum, list(corpus_.files)


def _tatoeba_sets(data_dir: Path | str | None, limit: int | None) -> tuple[list[ParallelSet], str, list[str]]:
    """Tatoeba: each language with its own English side (not multi-way parallel), first `limit` lines."""
    folder = dataset_dir(TATOEBA_FOLDER, data_dir)  # --data-dir, $HYBRIDBATCH_DATA, cache; UsageError if none
    data = read_tatoeba(folder)
    files = sorted(p for p in folder.glob("tatoeba.*-eng.*") if p.is_file())
    sets = []
    for lang, (xs, ens) in sorted(data.items()):
        ta, tb = _unique_pairs(zip(xs, ens), limit)
        sets.append(ParallelSet("tatoeba", lang, PIVOT, SOURCE_KIND["tatoeba"], ta, tb))
    return sets, sha256_files(files) if files else "", [str(p) for p in files]


def parallel_sets(source: str, data_dir: Path | str | None = None, limit: int | None = None,
                  corpora: dict[str, QACorpus] | None = None, split: str = "all",
                  ) -> tuple[list[ParallelSet], str, list[str]]:
    """(parallel sets per language pair, data checksum, files) for one source name; `corpora` caches reads.
    `split` picks the XQuAD-R / MLQA-R articles (Tatoeba has no split)."""
    if source == "tatoeba":
        return _tatoeba_sets(data_dir, limit)
    dataset, _, unit = source.rpartition("-")
    if unit in ("questions", "answers") and dataset in DATASETS:
        return _lareqa_sets(source, data_dir, limit, {} if corpora is None else corpora, split)
    raise UsageError(f"unknown alignment source {source!r}: choose from {', '.join(ALIGN_SOURCES)} "
                     f"(or mlqa-r-questions / mlqa-r-answers)")


def load_sources(sources: Sequence[str], data_dir: Path | str | None, limit: int | None, split: str = "all",
                 ) -> dict[str, tuple[list[ParallelSet], str, list[str]]]:
    """Read and check every source before any model is loaded, so a missing folder fails in a second. `split`:
    the XQuAD-R / MLQA-R articles to take ('test' keeps a before/after comparison out of the training articles)."""
    if not sources:
        raise UsageError("no alignment sources given: choose from " + ", ".join(ALIGN_SOURCES))
    if limit is not None and limit < 4:
        raise UsageError(f"--limit must be at least 4 items per language (debiased CKA needs n >= 4), got {limit}")
    if data_dir is not None and not Path(data_dir).is_dir():
        raise UsageError(f"data folder {data_dir} does not exist: pass --data-dir DIR, a folder holding xquad-r/ and "
                         f"tatoeba-laser/ (or set $HYBRIDBATCH_DATA), or run `hybridbatch data download`")
    if split not in SPLITS:
        raise UsageError(f"--split must be one of {', '.join(SPLITS)}, not {split!r}")
    corpora: dict[str, QACorpus] = {}
    return {src: parallel_sets(src, data_dir, limit, corpora, split) for src in dict.fromkeys(sources)}
