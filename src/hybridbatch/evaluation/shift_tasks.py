"""The domain-shift tasks (docs/EVALUATION.md, "Domain shift"): a segmented multilingual pool, its queries and each
query's relevant item, built from TyDi GoldP dev (`tydi_task`) or Tatoeba (`tatoeba_task`); `load_tasks` reads and
checks the data of each before any model is loaded. Scoring is `evaluation.shift`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hybridbatch.data.lookup import dataset_dir, load_corpus
from hybridbatch.data.pairs import read_tatoeba
from hybridbatch.errors import UsageError
from hybridbatch.provenance import sha256_files

TASKS = ("tydi", "tatoeba")


@dataclass
class ShiftTask:
    """One retrieval task over a segmented pool. Query i's relevant candidate is `relevant[i]` (a global pool
    index); `exclude[i]` (padded with -1) are candidates removed from query i's pool: copies of the query itself and
    other known translations of it (a filtered ranking, see `tatoeba_task`)."""

    name: str
    query_texts: list[str]
    query_langs: list[str]
    query_ids: list[str]
    relevant: np.ndarray
    exclude: np.ndarray
    cand_texts: list[str]
    bounds: list[int]
    segments: list[str]
    seg_langs: list[str]
    query_kind: str
    cand_kind: str
    checksum: str
    files: list[str] = field(default_factory=list)
    notes: dict[str, Any] = field(default_factory=dict)
    query_self: np.ndarray | None = None  # pool index holding each query's own text (same kind: reuse embeddings)

    @property
    def languages(self) -> list[str]:
        return sorted(set(self.query_langs))

    def segment_of(self, index: np.ndarray) -> np.ndarray:
        """Segment number of global pool indices."""
        return np.searchsorted(np.asarray(self.bounds), index, side="right") - 1


def tydi_task(corpus: Any, limit: int | None = None) -> ShiftTask:
    """TyDi GoldP dev (a `QACorpus` with paragraph candidates, `load_corpus("tydiqa-goldp", ...)`): every question
    against the paragraphs of all languages; relevant = the question's own paragraph. `limit`: the first N questions
    per language and only the paragraphs of their articles (quick checks; not for reported numbers)."""
    if limit is not None:
        arts = {q.article for lang in corpus.languages for q in corpus.questions[lang][:limit]}
        corpus = corpus.subset(arts, f"{corpus.name}:first{limit}")
    langs = corpus.languages
    texts: list[str] = []
    bounds = [0]
    for lang in langs:
        texts.extend(c.text for c in corpus.candidates[lang])
        bounds.append(len(texts))
    qt, ql, qi, rel = [], [], [], []
    for s, lang in enumerate(langs):
        for q in corpus.questions[lang]:
            qt.append(q.text)
            ql.append(lang)
            qi.append(q.qid)
            rel.append(bounds[s] + q.answer)
    return ShiftTask(
        name="tydi", query_texts=qt, query_langs=ql, query_ids=qi, relevant=np.array(rel, dtype=np.int64),
        exclude=np.zeros((len(qt), 0), dtype=np.int64), cand_texts=texts, bounds=bounds, segments=list(langs),
        seg_langs=list(langs), query_kind="query", cand_kind="passage", checksum=corpus.checksum,
        files=list(corpus.files), notes={"dataset": corpus.name, "limit": limit},
    )


def tatoeba_task(pairs: dict[str, tuple[list[str], list[str]]], limit: int | None = None, checksum: str = "",
                 files: Sequence[str] = ()) -> ShiftTask:
    """Tatoeba (`data.read_tatoeba`: lang -> (sentences, their English lines)) as retrieval. Pool: for each file its
    X side (segment 'X') and its English side (segment 'en@X'). Queries: every X sentence; relevant: the English line
    of the same file and line.

    Relevance is filtered: lines of different files are different sentence sets, but a few English sentences occur
    in several files ('I will be back soon.' in 4). Such a line's X sentences are translations of one another and of
    each copy of that English text, so for the query (X, i) every candidate of a line (X', k) whose English text
    equals line i's, other than the relevant item, is removed from its pool, as are exact copies of the query text.
    The relevant item stays the same-file English line; identical English copies would tie with it anyway."""
    langs = sorted(pairs)
    texts: list[str] = []
    bounds, segments, seg_langs = [0], [], []
    rows: list[tuple[str, int, int, str]] = []  # (lang, x index, en index, en text)
    for lang in langs:
        xs, ens = pairs[lang]
        n = len(xs) if limit is None else min(limit, len(xs))
        x0 = len(texts)
        texts.extend(xs[:n])
        bounds.append(len(texts))
        e0 = len(texts)
        texts.extend(ens[:n])
        bounds.append(len(texts))
        segments += [lang, f"en@{lang}"]
        seg_langs += [lang, "en"]
        rows.extend((lang, x0 + i, e0 + i, ens[i]) for i in range(n))
    by_en: dict[str, list[int]] = {}
    for r, (_, _, _, en) in enumerate(rows):
        by_en.setdefault(en, []).append(r)
    by_text: dict[str, list[int]] = {}
    for i, t in enumerate(texts):
        by_text.setdefault(t, []).append(i)
    excl: list[list[int]] = []
    n_filtered = 0
    for lang, xi, ei, en in rows:
        # both sides of every line sharing this English text (this line too), and every copy of the query text
        drop = {j for r in by_en[en] for j in rows[r][1:3]} | set(by_text[texts[xi]])
        drop.discard(ei)  # the relevant item stays; the query itself (xi) is always dropped
        excl.append(sorted(drop))
        n_filtered += len(by_en[en]) > 1
    width = max((len(e) for e in excl), default=0)
    exclude = np.full((len(rows), width), -1, dtype=np.int64)
    for i, e in enumerate(excl):
        exclude[i, : len(e)] = e
    return ShiftTask(
        name="tatoeba", query_texts=[texts[r[1]] for r in rows], query_langs=[r[0] for r in rows],
        query_ids=[f"{r[0]}:{r[1] - bounds[2 * langs.index(r[0])]}" for r in rows],
        relevant=np.array([r[2] for r in rows], dtype=np.int64), exclude=exclude, cand_texts=texts, bounds=bounds,
        segments=segments, seg_langs=seg_langs, query_kind="query", cand_kind="query", checksum=checksum,
        files=list(files), query_self=np.array([r[1] for r in rows], dtype=np.int64),
        notes={"dataset": "tatoeba-laser", "limit": limit, "queries_with_other_translations": n_filtered,
               "encoding": "both sides as queries (symmetric bitext matching, as analysis.alignment)"},
    )


def load_tasks(data_dir: Path | str | None, tasks: Sequence[str] = TASKS, limit: int | None = None
               ) -> dict[str, ShiftTask]:
    """Read and check the data of each task before any model is loaded (a missing folder fails in a second)."""
    bad = [t for t in tasks if t not in TASKS]
    if bad or not tasks:
        raise UsageError(f"unknown shift task(s) {', '.join(bad) or '(none)'}: choose from {', '.join(TASKS)}")
    if limit is not None and limit < 1:
        raise UsageError(f"--limit must be at least 1, got {limit}")
    out: dict[str, ShiftTask] = {}
    for t in dict.fromkeys(tasks):
        if t == "tydi":
            out[t] = tydi_task(load_corpus("tydiqa-goldp", data_dir, split="dev"), limit)
        else:
            folder = dataset_dir("tatoeba-laser", data_dir)
            files = sorted(p for p in folder.glob("tatoeba.*-eng.*") if p.is_file())
            out[t] = tatoeba_task(read_tatoeba(folder), limit, sha256_files(files), [str(p) for p in files])
    return out
