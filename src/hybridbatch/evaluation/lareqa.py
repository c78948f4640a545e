"""The LAReQA evaluation protocol (Mono / Cross / Multi mAP, R@k, nDCG@10, language bias) and a BEIR-style
single-language evaluation (TyDi GoldP: the domain-shift check). Protocol choices are documented in
docs/EVALUATION.md.

One scoring pass does everything: each query block is scored once against the union of all language pools, and per
(query, pool segment, relevant item) we count the non-relevant candidates strictly above the relevant item
(`retrieval.segment_counts`). Mono and Cross ranks are read off the segment of that language, Multi ranks off the sum
over segments, so the 11 + 110 + 11 settings of XQuAD-R cost one pass instead of 132.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hybridbatch.data.records import QACorpus, passage_text
from hybridbatch.evaluation import metrics as M
from hybridbatch.evaluation.encoding import (
    DEFAULT_BLOCK_MIB,
    DEFAULT_CHUNK,
    EmbeddingCache,
    block_queries,
    choose_backend,
    encode_cached,
    model_identity,
    prefix_for,
    segment_counts,
)
from hybridbatch.provenance import Timer, atomic_file, jsonable, provenance, sweep_temps

log = logging.getLogger(__name__)

METRICS = ("ap", "ap20", "r1", "r10", "ndcg10", "mrr10", "rank_distance")
MULTI = "multi"

Progress = Callable[[str, int, int], None]  # (stage, done, total)


@dataclass
class EvalResult:
    """Everything `evaluate_lareqa` measured. `summary[setting][metric]` are the macro averages (setting = mono,
    cross, multi; 'bias' is the Multi rank distance); `pairs[metric]` the (query lang x pool lang) matrices;
    `per_query` one row per (query, pool) evaluated (see `PER_QUERY_FIELDS`)."""

    dataset: str
    checksum: str
    languages: list[str]
    summary: dict[str, dict[str, float]]
    pairs: dict[str, np.ndarray]
    per_language: dict[str, dict[str, float]]
    counts: dict[str, Any]
    per_query: dict[str, np.ndarray]
    settings: dict[str, Any] = field(default_factory=dict)
    model: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    tie_rule: str = M.TIE_RULES["expected"]
    kind: str = "lareqa"
    health: dict[str, Any] = field(default_factory=dict)  # sanity.score_spread: near-collapse check

    def to_json(self) -> dict[str, Any]:
        return jsonable({
            "kind": self.kind,
            "dataset": self.dataset,
            "checksum": self.checksum,
            "languages": self.languages,
            "tie_rule": self.tie_rule,
            "health": self.health,
            "protocol": PROTOCOL_NOTES,
            "summary": self.summary,
            "pairs": {k: v.tolist() for k, v in self.pairs.items()},
            "per_language": self.per_language,
            "counts": self.counts,
            "settings": self.settings,
            "model": self.model,
            "timings": self.timings,
        })


@dataclass
class BeirResult:
    """Single-language retrieval per language (question -> its paragraph): nDCG@10, Recall@100, MRR@10."""

    dataset: str
    checksum: str
    languages: list[str]
    per_language: dict[str, dict[str, float]]
    summary: dict[str, float]
    counts: dict[str, Any]
    per_query: dict[str, np.ndarray]
    settings: dict[str, Any] = field(default_factory=dict)
    model: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    tie_rule: str = M.TIE_RULES["expected"]
    kind: str = "beir"

    def to_json(self) -> dict[str, Any]:
        return jsonable({
            "kind": self.kind, "dataset": self.dataset, "checksum": self.checksum, "languages": self.languages,
            "tie_rule": self.tie_rule, "summary": self.summary, "per_language": self.per_language,
            "counts": self.counts, "settings": self.settings, "model": self.model, "timings": self.timings,
        })


PROTOCOL_NOTES = {
    "queries": "every question in every language",
    "relevant": "for query id q: in each language where q exists, the sentence holding that copy's answer start",
    "mono": "query lang X vs pool X; macro = mean over languages",
    "cross": "query lang X vs pool Y, X != Y; macro = mean over ordered pairs",
    "multi": "query lang X vs the union of all pools; macro = mean over query languages",
    "map": "average precision over the full ranking (LAReQA); map20 = AP@20 divided by min(#relevant, 20) (XTREME-R)",
    "r1": "share of relevant items in the top 1 (Mono/Cross: hit@1)",
    "r10": "share of the query's relevant items found in the top 10",
    "bias": "rank distance in the Multi pool (max - min rank of the relevant copies; queries with >= 2 copies); "
            "mean per query language, macro over query languages; lower is better",
    "partial_parallelism": "a query with no relevant copy in a pool is left out of that pool's averages "
                           "(counts.left_out)",
}

PER_QUERY_FIELDS = ("qid", "qlang", "pool", "n_relevant", "first_rank", *METRICS)




def _nanmean(x: np.ndarray) -> float:
    x = np.asarray(x, dtype=np.float64)
    x = x[~np.isnan(x)]
    return float(x.mean()) if len(x) else float("nan")


# ---- LAReQA ---------------------------------------------------------------------------------------------------------


def evaluate_lareqa(
    model: Any,
    corpus: QACorpus,
    *,
    context: bool = False,
    batch_size: int = 64,
    cache_dir: Path | str | None = None,
    backend: str = "auto",
    model_name: str | None = None,
    chunk_size: int = DEFAULT_CHUNK,
    progress: Progress | None = None,
    ties: str = "expected",
    encoder: str = "torch",
    precision: str = "fp32",
    devices: list[str] | None = None,
) -> EvalResult:
    """Encode every question and candidate of `corpus` with `model` (query / passage prefixes from the model) and
    score the LAReQA protocol. `context=True` encodes candidates as sentence + paragraph. `ties`: how equal scores
    are ranked (`metrics.TIE_MODES`); `encoder`: which runtime encodes (`encoders.ENCODERS`)."""
    timer = Timer()
    identity = model_identity(model, model_name)
    cache = EmbeddingCache(cache_dir) if cache_dir else None
    with timer("encode"):
        q_emb, c_emb = encode_corpus(model, corpus, context=context, batch_size=batch_size, cache=cache,
                                     identity=identity, progress=progress, encoder=encoder, cache_dir=cache_dir,
                                     precision=precision, devices=devices)
    result = evaluate_lareqa_embeddings(corpus, q_emb, c_emb, backend=backend, chunk_size=chunk_size,
                                        progress=progress, ties=ties)
    result.timings = {"encode_s": timer.seconds["encode"], **result.timings}
    result.settings.update(run_settings(model, context, batch_size, cache, cache_dir))
    result.settings.update({"encoder": encoder, "precision": precision, "devices": devices})
    result.model = identity
    return result


def encode_corpus(model: Any, corpus: QACorpus, *, context: bool, batch_size: int, cache: EmbeddingCache | None,
                  identity: dict[str, Any], progress: Progress | None = None, encoder: str = "torch",
                  cache_dir: Path | str | None = None, precision: str = "fp32", devices: list[str] | None = None
                  ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Query and passage embeddings per language (passages first: they are what `context` changes). NaN, inf or
    zero-norm embeddings raise `ModelError` naming the model and the first such text (`sanity.check_embeddings`)."""
    from hybridbatch.evaluation.encoders import make_encoder
    from hybridbatch.evaluation.sanity import check_embeddings

    runner = make_encoder(model, encoder, identity=identity, cache_dir=cache_dir, precision=precision,
                          devices=devices)
    if encoder == "openvino-int8":  # calibrate on every 50th question and candidate of every language
        qp, pp = prefix_for(model, "query"), prefix_for(model, "passage")
        runner.prepare([qp + q.text for lang in corpus.languages for q in corpus.questions[lang][::50]]
                       + [pp + passage_text(c, context) for lang in corpus.languages
                          for c in corpus.candidates[lang][::50]])
    q_emb: dict[str, np.ndarray] = {}
    c_emb: dict[str, np.ndarray] = {}
    for kind, items in (("passage", corpus.candidates), ("query", corpus.questions)):
        for lang in corpus.languages:
            texts = [passage_text(c, context) for c in items[lang]] if kind == "passage" else [
                q.text for q in items[lang]]
            cb = (lambda d, t, _s=f"encode {kind} {lang}": progress(_s, d, t)) if progress else None
            settings: dict[str, Any] = {"context": context} if kind == "passage" else {}
            if runner.key != "torch":  # torch fp32 keys stay as they were: existing cache entries still hit
                settings["encoder"] = runner.key
            emb = encode_cached(
                model, texts, kind, cache=cache, identity=identity, settings=settings,
                data_checksum=corpus.checksum, batch_size=batch_size, progress=cb, runner=runner,
            )
            check_embeddings(emb, texts, model=str(identity.get("name")), what=f"{lang} {kind}")
            (c_emb if kind == "passage" else q_emb)[lang] = emb
    return q_emb, c_emb


