"""Post-hoc debiasing of a grid's finished cells, so that the two questions users ask are answered on equal footing:
is training still needed once debiasing is applied (trained X vs base + debias), and does debiasing add to
training (X + debias vs X, seed by seed)?

Each cell's model goes through `analysis.debias_ranks.sweep` into `cells/<key>/debias/` (its rank-0 folder `base` is
the undebiased model scored by the same encoding, so every comparison here is within one encoder); the report
compares groups over the seeds both sides have, with the seed-aware intervals of the grid's significance tables.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hybridbatch.analysis.debias_ranks import sweep, versus_trained
from hybridbatch.analysis.significance import Run, compare_seeded, load_run
from hybridbatch.errors import UsageError
from hybridbatch.evaluation.runtimes import DEFAULT_ENCODER, resolve_encoder
from hybridbatch.experiments.grid_report import finished_records, key_of
from hybridbatch.experiments.grid_root import GRID_ROOT, check_grid_root
from hybridbatch.experiments.presets import BASE
from hybridbatch.provenance import provenance, write_json, write_text
from hybridbatch.report.debias import debias_markdown, sweep_markdown
from hybridbatch.report.evaluation import eval_documents
from hybridbatch.report.grid import significance_markdown

DEBIAS_DIR = "debias"
# What `experiment debias-cells` writes into a grid's --out (the accepted layout is the shared `grid_root.GRID_ROOT`)
DEBIAS_CELLS_OUT = dataclasses.replace(GRID_ROOT, command="experiment debias-cells",
                                       writes="cells/<key>/debias/, debias-report.json, debias-report.md")
NONE = "base"  # the sweep's rank-0 folder: the model as it is


def debias_sweep(model_name: str, ranks: Sequence[int], out_dir: Path | str, **options: Any) -> dict[str, Any]:
    """What `hybridbatch debias --ranks` does: `analysis.debias_ranks.sweep` (one eval folder per configuration, with
    its eval.md and pairs.png, and sweep.json), then sweep.md (`report.debias.sweep_markdown`)."""
    body = sweep(model_name, ranks, out_dir, documents=eval_documents, **options)
    write_text(Path(out_dir) / "sweep.md", sweep_markdown(body))
    return body


def write_versus(debiased: Path | str, groups: dict[str, Sequence[Path | str]], out: Path | str,
                 n_boot: int = 2000, n_perm: int = 10000) -> dict[str, Any]:
    """`analysis.debias_ranks.versus_trained` for each named group of trained runs (e.g. {"hybrid": [seed0, seed1,
    seed2]}); writes versus.json and versus.md (the significance-table layout, B = trained, A = debiased) into
    `out`."""
    cmps = []
    for name, runs in groups.items():
        c = versus_trained(debiased, runs, n_boot=n_boot, n_perm=n_perm)
        c["run_a"], c["run_b"], c["trained_runs"] = Path(debiased).name, name, [str(r) for r in runs]
        cmps.append(c)
    body = {"kind": "debias-versus-trained", "debiased": str(debiased), "comparisons": cmps,
            "provenance": provenance(settings={"n_boot": n_boot, "n_perm": n_perm})}
    write_json(Path(out) / "versus.json", body)
    write_text(Path(out) / "versus.md", significance_markdown(cmps))
    return body


def run_debias_cells(out_root: Path | str, groups: Sequence[str], *, ranks: Sequence[int] = (0, 10),
                     lir_ranks: Sequence[int] = (1,), data_dir: str | None = None, max_seq_length: int | None = None,
                     max_per_language: int | None = 300, encoder: str = DEFAULT_ENCODER,
                     log: Callable[[str], None] = print, centre: bool = False) -> list[str]:
    """Run the debias sweep for every finished cell of `groups` that has none yet; returns the keys swept now.
    `encoder`: an `evaluation.runtimes` name ('auto': the measured fastest one here); `centre`: the sweep's
    per-language centring rows too."""
    out_root = check_grid_root(out_root, DEBIAS_CELLS_OUT)
    encoder = resolve_encoder(encoder)
    if 0 not in ranks:
        ranks = (0, *ranks)  # the undebiased model, scored by the same encoding, is every comparison's A side
    done = []
    for rec in finished_records(out_root):
        if rec["group"] not in groups:
            continue
        d = out_root / "cells" / rec["key"]
        if (d / DEBIAS_DIR / "sweep.json").exists():
            continue
        model = rec["preset"]["model"] if rec["group"] == BASE else str(d / "model")
        if rec["group"] != BASE and not (d / "model" / "modules.json").exists():
            raise UsageError(f"{d}: debiasing needs the cell's trained model in {d / 'model'} (removed by "
                             "clean_models, git-ignored); delete its cell.json and re-run the grid to retrain it "
                             "(same seed, same batches)")
        log(f"[{rec['key']}] debias sweep (LSAR ranks {list(ranks)}, LIR ranks {list(lir_ranks)}) ...")
        debias_sweep(model, ranks, d / DEBIAS_DIR, lir_ranks=lir_ranks, centre=centre, data_dir=data_dir,
                     max_seq_length=max_seq_length, max_per_language=max_per_language, encoder=encoder)
        done.append(rec["key"])
    return done


def _methods(sweep_json: Path) -> list[str]:
    return [r["name"] for r in json.loads(sweep_json.read_text(encoding="utf-8"))["rows"]]


def debias_report(out_root: Path | str, groups: Sequence[str], *, n_boot: int = 2000) -> dict[str, Any]:
    """Mean ± std over seeds of every (group, debiasing) and the comparisons; writes debias-report.json / .md into
    a grid's folder (DEBIAS_CELLS_OUT)."""
    out_root = check_grid_root(out_root, DEBIAS_CELLS_OUT)
    seeds_of: dict[str, list[int]] = {}
    for rec in finished_records(out_root):
        if rec["group"] in groups and (out_root / "cells" / rec["key"] / DEBIAS_DIR / "sweep.json").exists():
            seeds_of.setdefault(rec["group"], []).append(int(rec["cell"]["seed"]))
    missing = [g for g in groups if g not in seeds_of]
    if missing:
        raise UsageError(f"{out_root}: no debias sweep for {', '.join(missing)} (run `experiment debias-cells`)")
    first = out_root / "cells" / key_of(groups[0], seeds_of[groups[0]][0]) / DEBIAS_DIR / "sweep.json"
    methods = [m for m in _methods(first) if m != NONE]

    def run(group: str, seed: int, method: str) -> Run:
        return load_run(out_root / "cells" / key_of(group, seed) / DEBIAS_DIR / method)

    rows = []
    for g in groups:
        for m in (NONE, *methods):
            summ = [json.loads((out_root / "cells" / key_of(g, s) / DEBIAS_DIR / m / "eval.json").read_text(
                encoding="utf-8"))["summary"] for s in sorted(seeds_of[g])]
            row: dict[str, Any] = {"group": g, "debias": m if m != NONE else "none", "seeds": sorted(seeds_of[g])}
            for k, (setting, metric) in {"mono_map": ("mono", "map"), "cross_map": ("cross", "map"),
                                         "multi_map": ("multi", "map"), "bias": ("multi", "bias")}.items():
                v = np.array([float(x[setting][metric]) for x in summ])
                row[k], row[f"{k}_std"] = float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0
            rows.append(row)
    cmps = []
    trained = [g for g in groups if g != BASE]
    for g in groups:  # does debiasing add? X + debias (B) vs X (A), seed by seed
        seeds = sorted(seeds_of[g])
        for m in methods:
            c = compare_seeded([run(g, s, NONE) for s in seeds], [run(g, s, m) for s in seeds])
            c["run_a"], c["run_b"], c["seeds"] = g, f"{g}+{m}", seeds
            cmps.append(c)
    if BASE in seeds_of:  # is training still needed? trained X (B) vs base + debias (A), and X + debias vs it
        for g in trained:
            seeds = sorted(seeds_of[g])
            for m in methods:
                base_runs = [run(BASE, seeds_of[BASE][0], m)] * len(seeds)
                for b_method in (NONE, m):
                    c = compare_seeded(base_runs, [run(g, s, b_method) for s in seeds])
                    c["run_a"], c["run_b"] = f"{BASE}+{m}", g if b_method == NONE else f"{g}+{m}"
                    c["seeds"] = seeds
                    cmps.append(c)
    body = {"kind": "debias-cells", "groups": list(groups), "seeds": seeds_of, "methods": methods, "rows": rows,
            "comparisons": cmps, "provenance": provenance(settings={"n_boot": n_boot})}
    write_json(out_root / "debias-report.json", body)
    write_text(out_root / "debias-report.md", debias_markdown(body))
    return body
