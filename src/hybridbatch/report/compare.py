"""compare.md: the Markdown of `hybridbatch compare` (two runs, paired over question ids), drawn from the comparison
dict `analysis.significance.compare` returns or its compare.json, so it can be rebuilt from the file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hybridbatch.provenance import check_out_dir, write_text
from hybridbatch.report.format import fmt, markdown_table


def compare_markdown(cmp: dict[str, Any]) -> str:
    """compare.md: per setting A, B, B - A with its bootstrap CI and the randomisation p-value."""
    rows = []
    for r in cmp["rows"]:
        d = 1 if r["name"] == "Bias" else 3
        rows.append([r["name"], fmt(r["a"], d), fmt(r["b"], d), fmt(r["diff"], d),
                     f"[{fmt(r['ci_low'], d)}, {fmt(r['ci_high'], d)}]", f"{r['p_value']:.4f}"])
    head = (f"# {cmp['run_b']} vs {cmp['run_a']}\n\nDataset {cmp['dataset']} ({cmp['n_question_ids']} question ids). "
            f"B - A with a {int(cmp['confidence'] * 100)}% paired bootstrap CI over question ids "
            f"({cmp['n_boot']} resamples) and a paired randomisation test ({cmp['n_perm']} sign flips per question id)."
            "\n\n")
    return head + markdown_table(["metric", "A", "B", "B - A", "CI", "p"], rows)


def write_compare_markdown(cmp: dict[str, Any], out_dir: Path | str) -> Path:
    """OUT/compare.md (`analysis.significance.write_compare` writes compare.json)."""
    return write_text(check_out_dir(out_dir) / "compare.md", compare_markdown(cmp))
