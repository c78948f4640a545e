"""Markdown tables shaped like the paper's, the pair-matrix heatmap, and comparison tables. Everything here reads the
JSON dicts that `evaluation.write_eval` / `stats.compare` write, so reports can be rebuilt from result files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def _f(x: Any, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and not np.isfinite(x)):
        return "–"
    return f"{x:.{digits}f}"


def lareqa_row(body: dict[str, Any]) -> dict[str, Any]:
    """The headline numbers of one LAReQA run (mAP per setting, R@1 / R@10, bias)."""
    s = body["summary"]
    return {
        "Mono mAP": s["mono"]["map"], "Cross mAP": s["cross"]["map"], "Multi mAP": s["multi"]["map"],
        "Mono R@1": s["mono"]["r1"], "Cross R@1": s["cross"]["r1"], "Multi R@10": s["multi"]["r10"],
        "Multi mAP@20": s["multi"]["map20"], "Multi nDCG@10": s["multi"]["ndcg10"], "Bias": s["multi"]["bias"],
    }


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out) + "\n"


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
    cols = ["mono_map", "cross_map", "cross_map_as_pool", "multi_map", "mono_r1", "multi_r10", "bias"]
    parts.append(markdown_table(["lang", *cols], [[lang, *(_f(pl[lang][k], 1 if k == 'bias' else 3) for k in cols)]
                                                  for lang in langs]))
    return "".join(parts)


def beir_markdown(body: dict[str, Any]) -> str:
    cols = ["ndcg10", "recall100", "mrr10"]
    rows = [[lang, *(_f(v[k]) for k in cols), str(v["n_queries"]), str(v["n_candidates"])]
            for lang, v in body["per_language"].items()]
    rows.append(["**macro**", *(_f(body["summary"][k]) for k in cols), "", ""])
    return (f"# Single-language retrieval: {body['dataset']}\n\nTie rule: {body['tie_rule']}\n\n"
            + markdown_table(["lang", "nDCG@10", "Recall@100", "MRR@10", "queries", "candidates"], rows))


def pyplot() -> Any:
    """matplotlib.pyplot on the Agg backend: plots are files, never windows."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, path: Path | str) -> Path:
    """Write a PNG atomically (a killed run never leaves half an image) and free the figure."""
    from hybridbatch.provenance import atomic_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path) as f:
        fig.savefig(f, format="png", dpi=120)
    pyplot().close(fig)
    return path


def plot_pairs(langs: list[str], matrix: Any, path: Path | str, title: str = "mAP") -> Path:
    """Heatmap of the (query language x pool language) matrix, values written in the cells."""
    plt = pyplot()

    m = np.asarray(matrix, dtype=float)
    n = len(langs)
    fig, ax = plt.subplots(figsize=(1.0 + 0.55 * n, 0.8 + 0.5 * n))
    im = ax.imshow(m, cmap="viridis", vmin=np.nanmin(m) if np.isfinite(m).any() else 0, vmax=np.nanmax(m)
                   if np.isfinite(m).any() else 1)
    ax.set_xticks(range(n), langs)
    ax.set_yticks(range(n), langs)
    ax.set_xlabel("pool language")
    ax.set_ylabel("query language")
    ax.set_title(title, fontsize=9)
    if n <= 16:
        for i in range(n):
            for j in range(n):
                if np.isfinite(m[i, j]):
                    ax.text(j, i, f"{m[i, j]:.2f}", ha="center", va="center", fontsize=6, color="w")
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    return save_figure(fig, path)


def compare_markdown(cmp: dict[str, Any]) -> str:
    """compare.md: per setting A, B, B - A with its bootstrap CI and the randomisation p-value."""
    rows = []
    for r in cmp["rows"]:
        d = 1 if r["name"] == "Bias" else 3
        rows.append([r["name"], _f(r["a"], d), _f(r["b"], d), _f(r["diff"], d),
                     f"[{_f(r['ci_low'], d)}, {_f(r['ci_high'], d)}]", f"{r['p_value']:.4f}"])
    head = (f"# {cmp['run_b']} vs {cmp['run_a']}\n\nDataset {cmp['dataset']} ({cmp['n_question_ids']} question ids). "
            f"B - A with a {int(cmp['confidence'] * 100)}% paired bootstrap CI over question ids "
            f"({cmp['n_boot']} resamples) and a paired randomisation test ({cmp['n_perm']} sign flips per question id)."
            "\n\n")
    return head + markdown_table(["metric", "A", "B", "B - A", "CI", "p"], rows)


