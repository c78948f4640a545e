"""Plots: matplotlib on Agg and atomic PNG writing (shared by every report), and the grid's plots (the alpha curves,
the paper's samplers side by side). They read the JSON dicts the library writes (`analysis.grid_stats` rows), so
plots can be rebuilt from result files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from hybridbatch.provenance import atomic_file
from hybridbatch.sampling.samplers import DEFAULT_SAMPLER, same_run


def pyplot() -> Any:
    """matplotlib.pyplot on the Agg backend: plots are files, never windows."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, path: Path | str) -> Path:
    """Write a PNG atomically (a killed run never leaves half an image) and free the figure."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path) as f:
        fig.savefig(f, format="png", dpi=120)
    pyplot().close(fig)
    return path


# Out-of-domain panel of the alpha plot: (row key, label); drawn when every hybrid row ran the shift pools.
_ALPHA_SHIFT = (("multi_map", "XQuAD-R Multi mAP (in domain)"), ("shift_tydi_multi_map", "TyDi multi-pool mAP"),
                ("shift_tatoeba_multi_r1", "Tatoeba multi-pool P@1"))


def plot_alpha(rows: list[dict[str, Any]], out: Path) -> Path:
    """Mono / Cross / Multi mAP and bias against alpha, error bars = std over seeds; X-X / X-Y drawn as references.
    With the shift pools, a third panel asks whether the best alpha in domain is also best out of domain: each
    measure as its change from alpha's smallest value, so measures on different scales share one axis."""
    plt = pyplot()
    mix = sorted((r for r in rows if r["sampler"] == DEFAULT_SAMPLER and r["alpha"] is not None),
                 key=lambda r: r["alpha"])
    shift = bool(mix) and all(k in r for r in mix for k, _ in _ALPHA_SHIFT)
    fig, axes = plt.subplots(1, 3 if shift else 2, figsize=(16 if shift else 11, 4))

    def curve(ax: Any, k: str, offset: float = 0.0, **kw: Any) -> None:
        """One measure against alpha (minus `offset`), error bars = its std over seeds."""
        ax.errorbar([r["alpha"] for r in mix], [r[k] - offset for r in mix], yerr=[r[f"{k}_std"] for r in mix],
                    marker="o", capsize=3, **kw)

    for setting, color in (("mono", "C0"), ("cross", "C1"), ("multi", "C2")):
        k = f"{setting}_map"
        curve(axes[0], k, color=color, label=f"{setting} mAP (hybrid)")
        for ref, ls in ((same_run(DEFAULT_SAMPLER, 1.0), ":"), (same_run(DEFAULT_SAMPLER, 0.0), "--")):
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
