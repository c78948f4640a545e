"""Reports over the finished cells of a results folder: never trains, so it can run while a grid is still filling.

Why a separate step: a grid on a 2-core CPU takes several sessions, and the comparisons the research questions need
(seed-aware intervals on XQuAD-R *and* on the domain-shift pools, what moved against an older grid) must be drawn
from whatever seeds have finished, on equal footing: a comparison uses only the seeds both sides have.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hybridbatch.analysis.grid_stats import aggregate, moved
from hybridbatch.analysis.significance import seed_bootstrap
from hybridbatch.errors import UsageError
from hybridbatch.experiments.cells import test_articles
from hybridbatch.experiments.grid import significance
from hybridbatch.experiments.grid_root import GRID_ROOT, check_grid_root
from hybridbatch.experiments.presets import BASE, check_stem
from hybridbatch.provenance import provenance, write_json, write_text
from hybridbatch.report.grid import (
    compact_markdown,
    grid_markdown,
    moved_markdown,
    shift_significance_markdown,
    significance_markdown,
)

SHIFT_TASKS = ("tydi", "tatoeba")
# (row name, task, per-query metric): reciprocal rank in the multilingual pool = AP with one relevant item; P@1; and
# the gap = candidates of other segments ranked above the relevant item (the pool's language bias, 0 is unbiased)
SHIFT_ROWS = (("TyDi multi-pool mAP", "tydi", "rr"), ("TyDi gap (bias)", "tydi", "gap"),
              ("Tatoeba multi-pool P@1", "tatoeba", "p1"), ("Tatoeba multi-pool mAP", "tatoeba", "rr"),
              ("Tatoeba gap (bias)", "tatoeba", "gap"))


def finished_records(out_root: Path) -> list[dict[str, Any]]:
    """cell.json of every finished cell, in key order."""
    files = sorted((Path(out_root) / "cells").glob("*/cell.json"))
    if not files:
        raise UsageError(f"{out_root}: no finished cells (cells/*/cell.json)")
    return [json.loads(f.read_text(encoding="utf-8")) for f in files]


def seeds_by_group(records: Sequence[dict[str, Any]]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for r in records:
        out.setdefault(r["group"], []).append(int(r["cell"]["seed"]))
    return {g: sorted(s) for g, s in out.items()}


def key_of(group: str, seed: int) -> str:
    return BASE if group == BASE else f"{group}-seed{seed}"


def shift_matrix(npz: Path, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """(languages, queries) array of one per-query shift metric, NaN outside each query's language (so `macro` is
    the mean over query languages of the per-language mean, as the shift summary), and the query ids."""
    if not npz.exists():
        raise UsageError(f"{npz}: missing (the cell was run without --shift)")
    d = np.load(npz)
    rank, own = d["rank_multi"].astype(np.float64), d["rank_own"].astype(np.float64)
    vals = {"rr": 1.0 / rank, "p1": (rank == 1).astype(np.float64), "gap": rank - own}[metric]
    langs, li = np.unique(d["qlang"], return_inverse=True)
    m = np.full((len(langs), len(vals)), np.nan)
    m[li, np.arange(len(vals))] = vals
    return m, d["qid"]


def shift_significance(out_root: Path, reference: str, others: Sequence[str], seeds_of: dict[str, list[int]], *,
                       n_boot: int = 2000) -> list[dict[str, Any]]:
    """reference vs each other group on the shift pools: two-level (seeds, queries) bootstrap over the seeds both
    groups have, as `significance` does for XQuAD-R."""
    out = []
    for other in others:
        seeds = _common(seeds_of, reference, other)
        if not seeds:
            continue
        rows = []
        for name, task, metric in SHIFT_ROWS:
            sides = []
            for group in (other, reference):
                mats = []
                for s in seeds if group != BASE else seeds[:1]:
                    m, qid = shift_matrix(out_root / "cells" / key_of(group, s) / "shift" / f"per_query_{task}.npz",
                                          metric)
                    mats.append((m, qid))
                sides.append(mats)
            q0 = sides[0][0][1]
            if any(not np.array_equal(q, q0) for side in sides for _, q in side):
                raise UsageError(f"{out_root}: {task} queries differ between {reference} and {other} (another --limit?)")
            diff, lo, hi = seed_bootstrap([m for m, _ in sides[0]], [m for m, _ in sides[1]], n_boot=n_boot)
            rows.append({"name": name, "task": task, "metric": metric, "diff": diff, "ci_low": lo, "ci_high": hi})
        out.append({"run_a": other, "run_b": reference, "seeds": seeds, "rows": rows})
    return out


def _common(seeds_of: dict[str, list[int]], a: str, b: str) -> list[int]:
    if a == BASE:
        return seeds_of.get(b, [])
    if b == BASE:
        return seeds_of.get(a, [])
    return sorted(set(seeds_of.get(a, [])) & set(seeds_of.get(b, [])))


def _has_shift(out_root: Path, group: str, seeds: Sequence[int]) -> bool:
    return all((out_root / "cells" / key_of(group, s) / "shift").exists() for s in seeds)


# What `experiment report` writes into a grid's --out (the accepted layout is the shared `grid_root.GRID_ROOT`)
REPORT_OUT = dataclasses.replace(GRID_ROOT, command="experiment report", writes="<name>.json, <name>.md")


def report(out_root: Path, references: Sequence[str], *, against: Sequence[str] | None = None,
           old: Path | None = None, n_boot: int = 2000, title: str | None = None,
           name: str = "report") -> dict[str, Any]:
    """Table of every finished group (mean ± std over its seeds), each reference group vs the others (XQuAD-R and,
    where the cells have them, the shift pools), and what moved against an older grid. Writes <name>.json/.md, so
    several reports (samplers, loss variants) can live in one results folder (a grid's: REPORT_OUT)."""
    check_stem(name)
    out_root = check_grid_root(out_root, REPORT_OUT)
    records = finished_records(out_root)
    seeds_of = seeds_by_group(records)
    rows = aggregate(records)
    md = [grid_markdown(rows, title or f"{out_root.name}: finished cells"), ""]
    body: dict[str, Any] = {"kind": "grid-report", "rows": rows, "seeds": seeds_of, "comparisons": {}}
    splits = {((r.get("provenance") or {}).get("data") or {}).get("split", "test") for r in records}
    tested_on = test_articles("test" if splits <= {"test"} else None)
    for ref in [*references, *(against or ())]:
        if ref not in seeds_of:
            raise UsageError(f"{out_root}: no finished cell of {ref!r}; groups: {', '.join(seeds_of)}")
    for ref in references:
        others = [g for g in (against or seeds_of) if g != ref]
        xq = []
        for other in others:
            seeds = _common(seeds_of, ref, other)
            if seeds:
                xq += significance(out_root, ref, [other], seeds, key_of)
        # the shift pools are compared only between groups whose every cell ran them (loss variants skip them)
        shifted = [g for g in [ref, *others] if _has_shift(out_root, g, seeds_of[g])]
        sh = (shift_significance(out_root, ref, [g for g in shifted if g != ref], seeds_of, n_boot=n_boot)
              if ref in shifted else [])
        body["comparisons"][ref] = {"xquad-r": xq, "shift": sh}
        md += [f"### {ref} (B) vs each other cell (A), {tested_on}", "", compact_markdown(xq), "",
               significance_markdown(xq)]
        if sh:
            md += [f"### {ref} (B) vs each other cell (A), domain-shift pools", "", shift_significance_markdown(sh)]
    if old is not None:
        old_rows = json.loads((Path(old) / "grid.json").read_text(encoding="utf-8"))["rows"]
        body["moved"] = moved(old_rows, rows)
        md += [f"### What moved against {old}", "", moved_markdown(body["moved"])]
    body["provenance"] = provenance(seeds=sorted({s for v in seeds_of.values() for s in v}))
    write_json(out_root / f"{name}.json", body)
    write_text(out_root / f"{name}.md", "\n".join(md))
    return body

