"""The `hybridbatch` command line. Every command turns the project's own errors into one readable message and exit
status 2; tracebacks are for bugs only.

Shared objects (the app, its sub-apps, the consoles, common options) live here; each command group lives in
its own module (`data_cmd`, `model_cmd`, ...), registered on import by `hybridbatch.cli`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from hybridbatch.errors import HybridBatchError

app = typer.Typer(
    name="hybridbatch",
    help="Train multilingual dense retrievers with hybrid (X-X + X-Y) batches and evaluate them with the LAReQA "
    "protocol (mono / cross / multilingual mAP, recall, language bias).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)
data_app = typer.Typer(help="Get, check and describe datasets (XQuAD-R, MLQA-R, TyDi GoldP, your own JSONL).",
                       no_args_is_help=True)
app.add_typer(data_app, name="data")
model_app = typer.Typer(help="Build and inspect models (the embedded multilingual-e5-small default).",
                        no_args_is_help=True)
app.add_typer(model_app, name="model")

console = Console(stderr=True)
out = Console()

DataDir = Annotated[
    Optional[Path],
    typer.Option("--data-dir", help="Folder holding datasets (e.g. ../shared/data); default $HYBRIDBATCH_DATA, "
                 "then the user cache where `data download` puts them."),
]


def main() -> None:
    """Entry point: typer handles usage errors (exit 2); the project's own errors become one message and exit 2."""
    from hybridbatch.provenance import process_commit

    process_commit()  # pin the code's commit now: long jobs must not record a HEAD that moved while they ran
    try:
        app()
    except HybridBatchError as e:
        console.print(f"[bold red]error:[/] {e}", highlight=False, soft_wrap=True)
        sys.exit(e.exit_code)

