"""Grids of cells (`experiments.presets`: samplers x alphas x losses x scales x seeds), each trained and evaluated
once (`experiments.cells`), their table (`analysis.grid_stats` -> `report.grid`), the seed-aware significance
between groups, the paper's comparison as a preset and the README demo. Stop a grid any time: re-running it resumes.
"""

from __future__ import annotations

import dataclasses
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from hybridbatch.analysis.grid_stats import aggregate
from hybridbatch.analysis.significance import Run, compare, compare_seeded, load_run, write_compare
from hybridbatch.data.lookup import dataset_dir, load_corpus
from hybridbatch.experiments.cells import check_cells, run_cell
from hybridbatch.experiments.presets import BASE, Cell, Preset, check_stem, expand_grid, make_preset
from hybridbatch.models.embedded import build_embedded_model
from hybridbatch.experiments.grid_root import GRID_ROOT, check_grid_root
from hybridbatch.provenance import provenance, write_json, write_text
from hybridbatch.outputs import OutFolder
from hybridbatch.report.compare import write_compare_report
from hybridbatch.report.grid import grid_markdown, same_run_lines, significance_markdown
from hybridbatch.report.plots import plot_alpha, plot_side_by_side
from hybridbatch.sampling.samplers import DEFAULT_SAMPLER, takes_alpha

# What each command writes into a grid's --out (the accepted layout is the shared `grid_root.GRID_ROOT`)
SWEEP_OUT = dataclasses.replace(GRID_ROOT, command="sweep",
                                writes="cells/, <name>.json, <name>.md, alpha.png / <name>-alpha.png")
PAPER_OUT = dataclasses.replace(GRID_ROOT, command="experiment paper",
                                writes="cells/, grid.json, grid.md, significance*.json, significance*.md")
DEMO_OUT = dataclasses.replace(GRID_ROOT, command="demo",
                               writes="cells/, compare/, grid.json, grid.md, base_vs_hybrid.png")


def check_inputs(out_root: Path, data_dir: str | None, tydi: bool, shift: bool = False, *,
                 spec: OutFolder = SWEEP_OUT) -> None:
    """Fail before any model is built or trained: the output folder must be a grid's folder we can write
    (`check_grid_root`), and the data must be there."""
    check_grid_root(out_root, spec)
    load_corpus("xquad-r", data_dir, split="test")
    if tydi or shift:
        load_corpus("tydiqa-goldp", data_dir)
    if shift:
        dataset_dir("tatoeba-laser", data_dir)


def run_grid(cells: Sequence[Cell], preset: Preset, out_root: Path, data_dir: str | None, *, title: str,
             log: Callable[[str], None] = print, name: str = "grid") -> dict[str, Any]:
    """Run (or reuse) every cell, then write <name>.json, <name>.md and, when alpha varies, the alpha plot
    (alpha.png; <name>-alpha.png for another name, so sweeps sharing one cells/ folder keep their own tables)."""
    check_stem(name)
    check_cells(list(cells), preset, data_dir)
    check_inputs(out_root, data_dir, preset.tydi, preset.shift)
    t0 = time.perf_counter()
    records = []
    for i, cell in enumerate(cells, 1):
        log(f"cell {i}/{len(cells)}: {cell.key}")
        records.append(run_cell(cell, preset, out_root, data_dir, log=log))
    rows = aggregate(records)
    same = {r["key"]: r["same_run_as"] for r in records if "same_run_as" in r}
    md = grid_markdown(rows, title) + same_run_lines(same)
    body = {"kind": "grid", "title": title, "preset": dataclasses.asdict(preset), "rows": rows,
            "cells": [r["key"] for r in records], "same_run_as": same, "wall_time_s": time.perf_counter() - t0,
            "provenance": provenance(model=preset.model, seeds=list(preset.seeds))}
    write_json(out_root / f"{name}.json", body)
    write_text(out_root / f"{name}.md", md)
    if len({r["alpha"] for r in rows if r["sampler"] == DEFAULT_SAMPLER}) > 1:  # an alpha sweep of the method
        plot_alpha(rows, out_root / ("alpha.png" if name == "grid" else f"{name}-alpha.png"))
    return body


