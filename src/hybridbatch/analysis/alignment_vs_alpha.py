"""Alignment against alpha: the alignment measures of `analysis.alignment` (parallel cosine, CLSim, debiased CKA) on
held-out items for every cell (alpha x seed) of a sweep, beside each cell's Multi mAP and language bias, and whether
alignment predicts them: Spearman's rank correlation over cells with a bootstrap 95% interval (over cells).

Held out: XQuAD-R's 12 test articles (`split="test"`; the sweep trains on the other 36) and Tatoeba (never trained
on). The sweep layout is the one `experiments.grid.run_grid` writes: OUT/grid.json (rows: group, sampler, alpha,
seeds; same_run_as: alias cell -> the cell whose run it is) and OUT/cells/<key>/{cell.json, model/}.

Here: reading the sweep, the statistics and `measure_sweep` (-> alignment_vs_alpha.json); `report.alignment` draws
the table and plot, `experiments.alignment.alignment_vs_alpha` does both.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hybridbatch.analysis.alignment_run import Progress, align
from hybridbatch.data.parallel import load_sources
from hybridbatch.errors import ResultsError, UsageError
from hybridbatch.models.loading import load_model
from hybridbatch.provenance import jsonable, provenance, write_json
from hybridbatch.outputs import OutFolder, check_out_folder
from hybridbatch.sampling.samplers import alpha_of

ALIGN_MEASURES = ("parallel_cosine", "clsim", "cka_debiased")
TARGETS = {"multi_map": "Multi mAP", "multi_bias": "bias (rank distance)"}
DEFAULT_SOURCES = ("xquad-r-questions", "xquad-r-answers", "tatoeba")
# What `experiment alignment-vs-alpha` writes into its --out (`check_out_folder` refuses one holding anything else)
ALIGNMENT_VS_ALPHA_OUT = OutFolder(
    "experiment alignment-vs-alpha", "an alignment-vs-alpha study",
    "alignment_vs_alpha.json, alignment_vs_alpha.md, alignment_vs_alpha.png, cells/",
    ("alignment_vs_alpha.json", "alignment_vs_alpha.md", "alignment_vs_alpha.png", "cells/"))


@dataclass(frozen=True)
class SweepCell:
    """One run of a sweep: `key` as the grid names it, `folder` the cells/ folder holding its run (an alias such as
    hybrid alpha 1 is the xx run)."""

    key: str
    folder: str
    group: str
    sampler: str
    alpha: float | None
    seed: int
    multi_map: float
    multi_bias: float
    shift: dict[str, float]


def _read_json(path: Path, what: str) -> dict[str, Any]:
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ResultsError(f"{path}: no {what} here") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ResultsError(f"{path}: cannot read {what} ({e})") from None
    if not isinstance(body, dict):
        raise ResultsError(f"{path}: not a {what} (expected a JSON object)")
    return body


def sweep_table(sweep: Path | str) -> tuple[Path, Path]:
    """(folder holding cells/, its table): `sweep` is a sweep folder (its grid.json) or one table of it
    (`sweep --name`), since several sweeps may share one folder of cells."""
    sweep = Path(sweep)
    if sweep.is_file():
        return sweep.parent, sweep
    if not sweep.is_dir():
        raise UsageError(f"--sweep {sweep}: no such folder or file (give a folder written by `hybridbatch sweep` "
                         f"or its <name>.json)")
    return sweep, sweep / "grid.json"


def sweep_cells(sweep: Path | str) -> list[SweepCell]:
    """Every distinct run of a sweep folder (or table), with its alpha (xx = 1, xy = 0: the alphas at which the hybrid
    sampler draws their batches, `sampling.samplers.alpha_of`), seed, Multi mAP and bias from its cell.json, and its shift numbers if the sweep ran them."""
    sweep, table = sweep_table(sweep)
    grid = _read_json(table, f"{table.name} (written by `hybridbatch sweep`)")
    if grid.get("kind") != "grid" or not isinstance(grid.get("rows"), list):
        raise ResultsError(f"{table}: not a sweep's table (kind={grid.get('kind')!r})")
    same = grid.get("same_run_as") or {}
    cells: dict[str, SweepCell] = {}
    for i, row in enumerate(grid["rows"]):
        try:
            group, sampler, alpha, seeds = row["group"], row["sampler"], row.get("alpha"), row["seeds"]
        except (KeyError, TypeError):
            raise ResultsError(f"{table}: rows[{i}] lacks group / sampler / seeds") from None
        if alpha is None:
            alpha = alpha_of(sampler)
        for seed in seeds:
            key = f"{group}-seed{seed}"
            folder = same.get(key, key)
            if folder in cells:
                continue
            rec = _read_json(sweep / "cells" / folder / "cell.json", "cell.json")
            multi = (rec.get("xquad-r") or {}).get("multi") or {}
            if "map" not in multi or "bias" not in multi:
                raise ResultsError(f"{sweep / 'cells' / folder / 'cell.json'}: xquad-r.multi.map / bias missing")
            cells[folder] = SweepCell(key, folder, group, sampler, None if alpha is None else float(alpha), int(seed),
                                      float(multi["map"]), float(multi["bias"]), dict(rec.get("shift") or {}))
    if not cells:
        raise ResultsError(f"{table}: no cells")
    return list(cells.values())


# ---- pure statistics ------------------------------------------------------------------------------------------------


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman's rho = Pearson correlation of the average ranks (ties share their mean rank). NaN when either side
    is constant (no order to correlate) or fewer than 3 pairs."""
    from scipy.stats import rankdata

    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if len(x) != len(y):
        raise ValueError(f"x and y must have the same length: {len(x)} != {len(y)}")
    if len(x) < 3:
        return math.nan
    rx, ry = rankdata(x) - (len(x) + 1) / 2, rankdata(y) - (len(y) + 1) / 2
    den = math.sqrt(float(rx @ rx) * float(ry @ ry))
    return float(rx @ ry / den) if den > 0 else math.nan