def run_settings(model: Any, context: bool, batch_size: int, cache: EmbeddingCache | None,
                 cache_dir: Path | str | None) -> dict[str, Any]:
    """The encoding settings and cache statistics every result file records."""
    from hybridbatch.evaluation.encoding import prefix_for

    return {
        "context": context, "batch_size": batch_size, "query_prefix": prefix_for(model, "query"),
        "passage_prefix": prefix_for(model, "passage"), "max_seq_length": getattr(model, "max_seq_length", None),
        "cache": str(cache_dir) if cache_dir else None,
        "cache_hits": cache.hits if cache else 0, "cache_misses": cache.misses if cache else 0,
        "cache_rejected": cache.rejected if cache else 0, "cache_temps_removed": cache.temps_removed if cache else 0,
    }


def relevant_matrix(corpus: QACorpus, qlang: str, bounds: dict[str, int]) -> np.ndarray:
    """(questions of `qlang`, languages) global candidate index of each copy's answer in the union pool, -1 where the
    question id does not exist in that language."""
    langs = corpus.languages
    by_id = corpus.by_id()
    qs = corpus.questions[qlang]
    rel = np.full((len(qs), len(langs)), -1, dtype=np.int64)
    for i, q in enumerate(qs):
        copies = by_id[q.qid]
        for j, lang in enumerate(langs):
            c = copies.get(lang)
            if c is not None:
                rel[i, j] = bounds[lang] + c.answer
    return rel


