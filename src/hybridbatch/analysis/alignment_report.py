"""Alignment reports: B - A between two models, the markdown tables, per-pair heatmaps and align.json (the
measures themselves are in alignment.py)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hybridbatch.analysis.alignment import MEASURE_TITLES, MEASURES, AlignResult, PairResult
from hybridbatch.errors import UsageError
from hybridbatch.provenance import jsonable, provenance, write_json, write_text


def difference(a: AlignResult, b: AlignResult) -> dict[str, Any]:
    """B - A per source, pair and measure (e.g. after minus before fine-tuning), over the pairs both runs have."""
    out: dict[str, Any] = {}
    for src in (s for s in a.pairs if s in b.pairs):
        rows_b = {(r.a, r.b): r for r in b.pairs[src]}
        diffs = []
        for ra in a.pairs[src]:
            rb = rows_b.get((ra.a, ra.b))
            if rb is not None:
                d = {"a": ra.a, "b": ra.b, "n_a": ra.n, "n_b": rb.n}
                d.update({m: rb.value(m) - ra.value(m) for m in (*MEASURES, "p_at_1_ab", "p_at_1_ba")})
                diffs.append(d)
        ma, mb = a.macro(src), b.macro(src)
        out[src] = {"macro": {m: mb[m] - ma[m] for m in MEASURES}, "pairs": diffs}
    return out


def _fmt(v: float, signed: bool = False) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    return f"{v:+.3f}" if signed else f"{v:.3f}"


def markdown(results: Sequence[AlignResult]) -> str:
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
    from hybridbatch.report.tables import pyplot, save_figure

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
            finite = np.concatenate([p[1][np.isfinite(p[1])] for p in panels]) if panels else np.array([])
            lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
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




def write_align(results: Sequence[AlignResult], out_dir: Path | str, annotate: bool = True) -> dict[str, Path]:
    """align.json (every number, provenance per model, B - A with two models), align.md and plots/*.png."""
    if not 1 <= len(results) <= 2:
        raise UsageError(f"alignment reports compare one or two models, got {len(results)}")
    out_dir = Path(out_dir)
    labels = ["A", "B"][: len(results)]
    obj: dict[str, Any] = {
        "kind": "hybridbatch.align",
        "provenance": provenance(models={lab: r.model for lab, r in zip(labels, results)},
                                 settings=results[0].settings),
        "models": {lab: r.to_json() for lab, r in zip(labels, results)},
    }
    if len(results) == 2:
        obj["difference"] = {"of": "B - A", "sources": difference(results[0], results[1])}
    paths = {"json": write_json(out_dir / "align.json", jsonable(obj)),
             "markdown": write_text(out_dir / "align.md", markdown(results))}
    for p in heatmaps(results, out_dir / "plots", annotate):
        paths[f"plot:{p.stem}"] = p
    return paths



__all__ = ["difference", "markdown", "pair_matrix", "heatmaps", "write_align"]
