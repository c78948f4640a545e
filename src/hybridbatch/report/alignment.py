"""The Markdown and plots of cross-lingual alignment: one or two models' tables (A, B, B - A) and per-pair heatmaps
(`analysis.alignment_run` -> align.json), and alignment against alpha over a sweep's cells
(`analysis.alignment_vs_alpha` -> alignment_vs_alpha.json). Each is drawn from the result objects or their JSON."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hybridbatch.analysis.alignment import MEASURE_TITLES, MEASURES, AlignResult, PairResult, difference
from hybridbatch.analysis.alignment_vs_alpha import TARGETS
from hybridbatch.provenance import write_text
from hybridbatch.report.format import finite, fmt
from hybridbatch.report.plots import pyplot, save_figure

_PAIR_COLUMNS = ("parallel_cosine", "clsim", "cka", "cka_debiased", "p_at_1_ab", "p_at_1_ba")


def _fmt(v: Any, signed: bool = False) -> str:
    """The alignment tables' number: 3 decimals, 'n/a' where a measure is undefined (too few items)."""
    return fmt(v, 3, signed=signed, missing="n/a")


def _f(v: Any, d: int = 3) -> str:
    """The alignment-vs-alpha tables' number: '-' where a cell has no value."""
    return fmt(v, d, missing="-")