def evaluate_lareqa_embeddings(
    corpus: QACorpus,
    q_emb: dict[str, np.ndarray],
    c_emb: dict[str, np.ndarray],
    *,
    backend: str = "auto",
    chunk_size: int = DEFAULT_CHUNK,
    block_mib: float = DEFAULT_BLOCK_MIB,
    progress: Progress | None = None,
    ties: str = "expected",
) -> EvalResult:
    """The protocol on given embeddings; used by `evaluate_lareqa`, tests and the benchmark. Shapes are checked
    against the corpus, NaN / inf / zero-norm rows refused, rows not of unit norm normalised
    (`sanity.check_and_normalise`). `ties` picks the tie rule (`metrics.TIE_MODES`; tie counts go to counts.ties).
    Working memory: one block of `retrieval.block_queries` queries x the union pool (<= `block_mib` MiB) on top of
    the embeddings (plus their concatenation) and the per-query outputs (docs/EVALUATION.md, "Resource bounds")."""
    from hybridbatch.evaluation.sanity import check_and_normalise, score_spread

    if ties not in M.TIE_MODES:
        from hybridbatch.errors import UsageError

        raise UsageError(f"ties must be one of {', '.join(M.TIE_MODES)}, not {ties!r}")
    timer = Timer()
    langs = corpus.languages
    n_l = len(langs)
    q_emb, q_fixed = check_and_normalise(q_emb, {lang: len(corpus.questions[lang]) for lang in langs},
                                         what="query", texts={lang: [q.text for q in corpus.questions[lang]]
                                                              for lang in langs})
    c_emb, c_fixed = check_and_normalise(c_emb, {lang: len(corpus.candidates[lang]) for lang in langs},
                                         what="candidate")
    sizes = [len(corpus.candidates[lang]) for lang in langs]
    starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    bounds = {lang: int(starts[i]) for i, lang in enumerate(langs)}
    union = np.concatenate([np.asarray(c_emb[lang], dtype=np.float32) for lang in langs]) if langs else np.zeros(
        (0, 1), np.float32)
    backend_used = choose_backend(backend, len(union))
    rows: dict[str, list[np.ndarray]] = {k: [] for k in PER_QUERY_FIELDS}
    qid_names: list[str] = []
    qid_index: dict[str, int] = {}
    left_out = {"mono": 0, "cross": 0, "multi": 0}
    tie_counts = {s_: {"relevant_items_tied": 0, "tied_candidates": 0, "queries_with_ties": 0}
                  for s_ in ("mono", "cross", "multi")}
    n_rel_multi: list[np.ndarray] = []
    for li, lang in enumerate(langs):
        qs = corpus.questions[lang]
        if not qs:
            continue
        rel = relevant_matrix(corpus, lang, bounds)
        valid = rel >= 0
        with timer("score"):
            counts, rel_scores, tied = segment_counts(q_emb[lang], union, rel, list(starts), backend=backend_used,
                                                      chunk_size=chunk_size, block_mib=block_mib, return_ties=True)
        with timer("metric"):
            ids = np.array([qid_index.setdefault(q.qid, len(qid_index)) for q in qs], dtype=np.int32)
            # one relevant item per pool: non-relevant above / tied with it in that pool
            for pj in range(n_l):
                ok = valid[:, pj]
                setting = "mono" if pj == li else "cross"
                left_out[setting] += int((~ok).sum())
                t = tied[ok, pj, pj][:, None]
                _count_ties(tie_counts[setting], t, np.ones_like(t, dtype=bool))
                _append(rows, ids[ok], li, pj, counts[ok, pj, pj][:, None], t, rel_scores[ok, pj][:, None],
                        np.ones((int(ok.sum()), 1), dtype=bool), ties)
            nonrel = counts.sum(axis=1, dtype=np.int64)
            nt = tied.sum(axis=1, dtype=np.int64)
            ok = valid.any(axis=1)
            left_out["multi"] += int((~ok).sum())
            n_rel_multi.append(valid.sum(axis=1)[ok])
            _count_ties(tie_counts["multi"], nt[ok], valid[ok])
            _append(rows, ids[ok], li, n_l, nonrel[ok], nt[ok], rel_scores[ok], valid[ok], ties)
        if progress:
            progress("score", li + 1, n_l)
    with timer("metric"):
        qid_names = list(qid_index)
        per_query = {k: np.concatenate(v) if v else np.zeros(0) for k, v in rows.items()}
        per_query["qid_names"] = np.array(qid_names)
        per_query["langs"] = np.array(langs)
        summary, pairs, per_language, n_cells = summarise(per_query, langs)
    nrm = np.concatenate(n_rel_multi) if n_rel_multi else np.zeros(0, int)
    counts_out = {
        "n_languages": n_l,
        "n_queries": int(sum(len(corpus.questions[lang]) for lang in langs)),
        "n_question_ids": len(qid_names),
        "n_candidates": int(len(union)),
        "candidates_per_language": dict(zip(langs, map(int, sizes))),
        "queries_per_language": {lang: len(corpus.questions[lang]) for lang in langs},
        "n_mono_settings": n_cells["mono"],
        "n_cross_pairs": n_cells["cross"],
        "n_multi_settings": n_cells["multi"],
        "relevant_per_query": {"min": int(nrm.min()) if len(nrm) else 0, "max": int(nrm.max()) if len(nrm) else 0,
                               "mean": float(nrm.mean()) if len(nrm) else 0.0},
        "left_out": left_out,
        "left_out_note": "(query, pool) combinations with no relevant copy in the pool, excluded from its averages",
        "rows_per_query_file": int(len(per_query["ap"])),
        "ties": tie_counts,
        "ties_note": "per setting: relevant items with at least one non-relevant candidate of exactly equal score, "
                     "the sum of those tied candidates, and the (query, pool) rows with any such tie; a metric can "
                     "differ between --ties modes only on these rows",
        "renormalised_embeddings": {"query": q_fixed, "candidate": c_fixed},
    }
    spread = score_spread(np.concatenate([q_emb[lang] for lang in langs]) if langs else np.zeros((0, 1)), union)
    if spread["near_collapse"]:
        log.warning("near-collapsed model: median per-query score spread %.2e < %.0e (every score almost the "
                    "same); its figures are close to chance", spread["score_spread"], spread["collapse_threshold"])
    return EvalResult(
        dataset=corpus.name, checksum=corpus.checksum, languages=langs, summary=summary, pairs=pairs,
        per_language=per_language, counts=counts_out, per_query=per_query,
        settings={"backend": backend_used, "chunk_size": chunk_size, "block_mib": block_mib,
                  "queries_per_block": block_queries(len(union), backend_used, chunk_size, block_mib),
                  "ties": ties},
        timings={"score_s": timer.seconds.get("score", 0.0), "metric_s": timer.seconds.get("metric", 0.0)},
        tie_rule=M.TIE_RULES[ties], health=spread,
    )


