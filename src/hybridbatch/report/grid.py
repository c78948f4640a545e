"""The Markdown of a grid's results: the paper-shaped table (mean ± std over seeds), the significance tables of
seed-aware comparisons, the one-line-per-pair summary, the domain-shift comparisons and what moved against an older
grid. Everything reads the rows / comparison dicts that `analysis.grid_stats` and `analysis.significance` compute (and
the grid's JSON holds), so a table can be rebuilt from its file."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from hybridbatch.analysis.grid_stats import PREFERENCE_KEYS, SHIFT_KEYS, SUMMARY_KEYS, WORST_KEYS
from hybridbatch.analysis.significance import SEED_CI_METRICS
from hybridbatch.report.format import finite, fmt

# column titles of the domain-shift keys (analysis.grid_stats.SHIFT_KEYS), in that order
SHIFT_TITLES = ("TyDi multi-pool mAP", "TyDi multi-pool nDCG@10", "TyDi per-language pools mAP", "TyDi gap",
                "TyDi top-1 foreign", "Tatoeba multi-pool P@1", "Tatoeba gap", "Tatoeba X->en P@1",
                "Tatoeba top-1 own language")
PREFERENCE_TITLES = ("own-language share of top 10", "own copy ranked first", "own-language nDCG@10 gap",
                     "stratified nDCG@10 spread")


def _mean_sd(r: Mapping[str, Any], k: str, digits: int = 3) -> str:
    """`mean ± std` over the row's seeds (the mean alone for one seed); '-' where the row lacks the value."""
    v, sd = r.get(k), r.get(f"{k}_std")
    if not finite(v):
        return "-"
    return f"{fmt(v, digits)} ± {sd:.{digits}f}" if sd is not None and len(r["seeds"]) > 1 else fmt(v, digits)


def grid_markdown(rows: list[dict[str, Any]], title: str) -> str:
    """The paper's table shape: Mono / Cross / Multi mAP and language bias, mean ± std over seeds."""
    has_tydi = any("tydi_ndcg10" in r for r in rows)
    head = "| cell | seeds | XQ Mono mAP | XQ Cross mAP | XQ Multi mAP | bias (rank dist.) |"
    sep = "|---|---|---|---|---|---|"
    if has_tydi:
        head += " TyDi nDCG@10 (per-language pools; seeds that ran it) |"
        sep += "---|"
    lines = [f"### {title}", "", head, sep]
    for r in rows:
        line = (f"| {r['group']} | {len(r['seeds'])} | {_mean_sd(r, 'mono_map')} | {_mean_sd(r, 'cross_map')} | "
                f"{_mean_sd(r, 'multi_map')} | {_mean_sd(r, 'multi_bias', 1)} |")
        if has_tydi:
            line += f" {_mean_sd(r, 'tydi_ndcg10')} |"
        lines.append(line)
    if any("shift_tydi_multi_map" in r for r in rows):  # the domain-shift pools (evaluation.shift), every seed
        lines += ["", "| cell | " + " | ".join(SHIFT_TITLES) + " |", "|---|" + "---|" * len(SHIFT_KEYS)]
        lines += [f"| {r['group']} | " + " | ".join(_mean_sd(r, f"shift_{k}", 1 if k.endswith("_gap_mean") else 3)
                                                    for k in SHIFT_KEYS) + " |"
                  for r in rows if "shift_tydi_multi_map" in r]
    keys = [f"{s}_{m}" for s, m in PREFERENCE_KEYS]
    if any(keys[0] in r for r in rows):  # language preference in the XQuAD-R Multi pool (evaluation.preference)
        lines += ["", "| cell | " + " | ".join(PREFERENCE_TITLES) + " |", "|---|" + "---|" * len(keys)]
        lines += [f"| {r['group']} | " + " | ".join(_mean_sd(r, k) for k in keys) + " |" for r in rows if keys[0] in r]
    worst = [f"{s}_{m}" for s, m in WORST_KEYS]
    if any(worst[0] in r for r in rows):  # the worst-ranked copy in the XQuAD-R Multi pool (evaluation.worst_rank)
        lines += ["", "| cell | Multi Max@R (worst rank of any copy) | Multi Complete@10 |", "|---|---|---|"]
        lines += [f"| {r['group']} | {_mean_sd(r, worst[0], 1)} | {_mean_sd(r, worst[1])} |"
                  for r in rows if worst[0] in r]
    return "\n".join(lines) + "\n"


