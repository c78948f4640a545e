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
(`evaluation.retrieval.segment_counts`, the strict tie rule of `evaluation.metrics`) gives, per query and segment, the
number of non-relevant candidates strictly above the relevant item; every rank below is read off those counts.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import hybridbatch.evaluation.metrics as M
from hybridbatch.evaluation.cache import EmbeddingCache
from hybridbatch.evaluation.encode import encode_cached, prefix_for
from hybridbatch.evaluation.model_info import model_identity
from hybridbatch.evaluation.retrieval import DEFAULT_CHUNK, check_backend, search, segment_counts
from hybridbatch.evaluation.runtimes import DEFAULT_ENCODER, make_encoder, resolve_encoder
from hybridbatch.evaluation.shift_tasks import TASKS, ShiftTask, load_tasks
from hybridbatch.models.loading import load_model
from hybridbatch.provenance import Progress, atomic_file, jsonable, provenance, sha256_files, write_json
from hybridbatch.outputs import OutFolder, check_out_folder

SHIFT_FILES = ("shift.json", "shift.md", "shift.png")

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

# (results, output folder, model name) -> the files written from them (report.shift: shift.md, shift.png)
ShiftDocuments = Callable[[dict[str, "ShiftResult"], Path, str], dict[str, Path]]


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
    macro = {k: M.nanmean(np.array([per_language[lang][k] for lang in langs])) for k in keys}
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
    reuse their pool vectors. `runner`: a `runtimes.make_encoder` runtime (default: the model's own encode)."""
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


def evaluate_shift(model: Any, tasks: dict[str, ShiftTask], *, batch_size: int = 64,
                   cache_dir: Path | str | None = None, backend: str = "auto", model_name: str | None = None,
                   progress: Progress | None = None, encoder: str = DEFAULT_ENCODER) -> dict[str, ShiftResult]:
    """Every task for one model: encode (cached) and score. `encoder`: the runtime (`runtimes.ENCODERS`)."""
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

# What `hybridbatch shift` (and a grid cell's shift/) writes into its --out: the numbers here, the report stage's
# shift.md / shift.png (`report.shift`); `check_out_folder` refuses an --out holding anything else
SHIFT_OUT = OutFolder("shift", "a shift evaluation", "shift.json, shift.md, shift.png, per_query_<task>.npz",
                      ("shift.json", "shift.md", "shift.png", "per_query_*.npz"))


def write_shift_numbers(results: dict[str, ShiftResult], out_dir: Path | str, model: str, *,
                extra: dict[str, Any] | None = None, documents: ShiftDocuments | None = None) -> dict[str, Path]:
    """per_query_<task>.npz (ranks and top-1 segment per query, for resampling later) and shift.json (every number
    + provenance; the commit record, written last); `documents` (the report stage's shift.md / shift.png:
    `report.shift.write_shift` passes them) are written between the two."""
    out = check_out_folder(out_dir, SHIFT_OUT)
    out.mkdir(parents=True, exist_ok=True)
    (out / "shift.json").unlink(missing_ok=True)
    paths: dict[str, Path] = {}
    for name, r in results.items():
        p = out / f"per_query_{name}.npz"
        with atomic_file(p) as f:
            np.savez_compressed(f, **r.per_query)
        paths[f"per_query_{name}"] = p
    if documents is not None:
        paths |= documents(results, out, model)
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
              model: Any = None, encoder: str = DEFAULT_ENCODER, documents: ShiftDocuments | None = None
              ) -> tuple[dict[str, ShiftResult], dict[str, Path]]:
    """What `hybridbatch shift` does: read the data, load the model (unless given), evaluate, write the results
    (with `documents`: the report too, as `report.shift.shift_documents` does). `out_dir` must be new, empty or hold
    a shift evaluation (SHIFT_OUT), checked before any work."""
    check_out_folder(out_dir, SHIFT_OUT)
    check_backend(backend)
    loaded = load_tasks(data_dir, tasks, limit)
    if model is None:
        model = load_model(model_name, max_seq_length=max_seq_length)
    elif max_seq_length is not None:
        model.max_seq_length = max_seq_length
    encoder = resolve_encoder(encoder, model)
    results = evaluate_shift(model, loaded, batch_size=batch_size, cache_dir=cache_dir, backend=backend,
                             model_name=model_name, progress=progress, encoder=encoder)
    paths = write_shift_numbers(results, out_dir, model_name, extra={"limit": limit, "tasks": list(loaded)},
                                documents=documents)
    return results, paths