def _count_ties(acc: dict[str, int], tied: np.ndarray, valid: np.ndarray) -> None:
    t = np.where(valid, tied, 0)
    acc["relevant_items_tied"] += int((t > 0).sum())
    acc["tied_candidates"] += int(t.sum())
    acc["queries_with_ties"] += int((t > 0).any(axis=1).sum())


def _append(rows: dict[str, list[np.ndarray]], ids: np.ndarray, qlang: int, pool: int, above: np.ndarray,
            tied: np.ndarray, rel_scores: np.ndarray, valid: np.ndarray, ties: str) -> None:
    n = len(ids)
    m, first = M.tie_metrics(above, tied, rel_scores, valid, ties)
    rows["qid"].append(ids.astype(np.int32))
    rows["qlang"].append(np.full(n, qlang, dtype=np.int16))
    rows["pool"].append(np.full(n, pool, dtype=np.int16))  # pool == len(langs) means the Multi pool
    rows["n_relevant"].append(valid.sum(axis=1).astype(np.int16))
    rows["first_rank"].append(first.astype(np.int32))
    for k in METRICS:
        rows[k].append(m[k].astype(np.float64))


def cell_means(per_query: dict[str, np.ndarray], n_langs: int, metric: str) -> np.ndarray:
    """(query lang, pool) mean of `metric` over the rows evaluated there; pool index n_langs = Multi. NaN: no rows."""
    cell = per_query["qlang"].astype(np.int64) * (n_langs + 1) + per_query["pool"].astype(np.int64)
    v = per_query[metric]
    ok = ~np.isnan(v)
    size = n_langs * (n_langs + 1)
    sums = np.bincount(cell[ok], weights=v[ok], minlength=size)
    cnt = np.bincount(cell[ok], minlength=size)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(cnt > 0, sums / np.maximum(cnt, 1), np.nan).reshape(n_langs, n_langs + 1)


