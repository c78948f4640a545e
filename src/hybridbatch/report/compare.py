"""compare.md: the Markdown of `hybridbatch compare` (two runs, paired over question ids), drawn from the comparison
dict `analysis.significance.compare` returns or its compare.json, so it can be rebuilt from the file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from hybridbatch.provenance import write_text

from hybridbatch.outputs import check_out_dir
from hybridbatch.report.format import fmt, markdown_table
from hybridbatch.report.plots import pyplot, save_figure


def compare_markdown(cmp: dict[str, Any]) -> str:
    """compare.md: per setting A, B, B - A with its bootstrap CI and the randomisation p-value."""
    rows = []
    for r in cmp["rows"]:
        d = 1 if r["name"] == "Bias" else 3
        rows.append([lower_is_better_name(r), fmt(r["a"], d), fmt(r["b"], d), fmt(r["diff"], d),
                     f"[{fmt(r['ci_low'], d)}, {fmt(r['ci_high'], d)}]", f"{r['p_value']:.4f}"])
    head = (f"# {cmp['run_b']} vs {cmp['run_a']}\n\nDataset {cmp['dataset']} ({cmp['n_question_ids']} question ids). "
            f"B - A with a {int(cmp['confidence'] * 100)}% paired bootstrap CI over question ids "
            f"({cmp['n_boot']} resamples) and a paired randomisation test ({cmp['n_perm']} sign flips per question id)."
            "\n\n")
    return head + markdown_table(["metric", "A", "B", "B - A", "CI", "p"], rows)


def write_compare_markdown(cmp: dict[str, Any], out_dir: Path | str) -> Path:
    """OUT/compare.md (`analysis.significance.write_compare` writes compare.json)."""
    return write_text(check_out_dir(out_dir) / "compare.md", compare_markdown(cmp))


def lower_is_better_name(row: dict[str, Any]) -> str:
    """A comparison row's name, marked where lower is better (the bias)."""
    return f"{row['name']} (lower is better)" if row.get("lower_is_better") else row["name"]


def plot_compare(cmp: dict[str, Any], path: Path | str) -> Path:
    """compare.png: B - A with its confidence interval for each metric, one panel per scale (mAP-like metrics, the
    rank distance), green where B is significantly better, red where significantly worse."""
    plt = pyplot()
    groups = [[r for r in cmp["rows"] if r["metric"] != "rank_distance"],
              [r for r in cmp["rows"] if r["metric"] == "rank_distance"]]
    groups = [g for g in groups if g]
    fig, axes = plt.subplots(len(groups), 1, figsize=(7, 0.9 + 0.4 * len(cmp["rows"]) + 0.6 * len(groups)),
                             squeeze=False, gridspec_kw={"height_ratios": [len(g) for g in groups]})
    for ax, rows in zip(axes[:, 0], groups, strict=True):
        ys = np.arange(len(rows))[::-1]
        for y, r in zip(ys, rows, strict=True):
            better = (r["diff"] < 0) == bool(r["lower_is_better"]) and r["diff"] != 0
            color = ("tab:green" if better else "tab:red") if r["p_value"] < 0.05 else "tab:gray"
            ax.errorbar([r["diff"]], [y], xerr=[[r["diff"] - r["ci_low"]], [r["ci_high"] - r["diff"]]], fmt="o",
                        color=color, capsize=4)
        ax.axvline(0.0, color="black", lw=0.8)
        ax.set_yticks(ys, [lower_is_better_name(r) for r in rows], fontsize=8)
        ax.set_xlabel("B - A (95% CI)" if rows[0]["metric"] != "rank_distance" else "B - A (rank distance)")
    axes[0, 0].set_title(f"{cmp['run_b']} vs {cmp['run_a']}\n{cmp['dataset']}, {cmp['n_question_ids']} question ids; "
                         f"green/red: p < 0.05", fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path)


def write_compare_report(cmp: dict[str, Any], out_dir: Path | str) -> dict[str, Path]:
    """compare.md and compare.png into OUT."""
    md = write_compare_markdown(cmp, out_dir)
    return {"md": md, "png": plot_compare(cmp, check_out_dir(out_dir) / "compare.png")}
