"""The report of one evaluation: eval.md (the paper-shaped LAReQA table, or the single-language table) and
pairs.png (the query language x pool language heatmap), written from eval.json's body, so that a report can be
rebuilt from the result files. `write_eval` writes a run's every file: the numbers (`evaluation.results`) and these.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from hybridbatch.evaluation.results import BeirResult, EvalResult, write_bytes, write_eval_numbers
from hybridbatch.report.format import fmt, markdown_table
from hybridbatch.report.plots import pyplot, save_figure

_MISSING = "–"  # eval.md's glyph for an undefined number


def _f(x: Any, digits: int = 3) -> str:
    return fmt(x, digits, missing=_MISSING)


def lareqa_row(body: dict[str, Any]) -> dict[str, Any]:
    """The headline numbers of one LAReQA run (mAP per setting, R@1 / R@10, bias)."""
    s = body["summary"]
    return {
        "Mono mAP": s["mono"]["map"], "Cross mAP": s["cross"]["map"], "Multi mAP": s["multi"]["map"],
        "Mono R@1": s["mono"]["r1"], "Cross R@1": s["cross"]["r1"], "Multi R@10": s["multi"]["r10"],
        "Multi mAP@20": s["multi"]["map20"], "Multi nDCG@10": s["multi"]["ndcg10"], "Bias": s["multi"]["bias"],
    }


def lareqa_markdown(body: dict[str, Any]) -> str:
    """eval.md: the paper-shaped summary (Mono / Cross / Multi mAP, R@1/R@10, bias), the per-setting metric table,
    the pair matrix and the per-language rows."""
    row = lareqa_row(body)
    model = (body.get("model") or {}).get("name", "?")
    parts = [f"# LAReQA evaluation: {body['dataset']}\n",
             f"Model: `{model}` · context: {body.get('settings', {}).get('context')} · "
             f"tie rule: {body['tie_rule']}\n\n",
             markdown_table(["model", *row], [[f"`{model}`", *(_f(v, 1 if k == 'Bias' else 3)
                                                               for k, v in row.items())]])]
    s = body["summary"]
    metrics = [("map", "mAP"), ("map20", "mAP@20"), ("r1", "R@1"), ("r10", "R@10"), ("ndcg10", "nDCG@10"),
               ("mrr10", "MRR@10")]
    parts.append("\n## All metrics (macro averages)\n\n")
    parts.append(markdown_table(["setting", *(n for _, n in metrics)],
                                [[st.capitalize(), *(_f(s[st].get(k)) for k, _ in metrics)] for st in s]))
    parts.append(f"\nLanguage bias (Multi rank distance, lower is better): {_f(s['multi'].get('bias'), 1)}\n")
    m = s["multi"]
    if "own_top10" in m:  # evaluation.preference; runs evaluated before it have none
        parts.append(
            f"\nLanguage preference (Multi pool): own-language share of the top 10 {_f(m['own_top10'])} (a "
            f"language-blind ranking: {_f(m['own_top10_expected'])}); own copy ranked first {_f(m['own_first'])} "
            f"(no preference: {_f(m['own_first_expected'])}); own-language minus other-language stratified nDCG@10 "
            f"{_f(m['own_gap'])}; spread of stratified nDCG@10 over candidate languages {_f(m['ndcg_spread'])}.\n")
    if "max_rank" in m:  # evaluation.worst_rank; runs evaluated before it have none
        parts.append(f"\nWorst rank (Multi pool): Max@R (worst rank of any relevant copy) {_f(m['max_rank'], 1)}; "
                     f"Complete@10 (every copy in the top 10) {_f(m['complete10'])}.\n")
    c = body["counts"]
    parts.append(
        f"\nCounts: {c['n_queries']} queries, {c['n_candidates']} candidates, {c['n_languages']} languages, "
        f"{c['n_cross_pairs']} cross pairs, relevant per query {c['relevant_per_query']['min']}-"
        f"{c['relevant_per_query']['max']} (mean {c['relevant_per_query']['mean']:.2f}); left out (no relevant copy "
        f"in the pool): {c['left_out']}.\n")
    langs = body["languages"]
    parts.append("\n## Pair matrix (mAP; rows: query language, columns: pool language; last column: Multi)\n\n")
    pm = body["pairs"]["map"]
    mm = body["pairs"]["multi_map"]
    parts.append(markdown_table(["q \\ pool", *langs, "multi"],
                                [[a, *(_f(v) for v in pm[i]), _f(mm[i])] for i, a in enumerate(langs)]))
    parts.append("\n## Per query language\n\n")
    pl = body["per_language"]
    cols = ["mono_map", "cross_map", "cross_map_as_pool", "multi_map", "mono_r1", "multi_r10", "bias",
            *(k for k in ("max_rank", "complete10") if k in pl[langs[0]])] if langs else []
    parts.append(markdown_table(["lang", *cols], [[lang, *(_f(pl[lang][k], 1 if k in ("bias", "max_rank") else 3)
                                                           for k in cols)] for lang in langs]))
    if "worst_pool" in body["pairs"]:
        parts.append(worst_pool_markdown(body))
    return "".join(parts)


def worst_pool_markdown(body: dict[str, Any]) -> str:
    """Where the worst rank comes from: (query language x pool language of the worst-ranked copy) shares, then per
    pool language its macro share and the mean Max@R of the queries whose worst copy it holds."""
    langs = body["languages"]
    share = body["pairs"]["worst_pool"]
    pl = body["per_language"]
    return ("\n## Where the worst rank comes from (Multi pool)\n\nShare of each query language's queries whose "
            "worst-ranked relevant copy is in each pool language (rows sum to 1); last rows: the macro share over "
            "query languages and the mean Max@R of the queries whose worst copy is in that pool.\n\n"
            + markdown_table(["q \\ worst pool", *langs],
                             [[a, *(_f(v) for v in share[i])] for i, a in enumerate(langs)]
                             + [["**share**", *(_f(pl[p].get("worst_pool_share")) for p in langs)],
                                ["**mean worst rank**", *(_f(pl[p].get("mean_worst_rank"), 1) for p in langs)]]))


def beir_markdown(body: dict[str, Any]) -> str:
    cols = ["ndcg10", "recall100", "mrr10"]
    rows = [[lang, *(_f(v[k]) for k in cols), str(v["n_queries"]), str(v["n_candidates"])]
            for lang, v in body["per_language"].items()]
    rows.append(["**macro**", *(_f(body["summary"][k]) for k in cols), "", ""])
    return (f"# Single-language retrieval: {body['dataset']}\n\nTie rule: {body['tie_rule']}\n\n"
            + markdown_table(["lang", "nDCG@10", "Recall@100", "MRR@10", "queries", "candidates"], rows))


def collapse_warning(body: dict[str, Any]) -> str:
    """The warning put above the figures of a near-collapsed model ('' for a healthy one)."""
    health = body.get("health") or {}
    if not health.get("near_collapse"):
        return ""
    return (f"> **Warning: near-collapsed model.** The median per-query spread of scores is "
            f"{health['score_spread']:.2e} (< {health['collapse_threshold']:.0e}): nearly every candidate "
            f"scores the same, so these figures are close to chance level.\n\n")


def eval_markdown(body: dict[str, Any]) -> str:
    """eval.md of one run from its eval.json body: LAReQA (with the collapse warning) or single-language."""
    if body.get("kind") == "beir":
        return beir_markdown(body)
    return collapse_warning(body) + lareqa_markdown(body)


def plot_pairs(langs: list[str], matrix: Any, path: Path | str, title: str = "mAP", multi: Any = None) -> Path:
    """Heatmap of the (query language x pool language) matrix with the Multi column (the whole pool) beside it,
    values in the cells in black or white by the cell's brightness, on one fixed scale (0 to 1), so that two runs'
    plots compare by eye."""
    plt = pyplot()
    m = np.asarray(matrix, dtype=float)
    n = len(langs)
    cols = list(langs)
    if multi is not None:
        m = np.column_stack([m, np.asarray(multi, dtype=float)])
        cols.append("Multi")
    fig, ax = plt.subplots(figsize=(1.6 + 0.55 * len(cols), 1.2 + 0.5 * n))
    cmap = plt.get_cmap("viridis")
    im = ax.imshow(m, cmap=cmap, vmin=0.0, vmax=1.0)
    ax.set_xticks(range(len(cols)), cols)
    ax.set_yticks(range(n), langs)
    ax.set_xlabel("pool language (Multi: all languages)")
    ax.set_ylabel("query language")
    ax.set_title(title, fontsize=9)
    if multi is not None:
        ax.axvline(n - 0.5, color="white", lw=3)
    if n <= 16:
        for i in range(n):
            for j in range(len(cols)):
                if np.isfinite(m[i, j]):
                    r, g, b, _ = cmap(float(np.clip(m[i, j], 0.0, 1.0)))
                    dark = 0.299 * r + 0.587 * g + 0.114 * b < 0.5
                    ax.text(j, i, f"{m[i, j]:.2f}", ha="center", va="center", fontsize=7,
                            color="white" if dark else "black")
    fig.colorbar(im, ax=ax, fraction=0.046, label="mAP")
    fig.tight_layout()
    return save_figure(fig, path)


def eval_documents(body: dict[str, Any], out: Path) -> dict[str, Path]:
    """pairs.png (LAReQA only) and eval.md of one run into `out`, from its eval.json body."""
    paths: dict[str, Path] = {}
    if body.get("kind") != "beir":
        model = (body.get("model") or {}).get("name", "?")
        split = (body.get("settings") or {}).get("split")
        paths["pairs_png"] = plot_pairs(body["languages"], np.asarray(body["pairs"]["map"], dtype=float),
                                        out / "pairs.png", multi=body["pairs"].get("multi_map"),
                                        title=f"{model} on {body['dataset']}{f' ({split})' if split else ''}: mAP, "
                                              f"query language x pool language")
    paths["eval_md"] = write_bytes(out / "eval.md", eval_markdown(body).encode("utf-8"))
    return paths


def write_eval(result: EvalResult | BeirResult, out_dir: Path | str) -> dict[str, Path]:
    """Every file of one run: per_query.npz, pairs.png (LAReQA only), eval.md and, last, eval.json (the commit
    record; see `evaluation.results.write_eval_numbers`)."""
    return write_eval_numbers(result, out_dir, documents=eval_documents)