def bootstrap_spearman(x: Sequence[float], y: Sequence[float], *, n_boot: int = 10000, confidence: float = 0.95,
                       seed: int = 0) -> tuple[float, float, int]:
    """Percentile interval of Spearman's rho over `n_boot` resamples of the cells (pairs drawn with replacement).
    Resamples where one side is constant have no rho and are dropped; returns (low, high, resamples kept)."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    rng = np.random.default_rng(seed)
    n = len(x)
    vals = np.array([spearman(x[i], y[i]) for i in rng.integers(0, n, size=(n_boot, n))]) if n else np.array([])
    return _percentile_interval(vals, confidence)


def _percentile_interval(vals: np.ndarray, confidence: float) -> tuple[float, float, int]:
    """(low, high, resamples kept) of the resampled rhos; NaN ones (a constant side) are dropped."""
    vals = vals[~np.isnan(vals)]
    if not len(vals):
        return math.nan, math.nan, 0
    a = 1.0 - confidence
    lo, hi = np.quantile(vals, [a / 2, 1 - a / 2])
    return float(lo), float(hi), int(len(vals))


def within_groups(x: Sequence[float], y: Sequence[float], groups: Sequence[Any]) -> float:
    """Spearman's rho of x and y after subtracting each group's mean from both (groups of one cell dropped): whether
    alignment predicts the target *beyond* alpha, since over all cells both may just follow alpha."""
    x, y, g = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64), np.asarray(groups)
    keep = np.array([np.sum(g == v) > 1 for v in g], dtype=bool)
    x, y, g = x[keep], y[keep], g[keep]
    for v in np.unique(g):
        x[g == v] -= x[g == v].mean()
        y[g == v] -= y[g == v].mean()
    return spearman(x, y)


def bootstrap_within(x: Sequence[float], y: Sequence[float], groups: Sequence[Any], *, n_boot: int = 10000,
                     confidence: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Percentile interval of `within_groups`, resampling cells within each group (the design keeps its alphas)."""
    x, y, g = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64), np.asarray(groups)
    rng = np.random.default_rng(seed)
    members = [np.flatnonzero(g == v) for v in np.unique(g)]
    vals = []
    for _ in range(n_boot):
        idx = np.concatenate([rng.choice(m, size=len(m)) for m in members]) if members else np.array([], int)
        vals.append(within_groups(x[idx], y[idx], g[idx]))
    return _percentile_interval(np.array(vals), confidence)[:2]


def correlations(rows: list[dict[str, Any]], measures: Sequence[str], targets: Sequence[str], *, n_boot: int = 10000,
                 seed: int = 0) -> list[dict[str, Any]]:
    """For each alignment column x target column: rho over the cells where both are finite, the scipy cross-check,
    and the bootstrap interval; and the same within alpha (`within_groups`), with its own interval."""
    from scipy.stats import spearmanr

    out = []
    for m in measures:
        for t in targets:
            pairs = [(r[m], r[t], r.get("alpha")) for r in rows if _finite(r.get(m)) and _finite(r.get(t))]
            x, y = np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])
            g = np.array([-1.0 if p[2] is None else float(p[2]) for p in pairs])
            rho = spearman(x, y)
            ref = float(spearmanr(x, y).statistic) if len(x) >= 3 and np.ptp(x) > 0 and np.ptp(y) > 0 else math.nan
            lo, hi, kept = bootstrap_spearman(x, y, n_boot=n_boot, seed=seed)
            wlo, whi = bootstrap_within(x, y, g, n_boot=n_boot, seed=seed)
            out.append({"measure": m, "target": t, "n_cells": len(x), "rho": rho, "rho_scipy": ref,
                        "ci_low": lo, "ci_high": hi, "n_boot": n_boot, "n_boot_kept": kept,
                        "rho_within_alpha": within_groups(x, y, g), "within_ci_low": wlo, "within_ci_high": whi})
    return out


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v)


