"""The LAReQA evaluation protocol: Mono / Cross / Multi mAP, R@k, nDCG@10 and language bias (the rank distance).
Protocol choices are documented in docs/EVALUATION.md; the result type and its files are `results`.

One scoring pass does everything: each query block is scored once against the union of all language pools, and per
(query, pool segment, relevant item) we count the non-relevant candidates strictly above the relevant item
(`retrieval.segment_counts`). Mono and Cross ranks are read off the segment of that language, Multi ranks off the sum
over segments, so the 11 + 110 + 11 settings of XQuAD-R cost one pass instead of 132. The same score block also
yields each query's top-10 language counts (the language-preference columns): a block is scored once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hybridbatch.data.records import QACorpus
from hybridbatch.evaluation.embedding_checks import check_and_normalise, score_spread
from hybridbatch.evaluation.encode import Embeddings
from hybridbatch.evaluation.evaluate import evaluate_model
from hybridbatch.evaluation.metrics import TIE_RULES, nanmean, ranks_from_counts, tie_metrics
from hybridbatch.evaluation.options import EvalOptions
from hybridbatch.evaluation.preference import (
    PREFERENCE_METRICS,
    language_spread,
    multi_pool_preference,
    ndcg_by_language,
    own_language_share,
)
from hybridbatch.evaluation.results import METRICS, MULTI_ONLY, PER_QUERY_FIELDS, EvalResult
from hybridbatch.evaluation.retrieval import block_queries, choose_backend, segment_counts
from hybridbatch.evaluation.worst_rank import worst_copy, worst_pool_table
from hybridbatch.provenance import Progress, Timer

_log = logging.getLogger(__name__)

SETTINGS = ("mono", "cross", "multi")


def evaluate_lareqa(model: Any, corpus: QACorpus, options: EvalOptions | None = None, *,
                    model_name: str | None = None, progress: Progress | None = None, **settings: Any) -> EvalResult:
    """Encode every question and candidate of `corpus` with `model` (query / passage prefixes from the model) and
    score the LAReQA protocol. `options` (or the same names as keywords: `context=True` encodes candidates as
    sentence + paragraph, `ties`, `encoder`, `backend`, ...) are `EvalOptions`."""
    options = EvalOptions.of(options, **settings)
    return evaluate_model(model, corpus, options, lambda q, c: evaluate_lareqa_embeddings(
        corpus, q, c, options, progress=progress), model_name=model_name, progress=progress)


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


@dataclass
class _Rows:
    """Per-query rows as they are scored, language by language, and what was left out or tied."""

    ties: str
    rows: dict[str, list[np.ndarray]] = field(default_factory=lambda: {k: [] for k in PER_QUERY_FIELDS})
    qid_index: dict[str, int] = field(default_factory=dict)
    left_out: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SETTINGS, 0))
    tie_counts: dict[str, dict[str, int]] = field(default_factory=lambda: {s: {
        "relevant_items_tied": 0, "tied_candidates": 0, "queries_with_ties": 0} for s in SETTINGS})
    n_rel_multi: list[np.ndarray] = field(default_factory=list)
    strat: list[tuple[int, np.ndarray]] = field(default_factory=list)  # (query language, stratified nDCG@10 rows)
    own_copy: list[np.ndarray] = field(default_factory=list)  # own_first's no-preference rate, per Multi row

    def add_language(self, li: int, qids: list[str], n_l: int, valid: np.ndarray, counts: np.ndarray,
                     rel_scores: np.ndarray, tied: np.ndarray, own_top: np.ndarray) -> None:
        """Query language `li`: one relevant item per single-language pool (non-relevant above / tied with it in
        that pool), then every copy in the Multi pool (counts summed over the pools), with its language-preference
        columns (`own_top`: each query's own-language share of its Multi top 10)."""
        ids = np.array([self.qid_index.setdefault(q, len(self.qid_index)) for q in qids], dtype=np.int32)
        for pj in range(n_l):
            ok = valid[:, pj]
            setting = "mono" if pj == li else "cross"
            self.left_out[setting] += int((~ok).sum())
            t = tied[ok, pj, pj][:, None]
            self._add(setting, ids[ok], li, pj, counts[ok, pj, pj][:, None], t, rel_scores[ok, pj][:, None],
                      np.ones((int(ok.sum()), 1), dtype=bool))
        nonrel = counts.sum(axis=1, dtype=np.int64)
        nt = tied.sum(axis=1, dtype=np.int64)
        ok = valid.any(axis=1)
        self.left_out["multi"] += int((~ok).sum())
        self.n_rel_multi.append(valid.sum(axis=1)[ok])
        ranks = ranks_from_counts(nonrel[ok], rel_scores[ok], valid[ok])  # strict rule (docs/EVALUATION.md)
        pref, strat, own_copy = multi_pool_preference(ranks, li, own_top[ok])
        self.strat.append((li, strat))
        self.own_copy.append(own_copy)
        pref["worst_lang"] = worst_copy(ranks)  # column j of the Multi ranks is pool language j
        self._add("multi", ids[ok], li, n_l, nonrel[ok], nt[ok], rel_scores[ok], valid[ok], pref)

    def _add(self, setting: str, ids: np.ndarray, qlang: int, pool: int, above: np.ndarray, tied: np.ndarray,
             rel_scores: np.ndarray, valid: np.ndarray, preference: dict[str, np.ndarray] | None = None) -> None:
        acc, t = self.tie_counts[setting], np.where(valid, tied, 0)
        acc["relevant_items_tied"] += int((t > 0).sum())
        acc["tied_candidates"] += int(t.sum())
        acc["queries_with_ties"] += int((t > 0).any(axis=1).sum())
        n = len(ids)
        m, first = tie_metrics(above, tied, rel_scores, valid, self.ties)
        rows = self.rows
        rows["qid"].append(ids.astype(np.int32))
        rows["qlang"].append(np.full(n, qlang, dtype=np.int16))
        rows["pool"].append(np.full(n, pool, dtype=np.int16))  # pool == len(langs) means the Multi pool
        rows["n_relevant"].append(valid.sum(axis=1).astype(np.int16))
        rows["first_rank"].append(first.astype(np.int32))
        for k in METRICS:
            rows[k].append(m[k].astype(np.float64))
        for k in PREFERENCE_METRICS:  # Multi rows only; NaN elsewhere
            rows[k].append(preference[k] if preference else np.full(n, np.nan))
        rows["worst_lang"].append((preference["worst_lang"] if preference else np.full(n, -1)).astype(np.int16))

    def preference_summary(self, n_l: int, own_top_expected: float) -> tuple[dict[str, float], np.ndarray]:
        """The Multi summary's no-preference expectations and stratified-nDCG spread, and the (query language x
        candidate language) mean stratified nDCG@10."""
        if self.strat:
            q = np.concatenate([np.full(len(s), li) for li, s in self.strat])
            matrix = ndcg_by_language(np.concatenate([s for _, s in self.strat]), q, n_l)
            first = nanmean(np.concatenate(self.own_copy))
        else:
            matrix, first = np.full((n_l, n_l), np.nan), float("nan")
        return {"own_top10_expected": own_top_expected, "own_first_expected": first,
                "ndcg_spread": nanmean(language_spread(matrix))}, matrix

    def per_query(self, langs: list[str]) -> dict[str, np.ndarray]:
        out = {k: np.concatenate(v) if v else np.zeros(0) for k, v in self.rows.items()}
        out["qid_names"] = np.array(list(self.qid_index))
        out["langs"] = np.array(langs)
        return out


def evaluate_lareqa_embeddings(corpus: QACorpus, q_emb: Embeddings, c_emb: Embeddings,
                               options: EvalOptions | None = None, *, progress: Progress | None = None,
                               **settings: Any) -> EvalResult:
    """The protocol on given embeddings; used by `evaluate_lareqa`, tests and the benchmark. Shapes are checked
    against the corpus, NaN / inf / zero-norm rows refused, rows not of unit norm normalised
    (`embedding_checks.check_and_normalise`). `options.ties` picks the tie rule (`metrics.TIE_MODES`; tie counts go
    to counts.ties). Working memory: one block of `retrieval.block_queries` queries x the union pool (<= `block_mib`
    MiB) on top of the embeddings (plus their concatenation) and the per-query outputs (docs/EVALUATION.md,
    "Resource bounds")."""
    options = EvalOptions.of(options, **settings)
    timer = Timer()
    langs = corpus.languages
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
    backend = choose_backend(options.backend, len(union))
    cand_lang = np.repeat(np.arange(len(langs)), sizes)
    acc = _Rows(options.ties)
    for li, lang in enumerate(langs):
        qs = corpus.questions[lang]
        if not qs:
            continue
        rel = relevant_matrix(corpus, lang, bounds)
        with timer("score"):
            counts, rel_scores, tied, top = segment_counts(
                q_emb[lang], union, rel, list(starts), backend=backend, chunk_size=options.chunk_size,
                block_mib=options.block_mib, return_ties=True, topk=(cand_lang, len(langs), min(10, len(union))))
        with timer("metric"):
            acc.add_language(li, [q.qid for q in qs], len(langs), rel >= 0, counts, rel_scores, tied,
                             own_language_share(top, np.full(len(qs), li)))
        if progress:
            progress("score", li + 1, len(langs))
    with timer("metric"):
        per_query = acc.per_query(langs)
        summary, pairs, per_language, n_cells = summarise(per_query, langs)
        # a language-blind top 10 holds query language X as often as the pool does: macro over query languages
        pool_share = nanmean(np.array([sizes[i] / len(union) for i, lang in enumerate(langs)
                                       if corpus.questions[lang]]))
        extra, pairs["strat_ndcg10"] = acc.preference_summary(len(langs), pool_share)
        summary["multi"] |= extra
    spread = score_spread(np.concatenate([q_emb[lang] for lang in langs]) if langs else np.zeros((0, 1)), union)
    if spread["near_collapse"]:
        _log.warning("near-collapsed model: median per-query score spread %.2e < %.0e (every score almost the "
                    "same); its figures are close to chance", spread["score_spread"], spread["collapse_threshold"])
    return EvalResult(
        dataset=corpus.name, checksum=corpus.checksum, languages=langs, summary=summary, pairs=pairs,
        per_language=per_language, counts=_counts(corpus, acc, n_cells, per_query, len(union), q_fixed, c_fixed),
        per_query=per_query,
        settings={"backend": backend, "chunk_size": options.chunk_size, "block_mib": options.block_mib,
                  "queries_per_block": block_queries(len(union), backend, options.chunk_size, options.block_mib),
                  "ties": options.ties},
        timings={"score_s": timer.seconds.get("score", 0.0), "metric_s": timer.seconds.get("metric", 0.0)},
        tie_rule=TIE_RULES[options.ties], health={**spread, "data_warnings": [str(w) for w in corpus.warnings]},
    )


def _counts(corpus: QACorpus, acc: _Rows, n_cells: dict[str, int], per_query: dict[str, np.ndarray],
            n_candidates: int, q_fixed: int, c_fixed: int) -> dict[str, Any]:
    """EvalResult.counts: sizes, settings evaluated, what was left out, ties and renormalised rows."""
    langs = corpus.languages
    nrm = np.concatenate(acc.n_rel_multi) if acc.n_rel_multi else np.zeros(0, int)
    return {
        "n_languages": len(langs),
        "n_queries": int(sum(len(corpus.questions[lang]) for lang in langs)),
        "n_question_ids": len(acc.qid_index),
        "n_candidates": int(n_candidates),
        "candidates_per_language": {lang: len(corpus.candidates[lang]) for lang in langs},
        "queries_per_language": {lang: len(corpus.questions[lang]) for lang in langs},
        "n_mono_settings": n_cells["mono"],
        "n_cross_pairs": n_cells["cross"],
        "n_multi_settings": n_cells["multi"],
        "relevant_per_query": {"min": int(nrm.min()) if len(nrm) else 0, "max": int(nrm.max()) if len(nrm) else 0,
                               "mean": float(nrm.mean()) if len(nrm) else 0.0},
        "left_out": acc.left_out,
        "left_out_note": "(query, pool) combinations with no relevant copy in the pool, excluded from its averages",
        "rows_per_query_file": int(len(per_query["ap"])),
        "ties": acc.tie_counts,
        "ties_note": "per setting: relevant items with at least one non-relevant candidate of exactly equal score, "
                     "the sum of those tied candidates, and the (query, pool) rows with any such tie; a metric can "
                     "differ between --ties modes only on these rows",
        "renormalised_embeddings": {"query": q_fixed, "candidate": c_fixed},
    }


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
    return {"mono": nanmean(np.diag(square)), "cross": nanmean(square[off]), "multi": nanmean(cells[:, n])}


def _worst_pool(per_query: dict[str, np.ndarray], langs: list[str], pairs: dict[str, np.ndarray],
                per_language: dict[str, dict[str, float]]) -> None:
    """Where the worst rank comes from (`worst_rank.worst_pool_table` on the Multi rows): pairs['worst_pool'] and,
    per pool language, its share of worst copies and their mean Max@R."""
    multi = per_query["pool"] == len(langs)
    share, pool_share, mean_worst = worst_pool_table(per_query["qlang"][multi], per_query["worst_lang"][multi],
                                                     per_query["max_rank"][multi], len(langs))
    pairs["worst_pool"] = share
    for p, lang in enumerate(langs):
        per_language[lang]["worst_pool_share"] = float(pool_share[p])
        per_language[lang]["mean_worst_rank"] = float(mean_worst[p])


def summarise(per_query: dict[str, np.ndarray], langs: list[str]):
    """Macro averages, pair matrices and per-language rows from per-query rows (also used after resampling)."""
    n = len(langs)
    summary: dict[str, dict[str, float]] = {"mono": {}, "cross": {}, "multi": {}}
    pairs: dict[str, np.ndarray] = {}
    cells_by_metric = {}
    for metric in (m for m in METRICS if m in per_query):  # per_query files written before Max@R lack it
        cells = cell_means(per_query, n, metric)
        cells_by_metric[metric] = cells
        macro = macro_from_cells(cells)
        key = {"ap": "map", "ap20": "map20", "rank_distance": "bias"}.get(metric, metric)
        if metric in MULTI_ONLY:
            summary["multi"][key] = macro["multi"]
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
            "cross_map": nanmean(ap[i, others]) if others else float("nan"),
            "cross_map_as_pool": nanmean(ap[others, i]) if others else float("nan"),
            "multi_map": float(ap[i, n]),
            "mono_r1": float(cells_by_metric["r1"][i, i]),
            "multi_r10": float(cells_by_metric["r10"][i, n]),
            "bias": float(cells_by_metric["rank_distance"][i, n]),
        }
    for metric in (*PREFERENCE_METRICS, *MULTI_ONLY[1:]):  # Multi rows only (older per_query files have none)
        if metric in per_query:
            cells = cells_by_metric[metric] if metric in cells_by_metric else cell_means(per_query, n, metric)
            summary["multi"][metric] = macro_from_cells(cells)["multi"]
            for i, lang in enumerate(langs):
                per_language[lang][metric] = float(cells[i, n])
    if "worst_lang" in per_query and "max_rank" in per_query:
        _worst_pool(per_query, langs, pairs, per_language)
    sq = ~np.isnan(ap[:, :n])
    n_cells = {"mono": int(np.diag(sq).sum()), "cross": int((sq & ~np.eye(n, dtype=bool)).sum()),
               "multi": int((~np.isnan(ap[:, n])).sum())}
    return summary, pairs, per_language, n_cells
