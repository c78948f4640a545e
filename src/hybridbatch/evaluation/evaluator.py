"""`LAReQAEvaluator`: the LAReQA protocol as a sentence-transformers evaluator (`evaluator=` of
`SentenceTransformerTrainer`, `load_best_model_at_end`), scored by the same `evaluate_lareqa` as `hybridbatch eval`.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable, Sequence
from typing import Any

from sentence_transformers.sentence_transformer.evaluation import SentenceEvaluator

from hybridbatch.data.records import Candidate, PairSet, QACorpus, Question
from hybridbatch.errors import UsageError
from hybridbatch.evaluation.lareqa import evaluate_lareqa
from hybridbatch.evaluation.options import EvalOptions
from hybridbatch.evaluation.preference import PREFERENCE_METRICS
from hybridbatch.sampling.dataset import read_long

#: metric name -> (setting, key in EvalResult.summary)
_METRICS = {
    "mono_map": ("mono", "map"), "cross_map": ("cross", "map"), "multi_map": ("multi", "map"),
    "mono_r1": ("mono", "r1"), "cross_r1": ("cross", "r1"), "multi_r10": ("multi", "r10"),
    "multi_bias": ("multi", "bias"),
    # language preference in the Multi pool (evaluation.preference): lower = less lean to the query's own language
    "multi_own_top10": ("multi", "own_top10"), "multi_own_first": ("multi", "own_first"),
    # the worst-ranked copy (evaluation.worst_rank): Max@R lower is better, Complete@10 higher
    "multi_max_rank": ("multi", "max_rank"), "multi_complete10": ("multi", "complete10"),
}


class LAReQAEvaluator(SentenceEvaluator):
    """Mono / Cross / Multi mAP, R@1 / R@10 and the Multi language bias of a model on a parallel QA corpus.

    Build it from a `QACorpus` (the project's readers), from plain lists (`from_lists`), from the long dataset
    `pairs_from_long` takes (`from_long`) or from training pairs (`from_pairs`: the held-out ids' answers in every
    language are the pool). Every evaluation setting is an `EvalOptions` field (`options=` or keywords), as in
    `evaluate_lareqa` and `hybridbatch eval`. `primary_metric` (default 'multi_map') is what
    `load_best_model_at_end` compares; 'multi_bias' and the own-language ones are lower-is-better."""

    def __init__(self, corpus: QACorpus, options: EvalOptions | None = None, *, name: str = "lareqa",
                 primary_metric: str = "multi_map", write_csv: bool = True, **settings: Any) -> None:
        """`options` (or its fields as keywords: `context`, `batch_size`, `backend`, `ties`, `encoder`,
        `precision`, ...) are the `EvalOptions` every evaluation takes, with the same defaults."""
        super().__init__()
        if primary_metric not in _METRICS:
            raise UsageError(f"primary_metric must be one of {', '.join(_METRICS)}, got {primary_metric!r}")
        if not any(corpus.questions.values()):
            raise UsageError(f"{corpus.name}: no queries to evaluate")
        self.corpus = corpus
        self.options = EvalOptions.of(options, **settings)
        self.name = name
        self.primary_metric = primary_metric
        self.greater_is_better = _METRICS[primary_metric][1] not in ("bias", "max_rank", *PREFERENCE_METRICS)
        self.write_csv = write_csv
        self.csv_file = f"{name}_results.csv" if name else "lareqa_results.csv"
        self.last_result: Any = None

    @classmethod
    def from_lists(cls, query_ids: Sequence[str], query_langs: Sequence[str], queries: Sequence[str],
                   candidate_langs: Sequence[str], candidates: Sequence[str], answers: Sequence[int],
                   name: str = "lareqa", **kwargs: Any) -> LAReQAEvaluator:
        """Query i (id `query_ids[i]`, language `query_langs[i]`) is answered by candidate `answers[i]`, which must
        be in the query's language. Relevant to a query are the answers of its id in every language (LAReQA); the
        pool of a language is its candidates."""
        n = len(query_ids)
        if not (len(query_langs) == len(queries) == len(answers) == n):
            raise UsageError("query_ids, query_langs, queries and answers must have the same length")
        if len(candidate_langs) != len(candidates):
            raise UsageError("candidate_langs and candidates must have the same length")
        pools: dict[str, list[Candidate]] = {}
        where: list[tuple[str, int]] = []
        for i, (lang, text) in enumerate(zip(candidate_langs, candidates, strict=True)):
            pool = pools.setdefault(lang, [])
            where.append((lang, len(pool)))
            pool.append(Candidate(lang, text, text, f"c{i}", ""))
        qs: dict[str, list[Question]] = {lang: [] for lang in pools}
        for qid, lang, text, a in zip(query_ids, query_langs, queries, answers, strict=True):
            if not 0 <= int(a) < len(where):
                raise UsageError(f"query {qid!r} ({lang}): answer {a} is not a candidate index")
            clang, pos = where[int(a)]
            if clang != lang:
                raise UsageError(f"query {qid!r} ({lang}): its answer is a {clang} candidate; a query's answer must "
                                 "be in the query's language (copies in other languages are found by the id)")
            qs[lang].append(Question(str(qid), lang, text, pos, ""))
        return cls(QACorpus(name, qs, pools), name=name, **kwargs)

    @classmethod
    def from_pairs(cls, pairsets: PairSet | Sequence[PairSet], name: str = "lareqa", **kwargs: Any
                   ) -> LAReQAEvaluator:
        """Queries: every (id, language) item; pool of a language: the distinct positives of that language."""
        if isinstance(pairsets, PairSet):
            pairsets = [pairsets]
        several = len(pairsets) > 1
        items = ((f"{ps.name}\t{qid}" if several else qid, lang, item.query, item.positive)
                 for ps in pairsets for qid, by_lang in ps.items.items() for lang, item in sorted(by_lang.items()))
        return cls._from_items(items, name, **kwargs)

    @classmethod
    def from_long(cls, long: Any, name: str = "lareqa", *, id_column: str = "id", lang_column: str = "lang",
                  query_column: str = "query", positive_column: str = "positive", **kwargs: Any) -> LAReQAEvaluator:
        """The long dataset `pairs_from_long` takes (one row per id and language, the same column names, checked
        the same way): queries are its rows, the pool of a language its distinct positives, and relevant to a
        query the positives of its id in every language. Rows of several `source`s keep their ids apart."""
        data, by_id = read_long(long, id_column, lang_column, query_column, positive_column)
        several = len({src for src, _ in by_id}) > 1
        items = ((f"{src}\t{qid}" if several else qid, lang, data[query_column][i], data[positive_column][i])
                 for (src, qid), langs in by_id.items() for lang, i in sorted(langs.items()))
        return cls._from_items(items, name, **kwargs)

    @classmethod
    def _from_items(cls, items: Iterable[tuple[str, str, str, str]], name: str, **kwargs: Any) -> LAReQAEvaluator:
        """(id, language, query, positive) items -> `from_lists`, each distinct (language, positive) one candidate."""
        ids, qlangs, queries, clangs, cands, answers = [], [], [], [], [], []
        pos: dict[tuple[str, str], int] = {}
        for qid, lang, query, positive in items:
            key = (lang, positive)
            if key not in pos:
                pos[key] = len(cands)
                clangs.append(lang)
                cands.append(positive)
            ids.append(qid)
            qlangs.append(lang)
            queries.append(query)
            answers.append(pos[key])
        return cls.from_lists(ids, qlangs, queries, clangs, cands, answers, name=name, **kwargs)

    def __call__(self, model: Any, output_path: str | None = None, epoch: float = -1, steps: int = -1,
                 *args: Any, **kwargs: Any) -> dict[str, float]:
        result = evaluate_lareqa(model, self.corpus, self.options)
        self.last_result = result
        metrics = {k: float(result.summary[s][m]) for k, (s, m) in _METRICS.items()}
        if output_path is not None and self.write_csv:
            os.makedirs(output_path, exist_ok=True)
            path = os.path.join(output_path, self.csv_file)
            new = not os.path.isfile(path)
            with open(path, "a", newline="", encoding="utf-8") as f:
                w = csv.writer(f)
                if new:
                    w.writerow(["epoch", "steps", *metrics])
                w.writerow([epoch, steps, *metrics.values()])
        metrics = self.prefix_name_to_metrics(metrics, self.name)
        self.store_metrics_in_model_card_data(model, metrics, epoch, steps)
        return metrics

    def get_config_dict(self) -> dict[str, Any]:
        return {"context": self.options.context, "primary_metric": self.primary_metric,
                "languages": self.corpus.languages,
                "queries": sum(len(v) for v in self.corpus.questions.values())}
