"""The `hybridbatch` command line (typer + rich), a thin layer over the public API.

Importing a command module registers its commands; the order below is the order `--help` lists them (the pipeline's).
"""

# isort: off
from hybridbatch.cli import data_cmd, model_cmd, train_cmd, eval_cmd, shift_cmd, align_cmd, debias_cmd  # noqa: F401
from hybridbatch.cli import experiment_cmd  # noqa: F401
from hybridbatch.cli.base import app, main

# isort: on

__all__ = ["app", "main"]
