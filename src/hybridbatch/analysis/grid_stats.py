"""Statistics over the seeds of a grid's cells: the mean and sample std of each group's numbers (a group = the cells
that differ only in their seed), and what moved between two grids. They read the cells' records (`cell.json`, as
`experiments.cells.run_cell` writes them) and give the rows a grid's table (`report.grid`) and JSON hold."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

# the paper's four numbers: (setting, metric) of a cell's XQuAD-R summary
SUMMARY_KEYS = (("mono", "map"), ("cross", "map"), ("multi", "map"), ("multi", "bias"))
# language preference in the XQuAD-R Multi pool (evaluation.preference), for cells evaluated since it was measured
PREFERENCE_KEYS = (("multi", "own_top10"), ("multi", "own_first"), ("multi", "own_gap"), ("multi", "ndcg_spread"))
# the worst-ranked copy in the XQuAD-R Multi pool (evaluation.worst_rank), for cells evaluated since it was measured
WORST_KEYS = (("multi", "max_rank"), ("multi", "complete10"))
# the domain-shift columns (evaluation.shift): the multilingual pool, the per-language pools and where the relevant
# item lands (gap = candidates of other segments ranked above it: the pool's language bias)
SHIFT_KEYS = ("tydi_multi_map", "tydi_multi_ndcg10", "tydi_own_map", "tydi_gap_mean", "tydi_miss1_other_lang",
              "tatoeba_multi_r1", "tatoeba_gap_mean", "tatoeba_own_r1", "tatoeba_miss1_query_lang")


def _get(summary: dict[str, Any], setting: str, metric: str) -> float:
    v = summary.get(setting, {}).get(metric)
    return float("nan") if v is None else float(v)


def _mean_std(row: dict[str, Any], key: str, vals: np.ndarray) -> None:
    row[key] = float(np.mean(vals))
    row[f"{key}_std"] = float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0


def aggregate(records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean and sample std over seeds for each group (sampler, alpha, loss, scale)."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        groups.setdefault(r["group"], []).append(r)
    rows = []
    for g, rs in groups.items():
        row: dict[str, Any] = {"group": g, **{k: rs[0]["cell"][k] for k in ("sampler", "alpha", "loss", "scale")},
                               "adv_weight": rs[0]["cell"].get("adv_weight"),
                               "seeds": [r["cell"]["seed"] for r in rs]}
        for setting, metric in SUMMARY_KEYS:
            _mean_std(row, f"{setting}_{metric}", np.array([_get(r["xquad-r"], setting, metric) for r in rs]))
        for keys in (PREFERENCE_KEYS, WORST_KEYS):
            for setting, metric in keys if all(metric in r["xquad-r"].get(setting, {}) for r in rs) else ():
                _mean_std(row, f"{setting}_{metric}", np.array([_get(r["xquad-r"], setting, metric) for r in rs]))
        if any("tydiqa-goldp" in r for r in rs):  # the first seed of each run command (small preset)
            vals = np.array([float(r["tydiqa-goldp"].get("ndcg10", float("nan"))) for r in rs if "tydiqa-goldp" in r])
            row["tydi_ndcg10"] = float(np.mean(vals))
            if len(vals) > 1:
                row["tydi_ndcg10_std"] = float(np.std(vals, ddof=1))
        for k in SHIFT_KEYS if all("shift" in r for r in rs) else ():
            _mean_std(row, f"shift_{k}", np.array([float(r["shift"].get(k, float("nan"))) for r in rs]))
        rows.append(row)
    return rows


def moved(old_rows: Sequence[dict[str, Any]], new_rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per group in both grids: old and new mean of the paper's four numbers and the change."""
    old = {r["group"]: r for r in old_rows}
    out = []
    for r in new_rows:
        o = old.get(r["group"])
        if o is None:
            continue
        row: dict[str, Any] = {"group": r["group"], "old_seeds": o["seeds"], "new_seeds": r["seeds"]}
        for setting, metric in SUMMARY_KEYS:
            k = f"{setting}_{metric}"
            row[k] = {"old": o.get(k), "new": r.get(k), "change": r.get(k, math.nan) - o.get(k, math.nan)}
        out.append(row)
    return out
