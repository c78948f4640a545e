"""Out-of-domain evaluations that can discriminate between models (docs/EVALUATION.md, "Domain shift"):

- TyDi GoldP dev, all questions, in one **multilingual pool** (the paragraphs of all 9 languages); the relevant
  paragraph is the question's own. Per-language pools fall out of the same pass (the query's own segment).
- Tatoeba as retrieval: every sentence of each of the 11 languages against **all** sentences of the 11 languages
  plus all 11 English sides (a pool of 21k translations); the relevant item is the English line of the same file.
  The pairwise X -> en pool (the one `analysis.alignment` scores) is that file's English segment.

Why one pool: on its own-language pool TyDi sits at a ceiling (nDCG@10 0.92 for every model); in a pool where 8 other
languages' paragraphs compete, a model whose languages are better aligned lets foreign paragraphs on the same topic
intrude, and a model that prefers its own language keeps them out, so the two pull apart.

The pool is cut into segments (a language, or one side of one Tatoeba file). One scoring pass
(`evaluation.encoding.segment_counts`, the strict tie rule of `evaluation.metrics`) gives, per query and segment, the
number of non-relevant candidates strictly above the relevant item; every rank below is read off those counts.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hybridbatch.evaluation import metrics as M
from hybridbatch.evaluation.encoding import (
    DEFAULT_CHUNK,
    EmbeddingCache,
    encode_cached,
    model_identity,
    prefix_for,
    search,
    segment_counts,
)
from hybridbatch.provenance import jsonable

Progress = Callable[[str, int, int], None]  # (stage, done, total)
TASKS = ("tydi", "tatoeba")
RANK_METRICS = ("map", "ndcg10", "r1", "r10", "r100")
BIAS_METRICS = ("miss1_query_lang", "miss1_relevant_lang", "miss1_other_lang", "gap_mean", "gap_median",
                "gap_share")
DEFINITIONS = {
    "multi": "the relevant item ranked in the whole multilingual pool (all segments)",
    "own": "the relevant item ranked in its own segment only: TyDi = the query language's paragraphs (the "
           "per-language pool); Tatoeba = the English side of the query's file (pairwise X -> en)",
    "map": "mean reciprocal rank over the full ranking = mAP with one relevant item (AP = 1 / rank)",
    "ndcg10": "binary-gain nDCG@10 = 1 / log2(rank + 1) if rank <= 10 else 0 (one relevant item)",
    "r1 / r10 / r100": "share of queries whose relevant item is in the top 1 / 10 / 100 (r1 = P@1)",
    "miss1_query_lang": "share of queries whose top-1 is a wrong candidate in the query's own language",
    "miss1_relevant_lang": "share whose top-1 is a wrong candidate in the relevant item's language, when that "
                           "differs from the query's (Tatoeba: a wrong English sentence; TyDi: always 0)",
    "miss1_other_lang": "share whose top-1 is a wrong candidate in any other language",
    "gap": "rank in the multilingual pool minus rank in the own segment = the number of candidates outside the "
           "relevant item's segment ranked strictly above it; gap_mean / gap_median over queries, gap_share = "
           "share of queries with gap > 0",
    "macro": "every number is the mean over query languages of the per-language mean (as LAReQA)",
    "ties": M.TIE_RULE,
}


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


# ---- building the tasks --------------------------------------------------------------------------------------------


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


# ---- pure metrics --------------------------------------------------------------------------------------------------


def ranks_multi(counts: np.ndarray) -> np.ndarray:
    """Rank in the whole pool: 1 + sum over segments s of counts[q, s] (non-relevant candidates strictly above)."""
    return 1 + np.asarray(counts, dtype=np.int64).sum(axis=1)


def ranks_in_segment(counts: np.ndarray, segment: np.ndarray) -> np.ndarray:
    """Rank in one segment per query: 1 + counts[q, segment[q]]."""
    c = np.asarray(counts, dtype=np.int64)
    return 1 + c[np.arange(len(c)), np.asarray(segment, dtype=np.int64)]


def rank_gap(rank_multi: np.ndarray, rank_own: np.ndarray) -> np.ndarray:
    """gap = rank_multi - rank_own: how many candidates outside the relevant item's own segment rank above it."""
    return np.asarray(rank_multi, dtype=np.int64) - np.asarray(rank_own, dtype=np.int64)


def miss_at_1_in(rank_multi: np.ndarray, top1_lang: np.ndarray, lang: np.ndarray) -> np.ndarray:
    """Per query: 1.0 if the top-1 is wrong (rank_multi > 1) and its language is `lang[q]`, else 0.0."""
    return ((np.asarray(rank_multi) > 1) & (np.asarray(top1_lang) == np.asarray(lang))).astype(np.float64)


