"""`hybridbatch align`: cross-lingual alignment of one or more models."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from hybridbatch.cli.base import DataDir, Device, app, console, out, progress_bars
from hybridbatch.data.parallel import ALIGN_SOURCES
from hybridbatch.experiments.alignment import ALIGN_OUT, run_align
from hybridbatch.models.embedded import DEFAULT_MODEL
from hybridbatch.outputs import check_out_folder


@app.command("align")
def align_cmd(
    model: Annotated[Optional[list[str]], typer.Option(
        "--model", "-m", help="Model to measure: `embedded`, a folder or a hub id. Give it twice (A then B) to "
        "compare two models, e.g. before and after fine-tuning; the report adds B - A.")] = None,
    data_dir: DataDir = None,
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Folder for align.json, align.md and plots/.")] = Path(
        "align-out"),
    source: Annotated[Optional[list[str]], typer.Option(
        "--source", "-s", help="Parallel data (repeatable): xquad-r-questions, xquad-r-answers, tatoeba. "
        "Default: all three.")] = None,
    limit: Annotated[Optional[int], typer.Option(
        "--limit", "-n", help="At most N items per language pair (the first N), for speed; at least 4.")] = None,
    split: Annotated[str, typer.Option(
        "--split", help="XQuAD-R articles to measure on: test (the 12 held-out articles, so that a model trained "
        "on the train articles is measured on texts it never saw), train, or all. Tatoeba has no split.")] = "test",
    batch_size: Annotated[int, typer.Option("--batch-size", help="Encoding batch size.")] = 32,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Show encoding progress.")] = True,
    device: Device = "auto",
) -> None:
    """Cross-lingual alignment per language pair: parallel cosine, CLSim, linear CKA (+ debiased), P@1."""
    check_out_folder(out_dir, ALIGN_OUT)
    with progress_bars(progress) as tick:
        paths = run_align(model or [DEFAULT_MODEL], data_dir=data_dir, out_dir=out_dir, sources=source or ALIGN_SOURCES,
                          limit=limit, batch_size=batch_size, progress=tick, split=split, device=device,
                          log=lambda msg: console.print(msg, highlight=False))
    out.print(f"wrote {paths['json']}, {paths['markdown']} and {sum(k.startswith('plot:') for k in paths)} "
              f"heatmaps in {Path(out_dir) / 'plots'}", highlight=False)