def macro_from_cells(cells: np.ndarray) -> dict[str, float]:
    """Mono = mean of the diagonal, Cross = mean of the off-diagonal ordered pairs, Multi = mean of the Multi column
    (cells without evaluated queries are skipped)."""
    n = cells.shape[0]
    square = cells[:, :n]
    off = ~np.eye(n, dtype=bool)
    return {"mono": _nanmean(np.diag(square)), "cross": _nanmean(square[off]), "multi": _nanmean(cells[:, n])}


def summarise(per_query: dict[str, np.ndarray], langs: list[str]):
    """Macro averages, pair matrices and per-language rows from per-query rows (also used after resampling)."""
    n = len(langs)
    summary: dict[str, dict[str, float]] = {"mono": {}, "cross": {}, "multi": {}}
    pairs: dict[str, np.ndarray] = {}
    cells_by_metric = {}
    for metric in METRICS:
        cells = cell_means(per_query, n, metric)
        cells_by_metric[metric] = cells
        macro = macro_from_cells(cells)
        key = "map" if metric == "ap" else ("map20" if metric == "ap20" else metric)
        if metric == "rank_distance":
            summary["multi"]["bias"] = macro["multi"]
            continue
        for setting in summary:
            summary[setting][key] = macro[setting]
        pairs[key] = cells[:, :n]
    pairs["multi_map"] = cells_by_metric["ap"][:, n]
    ap = cells_by_metric["ap"]
    per_language = {}
    for i, lang in enumerate(langs):
        others = [j for j in range(n) if j != i]
        per_language[lang] = {
            "mono_map": float(ap[i, i]),
            "cross_map": _nanmean(ap[i, others]) if others else float("nan"),
            "cross_map_as_pool": _nanmean(ap[others, i]) if others else float("nan"),
            "multi_map": float(ap[i, n]),
            "mono_r1": float(cells_by_metric["r1"][i, i]),
            "multi_r10": float(cells_by_metric["r10"][i, n]),
            "bias": float(cells_by_metric["rank_distance"][i, n]),
        }
    sq = ~np.isnan(ap[:, :n])
    n_cells = {"mono": int(np.diag(sq).sum()), "cross": int((sq & ~np.eye(n, dtype=bool)).sum()),
               "multi": int((~np.isnan(ap[:, n])).sum())}
    return summary, pairs, per_language, n_cells