def align_markdown(results: Sequence[AlignResult]) -> str:
    """Per source: a macro table (A, B, B - A) and a per-pair table for each model (and for B - A)."""
    labels = ["A", "B"][: len(results)]
    lines = ["# Cross-lingual alignment", ""]
    for lab, r in zip(labels, results):
        lines.append(f"- model {lab}: `{r.model}`")
    lines += ["", "CLSim = parallel cosine - mean cosine of non-parallel pairs (i != j). CKA: linear, column-centred "
              "(Kornblith et al. 2019); debiased CKA uses the unbiased HSIC estimator. P@1: nearest-neighbour "
              "translation retrieval, a->b and b->a.", ""]
    diff = difference(results[0], results[1]) if len(results) == 2 else None
    for src in results[0].pairs:
        lines += [f"## {src}", "", "Macro means over language pairs.", ""]
        head = ["measure", *[f"{lab}" for lab in labels]] + (["B - A"] if diff else [])
        lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for m in MEASURES:
            cells = [MEASURE_TITLES[m], *[_fmt(r.macro(src)[m]) for r in results]]
            if diff and src in diff:
                cells.append(_fmt(diff[src]["macro"][m], signed=True))
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
        cols = ["pair", "n", "cos", "CLSim", "CKA", "dCKA", "P@1 a->b", "P@1 b->a"]
        for lab, r in zip(labels, results):
            lines += [f"### {src}, model {lab}", "", "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
            for p in r.pairs.get(src, []):
                lines.append(f"| {p.a}-{p.b} | {p.n} | " + " | ".join(_fmt(p.value(m)) for m in (
                    "parallel_cosine", "clsim", "cka", "cka_debiased", "p_at_1_ab", "p_at_1_ba")) + " |")
            lines.append("")
        if diff and src in diff:
            lines += [f"### {src}, B - A", "", "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
            for d in diff[src]["pairs"]:
                lines.append(f"| {d['a']}-{d['b']} | {d['n_b']} | " + " | ".join(_fmt(d[m], signed=True) for m in (
                    "parallel_cosine", "clsim", "cka", "cka_debiased", "p_at_1_ab", "p_at_1_ba")) + " |")
            lines.append("")
    return "\n".join(lines)


def pair_matrix(rows: Sequence[PairResult], measure: str) -> tuple[list[str], list[str], np.ndarray]:
    """(row labels, column labels, matrix) for a heatmap. Pairs among many languages: a language x language matrix
    (symmetric measures mirrored; P@1 cell [a, b] = a's texts retrieving b's; diagonal empty). Pivot data (every pair
    is X-en, Tatoeba): one row per direction, one column per language."""
    rights = {r.b for r in rows}
    if len(rights) == 1 and len(rows) > 1:
        piv = next(iter(rights))
        cols = [r.a for r in rows]
        if measure == "p_at_1":
            M = np.array([[r.p_at_1_ab for r in rows], [r.p_at_1_ba for r in rows]])
            return [f"X->{piv}", f"{piv}->X"], cols, M
        return [f"X-{piv}"], cols, np.array([[r.value(measure) for r in rows]])
    langs = sorted({r.a for r in rows} | {r.b for r in rows})
    idx = {lang: i for i, lang in enumerate(langs)}
    M = np.full((len(langs), len(langs)), np.nan)
    for r in rows:
        i, j = idx[r.a], idx[r.b]
        if measure == "p_at_1":
            M[i, j], M[j, i] = r.p_at_1_ab, r.p_at_1_ba
        else:
            M[i, j] = M[j, i] = r.value(measure)
    return langs, langs, M


def heatmaps(results: Sequence[AlignResult], out_dir: Path | str, annotate: bool = True) -> list[Path]:
    """One PNG per source and measure; with two models three panels side by side: A, B and B - A. `annotate`
    writes each value in its cell (readable, but about half the plotting time)."""
    plt = pyplot()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for src in results[0].pairs:
        if not all(src in r.pairs and r.pairs[src] for r in results):
            continue
        for m in MEASURES:
            mats = [pair_matrix(r.pairs[src], m) for r in results]
            rows, cols, _ = mats[0]
            panels = [(f"{lab}: {r.model}", mat[2]) for lab, r, mat in zip("AB", results, mats)]
            vals = np.concatenate([p[1][np.isfinite(p[1])] for p in panels]) if panels else np.array([])
            lo, hi = (float(vals.min()), float(vals.max())) if vals.size else (0.0, 1.0)
            if hi - lo < 1e-9:
                lo, hi = lo - 0.5, hi + 0.5
            specs = [(title, M, "viridis", lo, hi) for title, M in panels]
            if len(results) == 2 and mats[0][2].shape == mats[1][2].shape:
                D = mats[1][2] - mats[0][2]
                lim = float(np.nanmax(np.abs(D))) if np.isfinite(D).any() else 0.0
                lim = lim if lim > 1e-6 else 0.01  # identical runs: a readable, empty scale
                specs.append(("B - A", D, "RdBu_r", -lim, lim))
            # fixed layout in inches (tight_layout would cost an extra full render per figure)
            cw, ch = len(cols) * 0.45, len(rows) * 0.4
            directed = m == "p_at_1" and rows == cols  # cell [a, b]: a's texts as queries, b's as candidates
            left, bar_gap, bar_w, right, top, bottom = 0.95, 0.1, 0.15, 0.5, 0.65, 0.6
            panel_w = left + cw + bar_gap + bar_w + right
            W, H = panel_w * len(specs), top + ch + bottom
            fig = plt.figure(figsize=(W, H))
            for k, (title, M, cmap, vmin, vmax) in enumerate(specs):
                x0 = k * panel_w + left
                ax = fig.add_axes((x0 / W, bottom / H, cw / W, ch / H))
                cax = fig.add_axes(((x0 + cw + bar_gap) / W, bottom / H, bar_w / W, ch / H))
                im = ax.imshow(np.ma.masked_invalid(M), cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto")
                ax.set_xticks(range(len(cols)), cols, fontsize=7)
                ax.set_yticks(range(len(rows)), rows, fontsize=7)
                if directed:
                    ax.set_ylabel("query language", fontsize=7)
                    ax.set_xlabel("candidate language", fontsize=7)
                ax.set_title(title if len(title) < 50 else "..." + title[-47:], fontsize=8)
                for (i, j), v in np.ndenumerate(M if annotate else np.empty((0, 0))):
                    if np.isfinite(v):
                        ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=5, color="white"
                                if cmap == "viridis" and v < (vmin + vmax) / 2 else "black")
                fig.colorbar(im, cax=cax).ax.tick_params(labelsize=6)
            fig.suptitle(f"{src}: {MEASURE_TITLES[m]}", fontsize=9, y=1 - 0.08 / H, va="top")
            written.append(save_figure(fig, out_dir / f"{src}_{m}.png"))
    return written


def write_align_report(results: Sequence[AlignResult], out_dir: Path | str, annotate: bool = True) -> dict[str, Path]:
    """OUT/align.md and OUT/plots/<source>_<measure>.png (`analysis.alignment_run.write_align_json` writes the JSON)."""
    out_dir = Path(out_dir)
    paths = {"markdown": write_text(out_dir / "align.md", align_markdown(results))}
    for p in heatmaps(results, out_dir / "plots", annotate):
        paths[f"plot:{p.stem}"] = p
    return paths


def alignment_vs_alpha_markdown(body: dict[str, Any]) -> str:
    """Per-cell table (sorted by alpha, then seed) and the correlation table."""
    rows = sorted(body["rows"], key=lambda r: (r["alpha"] if r["alpha"] is not None else -1, r["seed"]))
    ms = body["measures"]
    head = ["cell", "alpha", "seed", "Multi mAP", "bias", *ms]
    lines = [f"# Alignment against alpha: {body['sweep']}", "",
             "Alignment on held-out items (XQuAD-R test articles, Tatoeba); macro means over language pairs. "
             "Multi mAP and bias (rank distance) from each cell's XQuAD-R test evaluation.", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        lines.append("| " + " | ".join([r["key"], _f(r["alpha"], 2), str(r["seed"]), _f(r["multi_map"]),
                                         _f(r["multi_bias"], 1), *[_f(r.get(m)) for m in ms]]) + " |")
    lines += ["", "## Does alignment predict Multi mAP / bias? (Spearman over cells)", "",
              f"{body['method']['interval']}; rho cross-checked with scipy.stats.spearmanr.", "",
              "rho within alpha: the same after subtracting each alpha's mean from both sides (does alignment "
              "predict the target beyond what alpha does?), cells resampled within their alpha.", "",
              "| measure | target | cells | rho | 95% CI | scipy rho | rho within alpha | 95% CI |",
              "|---|---|---|---|---|---|---|---|"]
    for c in body["correlations"]:
        lines.append(f"| {c['measure']} | {TARGETS.get(c['target'], c['target'])} | {c['n_cells']} | "
                     f"{_f(c['rho'])} | [{_f(c['ci_low'])}, {_f(c['ci_high'])}] | {_f(c['rho_scipy'])} | "
                     f"{_f(c.get('rho_within_alpha'))} | [{_f(c.get('within_ci_low'))}, "
                     f"{_f(c.get('within_ci_high'))}] |")
    return "\n".join(lines) + "\n"


def plot_alignment_vs_alpha(rows: list[dict[str, Any]], measures: Sequence[str], path: Path) -> Path:
    """One panel per alignment measure and for Multi mAP and bias, against alpha: each seed a dot, the mean over
    seeds a line."""
    plt = pyplot()
    cols = [*measures, "multi_map", "multi_bias"]
    n = len(cols)
    ncol = min(n, 3 if n > 4 else n)
    nrow = math.ceil(n / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.2 * ncol, 3.2 * nrow), squeeze=False)
    pts = [r for r in rows if r["alpha"] is not None]
    alphas = sorted({r["alpha"] for r in pts})
    for ax, col in zip(axes.flat, cols):
        xs = [r["alpha"] for r in pts if finite(r.get(col))]
        ys = [r[col] for r in pts if finite(r.get(col))]
        ax.scatter(xs, ys, s=14, alpha=0.6, color="C1" if col in TARGETS else "C0")
        means = [np.mean([r[col] for r in pts if r["alpha"] == a and finite(r.get(col))] or [np.nan])
                 for a in alphas]
        ax.plot(alphas, means, marker="o", color="C1" if col in TARGETS else "C0")
        ax.set_title(TARGETS.get(col, col), fontsize=8)
        ax.set_xlabel("alpha (share of X-X batches)", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    fig.suptitle("alignment (held-out) and XQuAD-R Multi mAP / bias against alpha; dots = seeds", fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path)
