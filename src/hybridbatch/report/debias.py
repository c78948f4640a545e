"""The Markdown of post-hoc debiasing: the rank sweep's table (`analysis.debias_ranks.sweep` -> sweep.json) and the
debiasing of a grid's finished cells (`experiments.debias_cells.debias_report` -> debias-report.json), both rebuilt
from their JSON."""

from __future__ import annotations

from typing import Any

from hybridbatch.report.format import fmt
from hybridbatch.report.grid import significance_markdown


def sweep_markdown(body: dict[str, Any]) -> str:
    """The sweep table: one row per configuration, base first."""
    lines = [f"# Debiasing sweep: {body['model']} on {body['dataset']} (held-out test articles)", "",
             f"Subspace from: {body['subspace']['data_source']} "
             f"({', '.join(f'{k} {v}' for k, v in body['subspace']['sentences_per_language'].items())})", "",
             "| config | method | rank | Mono mAP | Cross mAP | Multi mAP | Mono R@1 | Multi R@10 | Bias | Max@R | "
             "Complete@10 |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in body["rows"]:
        lines.append(f"| {r['name']} | {r['method']} | {r['rank']} | {r['mono_map']:.4f} | {r['cross_map']:.4f} | "
                     f"{r['multi_map']:.4f} | {r['mono_r1']:.4f} | {r['multi_r10']:.4f} | {r['bias']:.2f} | "
                     f"{fmt(r.get('max_rank'), 1)} | {fmt(r.get('complete10'), 4)} |")
    lines += ["", f"Best LSAR rank by Multi mAP: {body['best_lsar_by_multi_map']}."]
    chk = body.get("equivalence_check")
    if chk:
        lines.append(f"Equivalence: a debiased folder (rank {chk['rank']}) loaded with plain SentenceTransformer "
                     f"gives embeddings within {chk['max_abs_diff']:.1e} (max abs) of the projected base embeddings "
                     f"on {chk['n_queries']} queries + {chk['n_candidates']} candidates ({chk['language']}).")
    lines.append(f"Commit {body['provenance']['git_commit']}.")
    return "\n".join(lines) + "\n"


def debias_markdown(body: dict[str, Any]) -> str:
    """Mean ± std over seeds of every (cell group, debiasing), then the seed-aware comparisons."""
    lines = ["| cell | debias | seeds | Mono mAP | Cross mAP | Multi mAP | bias |", "|---|---|---|---|---|---|---|"]
    for r in body["rows"]:
        sd = (lambda k, d: f" ± {r[k + '_std']:.{d}f}") if len(r["seeds"]) > 1 else (lambda k, d: "")
        cells = [f"{r[k]:.3f}{sd(k, 3)}" for k in ("mono_map", "cross_map", "multi_map")]
        lines.append(f"| {r['group']} | {r['debias']} | {len(r['seeds'])} | " + " | ".join(cells)
                     + f" | {r['bias']:.1f}{sd('bias', 1)} |")
    return "\n".join(lines) + "\n\n" + significance_markdown(body["comparisons"])