# ---- BEIR-style (single language) -----------------------------------------------------------------------------------


def evaluate_beir(
    model: Any,
    corpus: QACorpus,
    *,
    context: bool = False,
    batch_size: int = 64,
    cache_dir: Path | str | None = None,
    backend: str = "auto",
    model_name: str | None = None,
    chunk_size: int = DEFAULT_CHUNK,
    progress: Progress | None = None,
    ties: str = "expected",
    encoder: str = "torch",
    precision: str = "fp32",
    devices: list[str] | None = None,
) -> BeirResult:
    """Each language on its own: its questions against its own candidate pool (for TyDi GoldP, paragraphs).
    Reports nDCG@10, Recall@100, MRR@10 per language and their macro mean (the domain-shift check)."""
    timer = Timer()
    identity = model_identity(model, model_name)
    cache = EmbeddingCache(cache_dir) if cache_dir else None
    with timer("encode"):
        q_emb, c_emb = encode_corpus(model, corpus, context=context, batch_size=batch_size, cache=cache,
                                     identity=identity, progress=progress, encoder=encoder, cache_dir=cache_dir,
                                     precision=precision, devices=devices)
    res = evaluate_beir_embeddings(corpus, q_emb, c_emb, backend=backend, chunk_size=chunk_size, ties=ties)
    res.timings = {"encode_s": timer.seconds["encode"], **res.timings}
    res.model = identity
    res.settings.update(run_settings(model, context, batch_size, cache, cache_dir))
    res.settings.update({"encoder": encoder, "precision": precision, "devices": devices})
    return res


def evaluate_beir_embeddings(
    corpus: QACorpus, q_emb: dict[str, np.ndarray], c_emb: dict[str, np.ndarray], *, backend: str = "auto",
    chunk_size: int = DEFAULT_CHUNK, block_mib: float = DEFAULT_BLOCK_MIB, ties: str = "expected",
) -> BeirResult:
    from hybridbatch.evaluation.sanity import check_and_normalise

    if ties not in M.TIE_MODES:
        from hybridbatch.errors import UsageError

        raise UsageError(f"ties must be one of {', '.join(M.TIE_MODES)}, not {ties!r}")
    q_emb, _ = check_and_normalise(q_emb, {lang: len(corpus.questions[lang]) for lang in corpus.languages},
                                   what="query")
    c_emb, _ = check_and_normalise(c_emb, {lang: len(corpus.candidates[lang]) for lang in corpus.languages},
                                   what="candidate")
    timer = Timer()
    per_language: dict[str, dict[str, float]] = {}
    rows: dict[str, list[np.ndarray]] = {"qid": [], "qlang": [], "rank": [], "ndcg10": [], "recall100": [],
                                         "mrr10": []}
    qid_names: list[str] = []
    for li, lang in enumerate(corpus.languages):
        qs = corpus.questions[lang]
        pool = np.asarray(c_emb[lang], dtype=np.float32)
        if not qs or not len(pool):
            continue
        rel = np.array([[q.answer] for q in qs], dtype=np.int64)
        with timer("score"):
            counts, rs, tied = segment_counts(q_emb[lang], pool, rel, [0, len(pool)],
                                              backend=choose_backend(backend, len(pool)), chunk_size=chunk_size,
                                              block_mib=block_mib, return_ties=True)
        with timer("metric"):
            above, t = counts[:, 0, :].astype(np.int64), tied[:, 0, :].astype(np.int64)
            ranks = above + 1
            ok = np.ones(above.shape, dtype=bool)
            tm, _ = M.tie_metrics(above, t, rs, ok, ties)
            m = {"ndcg10": tm["ndcg10"], "recall100": M.tie_recall_at(above, t, 100, ties), "mrr10": tm["mrr10"]}
            per_language[lang] = {k: float(np.mean(v)) for k, v in m.items()} | {
                "n_queries": len(qs), "n_candidates": len(pool)}
            rows["qid"].append(np.arange(len(qid_names), len(qid_names) + len(qs), dtype=np.int32))
            qid_names.extend(q.qid for q in qs)
            rows["qlang"].append(np.full(len(qs), li, dtype=np.int16))
            rows["rank"].append(ranks[:, 0].astype(np.int32))
            for k, v in m.items():
                rows[k].append(v)
    summary = {k: _nanmean(np.array([v[k] for v in per_language.values()])) for k in ("ndcg10", "recall100", "mrr10")}
    per_query = {k: np.concatenate(v) if v else np.zeros(0) for k, v in rows.items()}
    per_query["qid_names"] = np.array(qid_names)
    per_query["langs"] = np.array(corpus.languages)
    return BeirResult(
        dataset=corpus.name, checksum=corpus.checksum, languages=list(per_language), per_language=per_language,
        summary=summary,
        counts={"n_queries": sum(len(corpus.questions[lang]) for lang in corpus.languages),
                "n_candidates": sum(len(corpus.candidates[lang]) for lang in corpus.languages)},
        per_query=per_query, settings={"backend": backend, "chunk_size": chunk_size, "block_mib": block_mib,
                                       "ties": ties}, tie_rule=M.TIE_RULES[ties],
        timings={"score_s": timer.seconds.get("score", 0.0), "metric_s": timer.seconds.get("metric", 0.0)},
    )


