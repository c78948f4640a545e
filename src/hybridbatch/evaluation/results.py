"""What an evaluation produces and how it is stored: the result types (`EvalResult` for the LAReQA protocol,
`BeirResult` for single-language retrieval), their JSON, and the files of one run (`write_eval_numbers`,
`load_per_query`).

The Markdown and plot of a run are the report stage's (`report.evaluation.write_eval` writes every file, calling
`write_eval_numbers` with its documents): evaluation itself writes only numbers.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from hybridbatch.errors import UsageError
from hybridbatch.evaluation.metrics import TIE_RULES
from hybridbatch.evaluation.preference import PREFERENCE_METRICS
from hybridbatch.evaluation.worst_rank import WORST_METRICS
from hybridbatch.provenance import atomic_file, jsonable, provenance, sha256_files, sweep_temps
from hybridbatch.outputs import OutFolder, check_out_dir, check_out_folder

METRICS = ("ap", "ap20", "r1", "r10", "ndcg10", "mrr10", "rank_distance", *WORST_METRICS)
# the Multi-only per-query metrics: summary["multi"] and per_language, no pair matrix (rank_distance is 'bias')
MULTI_ONLY = ("rank_distance", *WORST_METRICS)
MULTI = "multi"
EVAL_FILES = ("per_query.npz", "pairs.png", "eval.md", "eval.json")
# `hybridbatch compare` writes them beside run B: stale once B changes
COMPARE_FILES = ("compare.json", "compare.md", "compare.png")
# What `eval` and `compare` find in an --out they may write into (`check_eval_folder`): an evaluation's files
EVAL_OUT = OutFolder("eval", "an evaluation", ", ".join(EVAL_FILES), (*EVAL_FILES, *COMPARE_FILES, "compare.*"))
COMPARE_OUT = replace(EVAL_OUT, command="compare", writes=", ".join(COMPARE_FILES))
# (eval.json body, output folder) -> the files written from it (report.evaluation: eval.md, pairs.png)
Documents = Callable[[dict[str, Any], Path], dict[str, Path]]


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
    tie_rule: str = TIE_RULES["expected"]
    kind: str = "lareqa"
    health: dict[str, Any] = field(default_factory=dict)  # embedding_checks.score_spread: near-collapse check

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
    tie_rule: str = TIE_RULES["expected"]
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
    "own_top10": "Multi pool: share of a query's top 10 in its own language (ties at the cut shared); "
                 "own_top10_expected is the share a language-blind top 10 has (the pool's share of that language)",
    "own_first": "Multi pool: 1 when the best-ranked relevant copy is the query's own-language one; own_first_expected "
                 "is its rate when the copies' order ignores language (1 / copies)",
    "own_gap": "Multi pool: language-stratified nDCG@10 of the own-language copy minus the mean over the other "
               "languages' copies (0: no lean); ndcg_spread: per query language, max - min over candidate languages "
               "of the mean stratified nDCG@10 (pairs.strat_ndcg10), averaged",
    "max_rank": "Max@R in the Multi pool: the worst rank of any relevant copy (how deep one reads to retrieve every "
                "copy); mean per query language, macro over query languages; lower is better",
    "complete10": "Complete@10 in the Multi pool: share of queries with every relevant copy in the top 10",
    "worst_pool": "pairs.worst_pool: per query language (row), the share of its Multi queries whose worst-ranked copy "
                  "is in each pool language (column); per_language[p].worst_pool_share its macro over query "
                  "languages and per_language[p].mean_worst_rank the mean Max@R of the queries whose worst copy is "
                  "in pool p",
    "partial_parallelism": "a query with no relevant copy in a pool is left out of that pool's averages "
                           "(counts.left_out)",
}

# worst_lang: pool language of the worst-ranked relevant copy on Multi rows (worst_rank.worst_copy), -1 elsewhere
PER_QUERY_FIELDS = ("qid", "qlang", "pool", "n_relevant", "first_rank", *METRICS, *PREFERENCE_METRICS,
                    "worst_lang")


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


def write_eval_numbers(result: EvalResult | BeirResult, out_dir: Path | str, *, documents: Documents | None = None
                  ) -> dict[str, Path]:
    """per_query.npz (for `hybridbatch compare`) and eval.json (every number + provenance), each written atomically
    (`provenance.atomic_file`); `documents` (the report stage's eval.md / pairs.png) are written between the two.

    eval.json is the commit record: a previous eval.json is removed first and the new one written last (with the
    sha256 of per_query.npz, which `analysis.significance.load_run` checks), so a run killed while writing leaves no
    eval.json that could be paired with other files; temps left by a killed earlier writer are removed."""
    out = check_out_dir(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    sweep_temps(out, EVAL_FILES)
    t0 = time.perf_counter()
    (out / "eval.json").unlink(missing_ok=True)
    for name in (*EVAL_FILES, *COMPARE_FILES):  # nothing of an earlier run stays beside this one
        (out / name).unlink(missing_ok=True)
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
    if documents is not None:
        paths |= documents(body, out)
    body["timings"]["write_s"] = time.perf_counter() - t0
    paths["eval_json"] = write_bytes(out / "eval.json", (json.dumps(
        jsonable(body), indent=2, ensure_ascii=False, default=str) + "\n").encode("utf-8"))
    return paths


def check_eval_out(out_dir: Path | str, *, model: str, dataset: str, checksum: str, overwrite: bool = False
                   ) -> Path:
    """Before any work: `out_dir` must be a writable folder, and an evaluation already in it must be of this model
    on this data (a re-run) unless `overwrite`; another model's or dataset's results are never replaced silently.
    Removes nothing (`write_eval_numbers` removes the old run's files once the new one is written)."""
    out = check_eval_folder(out_dir)
    old = out / "eval.json"
    if overwrite or not old.is_file():
        return out
    try:
        body = json.loads(old.read_text(encoding="utf-8"))
        was = (str((body.get("model") or {}).get("name")), str(body.get("dataset")), str(body.get("checksum")))
    except (OSError, ValueError, AttributeError):
        raise UsageError(f"{out}: holds an eval.json that cannot be read; pass --overwrite to replace it, or choose "
                         "another --out") from None
    if not _same_model(was[0], model) or was[1:] != (dataset, checksum):
        raise UsageError(f"{out}: holds the evaluation of model {was[0]!r} on {was[1]} (checksum {was[2][:12]}), "
                         f"not of {model!r} on {dataset} (checksum {checksum[:12]}); pass --overwrite to replace it, "
                         "or choose another --out")
    return out


def check_eval_folder(out_dir: Path | str, command: str = "eval") -> Path:
    """`out_dir` must be a writable folder that is new, empty, or holds only an evaluation's files (EVAL_OUT:
    EVAL_FILES, the compare files, hidden files and temps, subfolders of results): `eval` and `compare` write their
    files into it and would otherwise mix them into a dataset's or a model's folder (an eval.json among `<lang>.json`
    files breaks `data check`). --overwrite does not lift this: it replaces an evaluation, never other files."""
    return check_out_folder(out_dir, EVAL_OUT if command == "eval" else COMPARE_OUT)


def _same_model(a: str, b: str) -> bool:
    """The same model name, or two spellings of one folder."""
    if a == b:
        return True
    pa, pb = Path(a), Path(b)
    return pa.exists() and pb.exists() and pa.resolve() == pb.resolve()


def write_bytes(path: Path, data: bytes) -> Path:
    """`data` into `path` atomically."""
    with atomic_file(path) as f:
        f.write(data)
    return path
