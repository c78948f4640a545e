"""The `hybridbatch` command line. Every command turns the project's own errors into one readable message and exit
status 2; tracebacks are for bugs only.

Shared objects (the app, its sub-apps, the consoles, common options) live here; each command group lives in
its own module (`data_cmd`, `model_cmd`, ...), registered on import by `hybridbatch.cli`."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.progress import Progress as RichProgress
from rich.text import Text

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

# soft_wrap: long lines (paths, markdown rows) stay whole when piped, so output stays greppable; tables still fit.
# markup=False: messages carry values such as `[embedded]`, `data[3]` or `[nan]` that rich would read as markup
# and drop; styles are given as `style=` or `Text` instead.
console = Console(stderr=True, soft_wrap=True, markup=False)
out = Console(soft_wrap=True, markup=False)

Device = Annotated[
    Optional[str],
    typer.Option("--device", help="Where to run: auto (a CUDA GPU, else Apple MPS, else the CPU), cpu, cuda[:N] or "
                 "mps."),
]
Precision = Annotated[
    Optional[str],
    typer.Option("--precision", help="Training precision: auto (bf16 on GPUs that support it, fp16 on older GPUs, "
                 "fp32 on the CPU), fp32, bf16 or fp16."),
]
QueryPrefix = Annotated[
    Optional[str],
    typer.Option("--query-prefix", help="Text put before every query (e.g. 'query: ' for E5). Default: the model's "
                 "own 'query' prompt, none if it has none. '' for none."),
]
PassagePrefix = Annotated[
    Optional[str],
    typer.Option("--passage-prefix", help="Text put before every passage (e.g. 'passage: ' for E5). Default: the "
                 "model's own 'document'/'passage' prompt, none if it has none. '' for none."),
]

DataDir = Annotated[
    Optional[Path],
    typer.Option("--data-dir", help="Folder holding datasets (e.g. ../shared/data); default $HYBRIDBATCH_DATA, "
                 "then the user cache where `data download` puts them."),
]


Progress = Callable[[str, int, int], None]  # the library's progress callback: (stage, done, total)


@contextlib.contextmanager
def progress_bars(enabled: bool = True) -> Iterator[Progress]:
    """A `progress(stage, done, total)` callback for the library's long functions, which report progress only through
    such a callback (they never build a bar): one bar per stage on stderr, cleared when done (nothing shown when
    `enabled` is false or stderr is not a terminal). A stage whose total changes gets the new total.

        with progress_bars(show) as progress:
            run_align(..., progress=progress)
    """
    with RichProgress(TextColumn("{task.description}", markup=False), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), TimeRemainingColumn(), console=console, disable=not enabled,
                      transient=True) as bar:
        tasks: dict[str, int] = {}

        def tick(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done, total=total)

        yield tick


def main() -> None:
    """Entry point: typer handles usage errors (exit 2); the project's own errors become one message and exit 2."""
    from hybridbatch.provenance import process_commit
    from hybridbatch.outputs import out_locks

    process_commit()  # pin the code's commit now: long jobs must not record a HEAD that moved while they ran
    try:
        with out_locks():  # one writer per output folder, held from its check until the command ends
            app()
    except HybridBatchError as e:
        console.print(Text.assemble(("error:", "bold red"), " ", str(e)), highlight=False, soft_wrap=True)
        sys.exit(e.exit_code)

