"""The `hybridbatch` command line (typer + rich), a thin layer over the public API.

Importing a command module registers its commands; the order below is the order `--help` lists them (the pipeline's).
The command line is the `cli` extra (`pip install 'hybridbatch[cli]'`): without typer and rich, `main` says so.
"""

import importlib.util
import sys

if importlib.util.find_spec("typer") is None or importlib.util.find_spec("rich") is None:  # a core install

    def main() -> None:
        """Without the `cli` extra: one line naming it, exit 2."""
        print("the hybridbatch command needs typer and rich, which are not installed: pip install "
              "'hybridbatch[cli]' (or 'hybridbatch[all]')", file=sys.stderr)
        sys.exit(2)

    __all__ = ["main"]
else:
    # isort: off
    from hybridbatch.cli import data_cmd, model_cmd, train_cmd, eval_cmd, shift_cmd, align_cmd  # noqa: F401
    from hybridbatch.cli import debias_cmd, experiment_cmd  # noqa: F401
    from hybridbatch.cli.base import app, main

    # isort: on

    __all__ = ["app", "main"]