def rank_metrics(ranks: np.ndarray) -> dict[str, np.ndarray]:
    """Per-query retrieval metrics of one relevant item from its rank (evaluation.metrics: AP, nDCG@10, R@k)."""
    r = np.asarray(ranks, dtype=np.int64)[:, None]
    return {"map": M.average_precision(r), "ndcg10": M.ndcg_at(r, 10), "r1": M.recall_at(r, 1),
            "r10": M.recall_at(r, 10), "r100": M.recall_at(r, 100)}


def _nanmean(x: np.ndarray) -> float:
    x = np.asarray(x, dtype=np.float64)
    x = x[~np.isnan(x)]
    return float(x.mean()) if len(x) else float("nan")




# ---- scoring -------------------------------------------------------------------------------------------------------


@dataclass
class ShiftResult:
    """Per-query ranks and the summaries of one task for one model."""

    task: str
    languages: list[str]
    summary: dict[str, dict[str, float]]
    per_language: dict[str, dict[str, Any]]
    per_query: dict[str, np.ndarray]
    counts: dict[str, Any]
    settings: dict[str, Any] = field(default_factory=dict)
    model: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return jsonable({"task": self.task, "languages": self.languages, "summary": self.summary,
                       "per_language": self.per_language, "counts": self.counts, "data": self.data,
                       "settings": self.settings, "model": self.model, "timings": self.timings})


def top1_segments(task: ShiftTask, q_emb: np.ndarray, c_emb: np.ndarray, rows: np.ndarray,
                  chunk_size: int = DEFAULT_CHUNK) -> np.ndarray:
    """Segment of the best-scoring candidate of each query in `rows` that is neither its relevant item nor excluded
    (float32 scores; called for the queries whose relevant item is not first)."""
    out = np.zeros(len(rows), dtype=np.int64)
    if not len(rows):
        return out
    k = 2 + task.exclude.shape[1]
    _, idx = search(q_emb[rows], c_emb, k, chunk_size=chunk_size)
    banned = np.concatenate([task.relevant[rows, None], task.exclude[rows]], axis=1)
    ok = ~(idx[:, :, None] == banned[:, None, :]).any(axis=2)
    first = np.argmax(ok, axis=1)
    return task.segment_of(idx[np.arange(len(rows)), first])


def evaluate_task_embeddings(task: ShiftTask, q_emb: np.ndarray, c_emb: np.ndarray, *, backend: str = "auto",
                             chunk_size: int = DEFAULT_CHUNK) -> ShiftResult:
    """Score one task on given L2-normalised embeddings (queries in task order, the pool in segment order)."""
    t0 = time.perf_counter()
    rel = np.concatenate([task.relevant[:, None], task.exclude], axis=1)
    counts, _ = segment_counts(q_emb, c_emb, rel, task.bounds, backend=backend, chunk_size=chunk_size)
    c = counts[:, :, 0].astype(np.int64)  # column 0 = the relevant item; the other columns are only excluded
    own_seg = task.segment_of(task.relevant)
    r_multi, r_own = ranks_multi(c), ranks_in_segment(c, own_seg)
    top1 = own_seg.copy()
    miss = np.nonzero(r_multi > 1)[0]
    top1[miss] = top1_segments(task, q_emb, c_emb, miss, chunk_size)
    seg_langs = np.array(task.seg_langs)
    qlang = np.array(task.query_langs)
    rlang, tlang = seg_langs[own_seg], seg_langs[top1]
    gap = rank_gap(r_multi, r_own)
    per_q: dict[str, np.ndarray] = {f"multi_{k}": v for k, v in rank_metrics(r_multi).items()}
    per_q |= {f"own_{k}": v for k, v in rank_metrics(r_own).items()}
    per_q["miss1_query_lang"] = miss_at_1_in(r_multi, tlang, qlang)
    per_q["miss1_relevant_lang"] = miss_at_1_in(r_multi, tlang, rlang) * (rlang != qlang)
    per_q["miss1_other_lang"] = ((r_multi > 1) & (tlang != qlang) & (tlang != rlang)).astype(np.float64)
    langs = task.languages
    per_language: dict[str, dict[str, Any]] = {}
    for lang in langs:
        m = qlang == lang
        g = gap[m]
        row: dict[str, Any] = {"n_queries": int(m.sum())}
        row |= {k: float(np.mean(v[m])) for k, v in per_q.items()}
        row |= {"gap_mean": float(g.mean()), "gap_median": float(np.median(g)), "gap_share": float(np.mean(g > 0))}
        per_language[lang] = row
    keys = [k for k in next(iter(per_language.values())) if k != "n_queries"] if per_language else []
    macro = {k: _nanmean(np.array([per_language[lang][k] for lang in langs])) for k in keys}
    summary = {"multi": {k: macro[f"multi_{k}"] for k in RANK_METRICS},
               "own": {k: macro[f"own_{k}"] for k in RANK_METRICS},
               "bias": {k: macro[k] for k in BIAS_METRICS}}
    per_query = {"qid": np.array(task.query_ids), "qlang": qlang, "relevant": task.relevant,
                 "rank_multi": r_multi, "rank_own": r_own, "top1_segment": top1, "segments": np.array(task.segments),
                 "segment_langs": seg_langs}
    seg_sizes = np.diff(task.bounds)
    return ShiftResult(
        task=task.name, languages=langs, summary=summary, per_language=per_language, per_query=per_query,
        counts={"n_queries": len(task.query_texts), "n_candidates": len(task.cand_texts),
                "segments": dict(zip(task.segments, map(int, seg_sizes))),
                "excluded_per_query_max": int(task.exclude.shape[1]),
                "excluded_total": int((task.exclude >= 0).sum())},
        data={"checksum": task.checksum, "files": task.files, **task.notes},
        settings={"backend": backend, "chunk_size": chunk_size},
        timings={"score_s": time.perf_counter() - t0},
    )