# ---- measuring the cells --------------------------------------------------------------------------------------------


def _measure_cell(cell: SweepCell, model_dir: Path, data: dict[str, Any], cache_file: Path, settings: dict[str, Any],
                  *, batch_size: int, max_seq_length: int | None, progress: Progress | None,
                  ) -> dict[str, dict[str, float]]:
    """Macro alignment per source for one cell's model; reused from `cache_file` when made with the same settings."""
    if cache_file.exists():
        old = json.loads(cache_file.read_text(encoding="utf-8"))
        if old.get("settings") == settings:
            return old["macro"]
    model = load_model(str(model_dir), max_seq_length=max_seq_length)
    res = align(model, sources=list(data), loaded=data, batch_size=batch_size, progress=progress,
                model_name=str(model_dir), split=settings["split"])
    macro = {src: res.macro(src) for src in res.pairs}
    write_json(cache_file, {"kind": "hybridbatch.cell-alignment", "key": cell.key, "model": str(model_dir),
                            "settings": settings, "macro": macro, "align_provenance": res.provenance,
                            "provenance": provenance(model=str(model_dir), seed=cell.seed, settings=settings)})
    return macro


def measure_sweep(sweep: Path | str, out_dir: Path | str, *, data_dir: Path | str | None = None,
                  sources: Sequence[str] = DEFAULT_SOURCES, split: str = "test", limit: int | None = None,
                  batch_size: int = 32, max_seq_length: int | None = None, n_boot: int = 10000, seed: int = 0,
                  progress: Progress | None = None, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Measure every cell's model and correlate alignment with Multi mAP and bias; writes
    OUT/alignment_vs_alpha.json (`report.alignment` draws its table and plot). Per-cell results are kept in
    OUT/cells/<folder>/alignment.json, so a killed run resumes. The sweep folder is only read; OUT must be new, empty
    or hold such a study (ALIGNMENT_VS_ALPHA_OUT), checked before any model is loaded."""
    t0 = time.perf_counter()
    cells = sweep_cells(sweep)
    sweep, out = sweep_table(sweep)[0], check_out_folder(out_dir, ALIGNMENT_VS_ALPHA_OUT)
    missing = [c.folder for c in cells if not (sweep / "cells" / c.folder / "model" / "modules.json").exists()]
    if missing:
        raise ResultsError(f"{sweep / 'cells'}: no trained model in {len(missing)} of {len(cells)} cells "
                           f"({', '.join(missing[:4])}{' ...' if len(missing) > 4 else ''}); sweeps keep weights in "
                           f"cells/<key>/model/ unless cleaned (they are git-ignored): delete those cells' cell.json "
                           f"and re-run the sweep to retrain them (same seed, same batches)")
    data = load_sources(sources, data_dir, limit, split)
    settings = {"sources": list(data), "split": split, "limit": limit, "max_seq_length": max_seq_length,
                "data": {src: checksum for src, (_, checksum, _) in data.items()}}
    rows = []
    for i, c in enumerate(cells, 1):
        log(f"cell {i}/{len(cells)}: {c.key} (alpha {c.alpha}, seed {c.seed})")
        macro = _measure_cell(c, sweep / "cells" / c.folder / "model", data,
                              out / "cells" / c.folder / "alignment.json", settings, batch_size=batch_size,
                              max_seq_length=max_seq_length, progress=progress)
        row: dict[str, Any] = {"key": c.key, "folder": c.folder, "group": c.group, "sampler": c.sampler,
                               "alpha": c.alpha, "seed": c.seed, "multi_map": c.multi_map, "multi_bias": c.multi_bias}
        for src, vals in macro.items():
            row |= {f"{src}:{m}": vals[m] for m in ALIGN_MEASURES}
        row |= {f"shift:{k}": v for k, v in c.shift.items()}
        rows.append(row)
    measures = [f"{src}:{m}" for src in data for m in ALIGN_MEASURES]
    corr = correlations(rows, measures, list(TARGETS), n_boot=n_boot, seed=seed)
    body = {"kind": "hybridbatch.alignment-vs-alpha", "sweep": str(sweep), "rows": rows, "correlations": corr,
            "measures": measures, "targets": list(TARGETS),
            "method": {"rho": "Spearman over cells (one cell = one trained model: alpha x seed)",
                       "interval": f"percentile bootstrap over cells, {n_boot} resamples, seed {seed}",
                       "cross_check": "scipy.stats.spearmanr", "held_out": f"XQuAD-R {split} articles; Tatoeba"},
            "provenance": provenance(sweep=str(sweep), settings=settings, seconds=time.perf_counter() - t0)}
    write_json(out / "alignment_vs_alpha.json", jsonable(body))
    return body
