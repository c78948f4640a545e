"""Learning curves on the test set (issue 30 item 4): the weight snapshots a cell kept along its run
(`model/snapshots/step-<n>`, `Preset.snapshot_steps`) evaluated on XQuAD-R exactly as the cell's final model was,
so a reader sees whether and when the samplers part. The chosen checkpoint's numbers come from the cell itself.

The checkpoint rule never reads these numbers: they are drawn after training, for the report only. Each snapshot's
evaluation is kept in `cells/<key>/curve/step-<n>/` and reused, so the command resumes.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from hybridbatch.data.lookup import load_corpus
from hybridbatch.errors import UsageError
from hybridbatch.evaluation.lareqa import evaluate_lareqa
from hybridbatch.evaluation.runtimes import resolve_encoder
from hybridbatch.experiments.grid_root import GRID_ROOT, check_grid_root
from hybridbatch.experiments.presets import Preset
from hybridbatch.models.loading import load_model
from hybridbatch.provenance import provenance, write_json, write_text
from hybridbatch.report.curves import plot_panels
from hybridbatch.report.evaluation import write_eval
from hybridbatch.report.format import markdown_table

# (summary path, column name): what each curve shows; the rank distance is the mean worst-minus-best rank
CURVE_METRICS = (("mono.map", "Mono mAP"), ("cross.map", "Cross mAP"), ("multi.map", "Multi mAP"),
                 ("multi.bias", "rank distance"))


def curve_row(step: int, summary: dict[str, Any], chosen: bool = False) -> dict[str, Any]:
    row: dict[str, Any] = {"step": step, "chosen": chosen}
    for path, _ in CURVE_METRICS:
        part, metric = path.split(".")
        row[path] = summary[part][metric]
    return row


def snapshot_rows(cell_dir: Path, preset: Preset, test: Any, log: Callable[[str], None]) -> list[dict[str, Any]]:
    """One row per snapshot (evaluated now or read back) plus the cell's chosen checkpoint, by step."""
    record = json.loads((cell_dir / "cell.json").read_text(encoding="utf-8"))
    rows = []
    for snap in sorted((cell_dir / "model" / "snapshots").glob("step-*"), key=lambda p: int(p.name[5:])):
        res_dir = cell_dir / "curve" / snap.name
        if not (res_dir / "eval.json").exists():
            log(f"[{cell_dir.name}] evaluating {snap.name} on {test.name} ...")
            model = load_model(str(snap), max_seq_length=preset.max_seq_length, device=preset.device)
            res = evaluate_lareqa(model, test, batch_size=preset.eval_batch_size, model_name=str(snap),
                                  encoder=resolve_encoder(record.get("encoder", preset.encoder), model))
            write_eval(res, res_dir)
        summary = json.loads((res_dir / "eval.json").read_text(encoding="utf-8"))["summary"]
        rows.append(curve_row(int(snap.name[5:]), summary))
    best = (record.get("train") or {}).get("best_step")
    if best is not None:
        rows = [r for r in rows if r["step"] != best] + [curve_row(best, record["xquad-r"], chosen=True)]
    return sorted(rows, key=lambda r: r["step"])


def curves_markdown(curves: dict[str, list[dict[str, Any]]]) -> str:
    head = ["cell", "step", *[name for _, name in CURVE_METRICS]]
    rows = [[key, f"{r['step']}{' (chosen)' if r['chosen'] else ''}",
             *[f"{r[p]:.1f}" if p.endswith("bias") else f"{r[p]:.3f}" for p, _ in CURVE_METRICS]]
            for key, rs in curves.items() for r in rs]
    return ("# Test-set learning curves (XQuAD-R, all 48 articles)\n\nEach cell's kept snapshots evaluated after "
            "training; '(chosen)' is the checkpoint the held-out rule kept. The test set never chose anything.\n\n"
            + markdown_table(head, rows))


# What `experiment curves` writes into a grid's --out (the accepted layout is the shared `grid_root.GRID_ROOT`)
CURVES_OUT = dataclasses.replace(GRID_ROOT, command="experiment curves",
                                 writes="cells/<key>/curve/, curves.json, curves.md, curves.png")


def test_curves(out_root: Path, preset: Preset, data_dir: str | None, groups: Sequence[str], seed: int, *,
                log: Callable[[str], None] = print) -> dict[str, Any]:
    """Evaluate the snapshots of `<group>-seed<seed>` for each group; write curves.{json,md,png} in `out_root` (a
    grid's folder: CURVES_OUT)."""
    check_grid_root(out_root, CURVES_OUT)
    cells = {g: Path(out_root) / "cells" / f"{g}-seed{seed}" for g in groups}
    missing = [str(d) for d in cells.values() if not (d / "cell.json").exists()]
    if missing:
        raise UsageError(f"unfinished cells (no cell.json): {', '.join(missing)}")
    test = load_corpus("xquad-r", data_dir, split=preset.test_split)
    curves = {d.name: snapshot_rows(d, preset, test, log) for d in cells.values()}
    body = {"kind": "test_curves", "metrics": dict(CURVE_METRICS), "curves": curves, "seed": seed,
            "provenance": provenance(model=preset.model, seed=seed, data={"name": "xquad-r", "checksum": test.checksum,
                                                                          "split": preset.test_split})}
    write_json(out_root / "curves.json", body)
    write_text(out_root / "curves.md", curves_markdown(curves))
    plot_panels(curves, CURVE_METRICS, out_root / "curves.png",
                title=f"XQuAD-R (all 48 articles) along training, seed {seed}; circle = checkpoint kept by the "
                      "held-out rule")
    return body


__all__ = ["CURVE_METRICS", "test_curves"]