def encode_task(model: Any, task: ShiftTask, *, batch_size: int = 64, cache: EmbeddingCache | None = None,
                identity: dict[str, Any] | None = None, progress: Progress | None = None, runner: Any = None,
                ) -> tuple[np.ndarray, np.ndarray]:
    """(query embeddings, pool embeddings). The pool is encoded one segment at a time through the embedding cache,
    so a killed run resumes from the last finished segment; queries that are pool texts of the same kind (Tatoeba)
    reuse their pool vectors. `runner`: an `encoders.make_encoder` runtime (default: the model's own encode)."""
    enc = {"runner": runner} if runner is not None else {}
    tag = {"encoder": runner.key} if runner is not None and runner.key != "torch" else {}
    parts = []
    for s, name in enumerate(task.segments):
        a, b = task.bounds[s], task.bounds[s + 1]
        cb = (lambda d, t, _s=f"{task.name}: encode {name}": progress(_s, d, t)) if progress else None
        parts.append(encode_cached(model, task.cand_texts[a:b], task.cand_kind, cache=cache, identity=identity,
                                   settings={"shift": task.name, "segment": name, **tag},
                                   data_checksum=task.checksum, batch_size=batch_size, progress=cb, **enc))
    c_emb = np.concatenate(parts).astype(np.float32) if parts else np.zeros((0, 1), np.float32)
    if task.query_self is not None and task.query_kind == task.cand_kind:
        return c_emb[task.query_self], c_emb
    q_parts = []
    qlang = np.array(task.query_langs)
    order = []
    for lang in task.languages:
        idx = np.nonzero(qlang == lang)[0]
        cb = (lambda d, t, _s=f"{task.name}: encode queries {lang}": progress(_s, d, t)) if progress else None
        q_parts.append(encode_cached(model, [task.query_texts[i] for i in idx], task.query_kind, cache=cache,
                                     identity=identity, settings={"shift": task.name, "queries": lang, **tag},
                                     data_checksum=task.checksum, batch_size=batch_size, progress=cb, **enc))
        order.append(idx)
    q_emb = np.zeros((len(task.query_texts), c_emb.shape[1]), dtype=np.float32)
    for idx, emb in zip(order, q_parts):
        q_emb[idx] = emb
    return q_emb, c_emb


def load_tasks(data_dir: Path | str | None, tasks: Sequence[str] = TASKS, limit: int | None = None
               ) -> dict[str, ShiftTask]:
    """Read and check the data of each task before any model is loaded (a missing folder fails in a second)."""
    from hybridbatch.data.lookup import dataset_dir, load_corpus
    from hybridbatch.data.pairs import read_tatoeba
    from hybridbatch.errors import UsageError
    from hybridbatch.provenance import sha256_files

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