def significance(out_root: Path, reference: str, others: Sequence[str], seeds: Sequence[int],
                 key_of: Callable[[str, int], str], dataset: str = "xquad-r") -> list[dict[str, Any]]:
    """reference vs each other group: per-query scores averaged over seeds, paired bootstrap + randomisation; with
    several seeds also a two-level bootstrap CI (`analysis.significance.compare_seeded`) for mAP and bias."""

    def runs_of(group: str) -> list[Run]:
        return [load_run(out_root / "cells" / key_of(group, s) / dataset) for s in seeds]

    ref = runs_of(reference)
    out = []
    for other in others:
        cmp = compare_seeded(runs_of(other), ref)
        cmp["run_a"], cmp["run_b"], cmp["seeds"] = other, reference, list(seeds)
        out.append(cmp)
    return out


PAPER_SAMPLERS = ("en", "xx", "xy", "hybrid", "hybrid-multi")
# ours, beyond the paper: also compared against every other sampler
OWN_SAMPLERS = ("hybrid-multi", "bilingual", "curriculum")


def paper(preset: Preset, out_root: Path, data_dir: str | None, *, samplers: Sequence[str] = PAPER_SAMPLERS,
          log: Callable[[str], None] = print) -> dict[str, Any]:
    """Zero-shot base + each sampler (the mixing ones at alpha 0.5) x seeds; then the method (hybrid) vs each other
    sampler (significance.md) and each of our own samplers vs each other sampler (significance-<name>.md)."""
    expand_grid(samplers, [0.5], ["plain"], [20.0], preset.seeds)  # validates names before any work
    check_grid_root(out_root, PAPER_OUT)

    def cell(sampler: str, seed: int) -> Cell:
        return Cell(sampler, 0.5 if takes_alpha(sampler) else None, "plain", 20.0, seed)

    cells = [Cell(BASE)] + [cell(s, seed) for s in samplers for seed in preset.seeds]
    body = run_grid(cells, preset, out_root, data_dir, title=f"paper ({preset.name} preset)", log=log)

    def key_of(sampler: str, seed: int) -> str:
        return BASE if sampler == BASE else cell(sampler, seed).key

    for ref in [s for s in (DEFAULT_SAMPLER, *OWN_SAMPLERS) if s in samplers]:
        cmps = significance(out_root, ref, [s for s in samplers if s != ref] + [BASE], preset.seeds, key_of)
        name = "significance" if ref == DEFAULT_SAMPLER else f"significance-{ref}"
        write_json(out_root / f"{name}.json", {"kind": "significance", "reference": ref, "comparisons": cmps,
                                               "provenance": provenance(model=preset.model)})
        write_text(out_root / f"{name}.md", significance_markdown(cmps))
        body[name] = cmps
    return body


# `make demo` on 2 CPU cores in about 5 minutes: the demo preset with fewer, smaller steps and one validation
DEMO_SHORT = {"max_steps": 30, "batch_size": 16, "eval_steps": 30}


def demo_preset(long: bool = False, device: str = "auto", precision: str = "auto") -> Any:
    """The demo's settings: short (`DEMO_SHORT`, the default) or the demo preset itself (`long`)."""
    preset = make_preset("demo", device=device, precision=precision)
    return preset if long else dataclasses.replace(preset, name="demo-short", **DEMO_SHORT)


def demo(out_root: Path, data_dir: str | None, *, log: Callable[[str], None] = print, device: str = "auto",
         precision: str = "auto", long: bool = False) -> dict[str, Any]:
    """The README's main job: zero-shot base vs a short hybrid run, both on the XQuAD-R test articles, with the
    significance of the difference and its plots (`long`: the demo preset's 60 steps of batch 32). Reuses
    finished pieces when re-run."""
    preset = demo_preset(long, device, precision)
    check_inputs(out_root, data_dir, preset.tydi, spec=DEMO_OUT)
    build_embedded_model()  # once, with its own progress message, before the long work starts
    cells = [Cell(BASE), Cell(DEFAULT_SAMPLER, 0.5, "plain", 20.0, 0)]
    body = run_grid(cells, preset, out_root, data_dir, title="demo: zero-shot base vs hybrid (alpha 0.5)", log=log)
    cmp = compare(out_root / "cells" / cells[0].key / "xquad-r", out_root / "cells" / cells[1].key / "xquad-r")
    write_compare(cmp, out_root / "compare")
    write_compare_report(cmp, out_root / "compare")
    plot_side_by_side(body["rows"], out_root / "base_vs_hybrid.png")
    body["compare"] = cmp
    return body


def clean_models(out_root: Path) -> int:
    """Delete trained weights of finished cells (results stay); returns the number of folders removed."""
    n = 0
    for cell_json in out_root.glob("cells/*/cell.json"):
        m = cell_json.parent / "model"
        if m.exists():
            shutil.rmtree(m)
            n += 1
    return n
