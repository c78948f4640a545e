"""Alignment runs end to end, as `hybridbatch align` and `experiment alignment-vs-alpha` do them: measure
(`analysis.alignment_run`, `analysis.alignment_vs_alpha`, which write the JSON) and draw (`report.alignment`: the
Markdown tables, heatmaps and the plot against alpha)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from hybridbatch.analysis.alignment import AlignResult
from hybridbatch.analysis.alignment_run import Progress, align_models, write_align_json
from hybridbatch.analysis.alignment_vs_alpha import DEFAULT_SOURCES, measure_sweep
from hybridbatch.data.parallel import ALIGN_SOURCES
from hybridbatch.provenance import write_text
from hybridbatch.outputs import OutFolder, check_out_folder
from hybridbatch.report.alignment import alignment_vs_alpha_markdown, plot_alignment_vs_alpha, write_align_report


# What `hybridbatch align` writes into its --out (`check_out_folder` refuses one holding anything else)
ALIGN_OUT = OutFolder("align", "an alignment", "align.json, align.md, plots/", ("align.json", "align.md", "plots/"))


def write_align(results: Sequence[AlignResult], out_dir: Path | str, annotate: bool = True) -> dict[str, Path]:
    """align.json (every number, provenance per model, B - A with two models), align.md and plots/*.png."""
    check_out_folder(out_dir, ALIGN_OUT)
    json_path = write_align_json(results, out_dir)
    return {"json": json_path, **write_align_report(results, out_dir, annotate)}


def run_align(models: Sequence[str], *, data_dir: Path | str | None, out_dir: Path | str,
              sources: Sequence[str] = ALIGN_SOURCES, limit: int | None = None, batch_size: int = 32,
              progress: Progress | None = None, log: Callable[[str], None] | None = None, split: str = "all",
              device: str | None = "auto") -> dict[str, Path]:
    """What `hybridbatch align` does: read the data once, align each model (one or two), write the report. `out_dir`
    must be new, empty or hold an alignment (ALIGN_OUT), checked before any work."""
    check_out_folder(out_dir, ALIGN_OUT)
    results = align_models(models, data_dir=data_dir, sources=sources, limit=limit, batch_size=batch_size,
                           progress=progress, log=log, split=split, device=device)
    return write_align(results, out_dir)


def alignment_vs_alpha(sweep: Path | str, out_dir: Path | str, *, data_dir: Path | str | None = None,
                       sources: Sequence[str] = DEFAULT_SOURCES, split: str = "test", limit: int | None = None,
                       batch_size: int = 32, max_seq_length: int | None = None, n_boot: int = 10000, seed: int = 0,
                       progress: Progress | None = None, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Measure every cell's model (`analysis.alignment_vs_alpha.measure_sweep`: alignment_vs_alpha.json and the per-cell
    results, resumable), then write OUT/alignment_vs_alpha.md and .png; the body gets the written paths."""
    body = measure_sweep(sweep, out_dir, data_dir=data_dir, sources=sources, split=split, limit=limit,
                         batch_size=batch_size, max_seq_length=max_seq_length, n_boot=n_boot, seed=seed,
                         progress=progress, log=log)
    out = Path(out_dir)
    paths = {"json": out / "alignment_vs_alpha.json",
             "md": write_text(out / "alignment_vs_alpha.md", alignment_vs_alpha_markdown(body)),
             "png": plot_alignment_vs_alpha(body["rows"], body["measures"], out / "alignment_vs_alpha.png")}
    body["paths"] = {k: str(v) for k, v in paths.items()}
    return body