def evaluate_shift(model: Any, tasks: dict[str, ShiftTask], *, batch_size: int = 64,
                   cache_dir: Path | str | None = None, backend: str = "auto", model_name: str | None = None,
                   progress: Progress | None = None, encoder: str = "torch") -> dict[str, ShiftResult]:
    """Every task for one model: encode (cached) and score. `encoder`: the runtime (`encoders.ENCODERS`)."""
    from hybridbatch.evaluation.encoders import make_encoder

    identity = model_identity(model, model_name)
    cache = EmbeddingCache(cache_dir) if cache_dir else None
    runner = make_encoder(model, encoder, identity=identity, cache_dir=cache_dir)
    out = {}
    for name, task in tasks.items():
        t0 = time.perf_counter()
        q_emb, c_emb = encode_task(model, task, batch_size=batch_size, cache=cache, identity=identity,
                                   progress=progress, runner=runner)
        t1 = time.perf_counter()
        res = evaluate_task_embeddings(task, q_emb, c_emb, backend=backend)
        res.timings = {"encode_s": t1 - t0, **res.timings}
        res.model = identity
        res.settings |= {"encoder": encoder, "batch_size": batch_size,
                         "max_seq_length": getattr(model, "max_seq_length", None),
                         "query_prefix": prefix_for(model, task.query_kind),
                         "passage_prefix": prefix_for(model, task.cand_kind),
                         "cache": str(cache_dir) if cache_dir else None,
                         "cache_hits": cache.hits if cache else 0, "cache_misses": cache.misses if cache else 0}
        out[name] = res
    return out


# ---- output --------------------------------------------------------------------------------------------------------

TITLES = {"tydi": "TyDi GoldP dev, multilingual pool", "tatoeba": "Tatoeba, multilingual pool of translations"}
SHIFT_FILES = ("shift.json", "shift.md", "shift.png")


def _f(v: Any, digits: int = 3) -> str:
    return "-" if v is None or (isinstance(v, float) and not np.isfinite(v)) else f"{v:.{digits}f}"


