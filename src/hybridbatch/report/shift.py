"""The report of the domain-shift evaluations (`evaluation.shift`): shift.md (per task, the multilingual pool
against the own segment, where the misses land, per query language) and shift.png; `write_shift` writes every file
of a run: the numbers (`evaluation.shift.write_shift_numbers`) and these."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from hybridbatch.evaluation.shift import ShiftResult, write_shift_numbers
from hybridbatch.provenance import write_text
from hybridbatch.report.format import fmt
from hybridbatch.report.plots import pyplot, save_figure

_MISSING = "-"  # shift.md's glyph for an undefined number
TITLES = {"tydi": "TyDi GoldP dev, multilingual pool", "tatoeba": "Tatoeba, multilingual pool of translations"}


def _f(v: Any, digits: int = 3) -> str:
    return fmt(v, digits, missing=_MISSING)


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


def shift_documents(results: dict[str, ShiftResult], out: Path, model: str) -> dict[str, Path]:
    """shift.md and shift.png of one run into `out`."""
    return {"md": write_text(out / "shift.md", shift_markdown(results, model)),
            "png": plot_shift(results, out / "shift.png", model)}


def write_shift(results: dict[str, ShiftResult], out_dir: Path | str, model: str, *,
                extra: dict[str, Any] | None = None) -> dict[str, Path]:
    """Every file of one run: per_query_<task>.npz, shift.md, shift.png and, last, shift.json (the commit record)."""
    return write_shift_numbers(results, out_dir, model, extra=extra, documents=shift_documents)