# ---- output ----------------------------------------------------------------------------------------------------------


def load_per_query(path: Path | str) -> dict[str, np.ndarray]:
    """per_query.npz with the string columns restored: qid, qlang, pool ('multi' or a language) as strings."""
    with np.load(path, allow_pickle=False) as z:
        d = {k: z[k] for k in z.files}
    langs = list(d["langs"])
    d["qid_str"] = d["qid_names"][d["qid"]] if len(d["qid"]) else np.array([], dtype=str)
    d["qlang_str"] = np.array(langs)[d["qlang"]] if len(d["qlang"]) else np.array([], dtype=str)
    if "pool" in d:
        names = np.array([*langs, MULTI])
        d["pool_str"] = names[d["pool"]] if len(d["pool"]) else np.array([], dtype=str)
    return d


EVAL_FILES = ("per_query.npz", "pairs.png", "eval.md", "eval.json")


def write_eval(result: EvalResult | BeirResult, out_dir: Path | str) -> dict[str, Path]:
    """eval.json (every number + provenance), eval.md (paper-shaped table), pairs.png (LAReQA only) and
    per_query.npz (for `hybridbatch compare`), each written atomically (`provenance.atomic_file`).

    eval.json is the commit record: a previous eval.json is removed first and the new one written last (with the
    sha256 of per_query.npz, which `stats.load_run` checks), so a run killed while writing leaves no eval.json that
    could be paired with other files; temps left by a killed earlier writer are removed."""
    from hybridbatch.provenance import check_out_dir, sha256_files
    from hybridbatch.report import tables as report

    out = check_out_dir(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    sweep_temps(out, EVAL_FILES)
    t0 = time.perf_counter()
    (out / "eval.json").unlink(missing_ok=True)
    paths = {"per_query": out / "per_query.npz"}
    with atomic_file(paths["per_query"]) as f:
        np.savez_compressed(f, **result.per_query)
    body = result.to_json()
    body["per_query_file"] = "per_query.npz"
    body["per_query_sha256"] = sha256_files([paths["per_query"]])
    body["provenance"] = provenance(
        model=result.model.get("name"), model_weights_sha256=result.model.get("weights_sha256"),
        data={"name": result.dataset, "checksum": result.checksum}, settings=result.settings,
        timings=result.timings,
    )
    if isinstance(result, EvalResult):
        paths["pairs_png"] = report.plot_pairs(result.languages, result.pairs["map"], out / "pairs.png",
                                               title=f"{result.dataset}: mAP, query language x pool language")
        md = report.lareqa_markdown(body)
        health = body.get("health") or {}
        if health.get("near_collapse"):
            md = (f"> **Warning: near-collapsed model.** The median per-query spread of scores is "
                  f"{health['score_spread']:.2e} (< {health['collapse_threshold']:.0e}): nearly every candidate "
                  f"scores the same, so these figures are close to chance level.\n\n") + md
    else:
        md = report.beir_markdown(body)
    paths["eval_md"] = _write_bytes(out / "eval.md", md.encode("utf-8"))
    body["timings"]["write_s"] = time.perf_counter() - t0
    paths["eval_json"] = _write_bytes(out / "eval.json", (json.dumps(
        jsonable(body), indent=2, ensure_ascii=False, default=str) + "\n").encode("utf-8"))
    return paths


def _write_bytes(path: Path, data: bytes) -> Path:
    with atomic_file(path) as f:
        f.write(data)
    return path