def shift_markdown(results: dict[str, ShiftResult], model: str) -> str:
    """Per task: the macro table (multilingual pool vs own segment, bias) and one row per query language."""
    lines = [f"# Domain shift: `{model}`", "",
             "multi = the whole multilingual pool; own = the relevant item's own segment (TyDi: the query language's "
             "paragraphs; Tatoeba: the English side of the query's file, i.e. pairwise X -> en). mAP = MRR (one "
             "relevant item). miss@1 = share of queries whose top-1 is wrong and in the query's language (q), the "
             "relevant item's language (r, Tatoeba only) or another language (o). gap = rank(multi) - rank(own). "
             "Macro over query languages; definitions in docs/EVALUATION.md.", ""]
    head = ["lang", "n", "multi mAP", "multi nDCG@10", "multi R@1", "multi R@10", "own mAP", "own R@1",
            "miss@1 q", "miss@1 r", "miss@1 o", "gap mean", "gap median", "gap > 0"]
    for name, r in results.items():
        c = r.counts
        lines += [f"## {TITLES.get(name, name)}", "",
                  f"{c['n_queries']} queries, {c['n_candidates']} candidates in {len(c['segments'])} segments.", "",
                  "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        rows = [(lang, r.per_language[lang]) for lang in r.languages]
        macro = {f"multi_{k}": v for k, v in r.summary["multi"].items()}
        macro |= {f"own_{k}": v for k, v in r.summary["own"].items()} | r.summary["bias"]
        macro["n_queries"] = c["n_queries"]
        for lang, v in [*rows, ("**macro**", macro)]:
            lines.append("| " + " | ".join([lang, str(v["n_queries"]), *[_f(v[k]) for k in (
                "multi_map", "multi_ndcg10", "multi_r1", "multi_r10", "own_map", "own_r1", "miss1_query_lang",
                "miss1_relevant_lang", "miss1_other_lang")], _f(v["gap_mean"], 1), _f(v["gap_median"], 1),
                _f(v["gap_share"])]) + " |")
        lines.append("")
    return "\n".join(lines)


def plot_shift(results: dict[str, ShiftResult], path: Path | str, model: str) -> Path:
    """Per task: per-language mAP in the own segment vs the multilingual pool (the drop is what the pool adds), and
    the wrong top-1 split by language."""
    from hybridbatch.report.tables import pyplot, save_figure

    plt = pyplot()
    fig, axes = plt.subplots(len(results), 2, figsize=(12, 3.6 * len(results)), squeeze=False)
    for row, (name, r) in enumerate(results.items()):
        langs = r.languages
        x = np.arange(len(langs))
        ax = axes[row, 0]
        ax.bar(x - 0.2, [r.per_language[lg]["own_map"] for lg in langs], 0.4, label="own segment")
        ax.bar(x + 0.2, [r.per_language[lg]["multi_map"] for lg in langs], 0.4, label="multilingual pool")
        ax.set_xticks(x, langs)
        ax.set_ylim(0, 1)
        ax.set_ylabel("mAP (= MRR)")
        ax.set_title(f"{TITLES.get(name, name)}: mAP", fontsize=9)
        ax.legend(fontsize=7)
        ax = axes[row, 1]
        bottom = np.zeros(len(langs))
        for key, label in (("miss1_query_lang", "query's language"), ("miss1_relevant_lang", "relevant's language"),
                           ("miss1_other_lang", "other language")):
            v = np.array([r.per_language[lg][key] for lg in langs])
            ax.bar(x, v, 0.6, bottom=bottom, label=label)
            bottom += v
        ax.set_xticks(x, langs)
        ax.set_ylabel("share of queries")
        ax.set_title(f"{name}: wrong top-1 in the multilingual pool, by its language", fontsize=9)
        ax.legend(fontsize=7)
    fig.suptitle(f"domain shift: {model}", fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)


def write_shift(results: dict[str, ShiftResult], out_dir: Path | str, model: str, *,
                extra: dict[str, Any] | None = None) -> dict[str, Path]:
    """shift.json (every number + provenance; the commit record, written last), shift.md, shift.png and
    per_query_<task>.npz (ranks and top-1 segment per query, for resampling later)."""
    from hybridbatch.provenance import atomic_file, check_out_dir, provenance, sha256_files, write_json, write_text

    out = check_out_dir(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "shift.json").unlink(missing_ok=True)
    paths: dict[str, Path] = {}
    for name, r in results.items():
        p = out / f"per_query_{name}.npz"
        with atomic_file(p) as f:
            np.savez_compressed(f, **r.per_query)
        paths[f"per_query_{name}"] = p
    paths["md"] = write_text(out / "shift.md", shift_markdown(results, model))
    paths["png"] = plot_shift(results, out / "shift.png", model)
    first = next(iter(results.values()), None)
    body = {
        "kind": "hybridbatch.shift", "model": model, "definitions": DEFINITIONS,
        "tasks": {name: r.to_json() | {"per_query_file": paths[f"per_query_{name}"].name,
                                       "per_query_sha256": sha256_files([paths[f"per_query_{name}"]])}
                  for name, r in results.items()},
        "provenance": provenance(
            model=model, model_weights_sha256=first.model.get("weights_sha256") if first else None,
            data={name: r.data for name, r in results.items()},
            settings={name: r.settings for name, r in results.items()} | (extra or {}),
            timings={name: r.timings for name, r in results.items()}),
    }
    paths["json"] = write_json(out / "shift.json", jsonable(body))
    return paths


def summary_row(results: dict[str, ShiftResult]) -> dict[str, float]:
    """The few numbers a sweep cell keeps: per task multi mAP / nDCG@10 / R@1, own mAP, the bias measures."""
    row: dict[str, float] = {}
    for name, r in results.items():
        for k in ("map", "ndcg10", "r1"):
            row[f"{name}_multi_{k}"] = r.summary["multi"][k]
        row[f"{name}_own_map"] = r.summary["own"]["map"]
        row[f"{name}_own_r1"] = r.summary["own"]["r1"]
        for k in ("miss1_query_lang", "miss1_other_lang", "gap_mean", "gap_share"):
            row[f"{name}_{k}"] = r.summary["bias"][k]
    return row


def run_shift(model_name: str, *, data_dir: Path | str | None, out_dir: Path | str, tasks: Sequence[str] = TASKS,
              limit: int | None = None, batch_size: int = 64, max_seq_length: int | None = 128,
              cache_dir: Path | str | None = None, backend: str = "auto", progress: Progress | None = None,
              model: Any = None, encoder: str = "torch") -> tuple[dict[str, ShiftResult], dict[str, Path]]:
    """What `hybridbatch shift` does: read the data, load the model (unless given), evaluate, write the report."""
    from hybridbatch.models.loading import load_model

    loaded = load_tasks(data_dir, tasks, limit)
    if model is None:
        model = load_model(model_name, max_seq_length=max_seq_length)
    elif max_seq_length is not None:
        model.max_seq_length = max_seq_length
    from hybridbatch.evaluation.encoders import resolve_encoder

    encoder = resolve_encoder(encoder, model)
    results = evaluate_shift(model, loaded, batch_size=batch_size, cache_dir=cache_dir, backend=backend,
                             model_name=model_name, progress=progress, encoder=encoder)
    paths = write_shift(results, out_dir, model_name, extra={"limit": limit, "tasks": list(loaded)})
    return results, paths