def same_run_lines(same_run_as: Mapping[str, str]) -> str:
    """The note under a grid's table for each cell that is another cell's run (`Cell.canonical`); '' for none."""
    if not same_run_as:
        return ""
    return "\n" + "".join(f"- {k} is the {v} run (the sampler draws the same batches)\n"
                          for k, v in same_run_as.items())


def significance_markdown(cmps: Sequence[dict[str, Any]]) -> str:
    """B vs A on mAP and bias per setting: A, B, B - A, the questions-only CI and p, and the seed-aware CI."""
    seeded = any("seed_ci_low" in r for c in cmps for r in c["rows"])
    lines = ["| B vs A | setting | A | B | B - A | 95% CI (questions) | p |"
             + (" 95% CI (seeds + questions) |" if seeded else ""),
             "|---|---|---|---|---|---|---|" + ("---|" if seeded else "")]
    for c in cmps:
        for r in c["rows"]:
            if r["metric"] not in SEED_CI_METRICS:
                continue
            line = (f"| {c['run_b']} vs {c['run_a']} | {r['name']} | {r['a']:.4f} | {r['b']:.4f} | "
                    f"{r['diff']:+.4f} | [{r['ci_low']:+.4f}, {r['ci_high']:+.4f}] | {r['p_value']:.4f} |")
            if seeded:
                line += (f" [{r['seed_ci_low']:+.4f}, {r['seed_ci_high']:+.4f}] |" if "seed_ci_low" in r else " - |")
            lines.append(line)
    return "\n".join(lines) + "\n"


def compact_markdown(cmps: Sequence[dict[str, Any]]) -> str:
    """One line per comparison: B - A on the paper's four numbers with the seed-aware 95% interval (the questions-only
    one, marked q, where the two sides share one seed); * where the interval excludes zero."""
    names = ("Mono mAP", "Cross mAP", "Multi mAP", "Bias")
    if any(r["name"] == "Own-lang top-10 share" for c in cmps for r in c["rows"]):
        names += ("Own-lang top-10 share", "Own copy first")
    if any(r["name"] == "Multi Max@R" for c in cmps for r in c["rows"]):
        names += ("Multi Max@R", "Multi Complete@10")
    lines = ["| B vs A | seeds | " + " | ".join(f"{n} B - A [95% CI]" for n in names) + " |",
             "|---|---|" + "---|" * len(names)]
    for c in cmps:
        by = {r["name"]: r for r in c["rows"]}
        cells = []
        for n in names:
            r = by.get(n)
            if r is None:
                cells.append("-")
                continue
            lo, hi, tag = ((r["seed_ci_low"], r["seed_ci_high"], "") if "seed_ci_low" in r
                           else (r["ci_low"], r["ci_high"], " q"))
            d = 1 if n in ("Bias", "Multi Max@R") else 3
            star = "*" if lo > 0 or hi < 0 else ""
            cells.append(f"{r['diff']:+.{d}f}{star} [{lo:+.{d}f}, {hi:+.{d}f}]{tag}")
        seeds = ",".join(map(str, c.get("seeds", [])))
        lines.append(f"| {c['run_b']} vs {c['run_a']} | {seeds} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def shift_significance_markdown(cmps: Sequence[dict[str, Any]]) -> str:
    """B - A on the domain-shift pools with the seed-aware interval, one line per measure."""
    lines = ["| B vs A | seeds | measure | B - A | 95% CI (seeds + queries) |", "|---|---|---|---|---|"]
    for c in cmps:
        for r in c["rows"]:
            d = 2 if r["metric"] == "gap" else 4
            lines.append(f"| {c['run_b']} vs {c['run_a']} | {','.join(map(str, c['seeds']))} | {r['name']} | "
                         f"{r['diff']:+.{d}f} | [{r['ci_low']:+.{d}f}, {r['ci_high']:+.{d}f}] |")
    return "\n".join(lines) + "\n"


def moved_markdown(rows: Sequence[dict[str, Any]]) -> str:
    """Old -> new (change) of the paper's four numbers, per group in both grids (`analysis.grid_stats.moved`)."""
    lines = ["| cell | seeds old / new | Mono mAP old -> new | Cross mAP old -> new | Multi mAP old -> new | "
             "bias old -> new |", "|---|---|---|---|---|---|"]
    for r in rows:
        cells = []
        for setting, metric in SUMMARY_KEYS:
            v = r[f"{setting}_{metric}"]
            d = 1 if metric == "bias" else 3
            cells.append(f"{v['old']:.{d}f} -> {v['new']:.{d}f} ({v['change']:+.{d}f})")
        lines.append(f"| {r['group']} | {len(r['old_seeds'])} / {len(r['new_seeds'])} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