# Out-of-domain panel of the alpha plot: (row key, label); drawn when every hybrid row ran the shift pools.
_ALPHA_SHIFT = (("multi_map", "XQuAD-R Multi mAP (in domain)"), ("shift_tydi_multi_map", "TyDi multi-pool mAP"),
                ("shift_tatoeba_multi_r1", "Tatoeba multi-pool P@1"))


def plot_alpha(rows: list[dict[str, Any]], out: Path) -> Path:
    """Mono / Cross / Multi mAP and bias against alpha, error bars = std over seeds; X-X / X-Y drawn as references.
    With the shift pools, a third panel asks whether the best alpha in domain is also best out of domain: each
    measure as its change from alpha's smallest value, so measures on different scales share one axis."""
    plt = pyplot()

    mix = sorted((r for r in rows if r["sampler"] == "hybrid" and r["alpha"] is not None), key=lambda r: r["alpha"])
    shift = bool(mix) and all(k in r for r in mix for k, _ in _ALPHA_SHIFT)
    fig, axes = plt.subplots(1, 3 if shift else 2, figsize=(16 if shift else 11, 4))

    def curve(ax: Any, k: str, offset: float = 0.0, **kw: Any) -> None:
        """One measure against alpha (minus `offset`), error bars = its std over seeds."""
        ax.errorbar([r["alpha"] for r in mix], [r[k] - offset for r in mix], yerr=[r[f"{k}_std"] for r in mix],
                    marker="o", capsize=3, **kw)

    for setting, color in (("mono", "C0"), ("cross", "C1"), ("multi", "C2")):
        k = f"{setting}_map"
        curve(axes[0], k, color=color, label=f"{setting} mAP (hybrid)")
        for ref, ls in (("xx", ":"), ("xy", "--")):
            for r in rows:
                if r["sampler"] == ref and r["loss"] == (mix[0]["loss"] if mix else "plain"):
                    axes[0].axhline(r[k], color=color, ls=ls, lw=1, alpha=0.7)
    axes[0].set_ylabel("mAP (XQuAD-R test articles)")
    axes[0].set_title("mAP vs alpha (dotted: X-X only, dashed: X-Y only)")
    axes[0].legend(fontsize=8)
    curve(axes[1], "multi_bias", color="C3")
    axes[1].set_ylabel("rank distance (lower = less bias)")
    axes[1].set_title("language bias vs alpha")
    if shift:
        for (k, label), color in zip(_ALPHA_SHIFT, ("C2", "C4", "C5")):
            curve(axes[2], k, offset=mix[0][k], color=color, label=label)
        axes[2].axhline(0.0, color="grey", lw=0.8)
        axes[2].set_ylabel(f"change from alpha {mix[0]['alpha']:g} (higher = better)")
        axes[2].set_title("in domain vs out of domain")
        axes[2].legend(fontsize=8)
    for ax in axes:
        ax.set_xlabel("alpha (share of X-X batches)")
    fig.tight_layout()
    return save_figure(fig, out)


def plot_side_by_side(rows: list[dict[str, Any]], out: Path) -> Path:
    """Grouped bars: Mono / Cross / Multi mAP per cell, and the language bias beside them."""
    plt = pyplot()

    fig, axes = plt.subplots(1, 2, figsize=(10, 4), gridspec_kw={"width_ratios": [3, 1]})
    width = 0.8 / max(1, len(rows))
    for i, r in enumerate(rows):
        xs = np.arange(3) + i * width
        vals = [r["mono_map"], r["cross_map"], r["multi_map"]]
        axes[0].bar(xs, vals, width, label=r["group"])
        for x, v in zip(xs, vals):
            axes[0].text(x, v, f"{v:.3f}", ha="center", va="bottom", fontsize=7)
        axes[1].bar([i], [r["multi_bias"]], 0.6, label=r["group"])
    axes[0].set_xticks(np.arange(3) + width * (len(rows) - 1) / 2, ["Mono", "Cross", "Multi"])
    axes[0].set_ylabel("mAP (XQuAD-R test articles)")
    axes[0].legend(fontsize=8)
    axes[1].set_xticks(range(len(rows)), [r["group"] for r in rows], rotation=20, fontsize=8)
    axes[1].set_ylabel("rank distance (lower = less bias)")
    fig.tight_layout()
    return save_figure(fig, out)
