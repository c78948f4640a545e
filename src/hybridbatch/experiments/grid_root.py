"""What a grid's --out holds, for `outputs.check_out_folder`: one folder that `sweep`, `experiment paper`, `demo`,
`experiment pilot`, `curves`, `report` and `debias-cells` all write into (lanes and later reports share it), so each
of them accepts what any of them wrote there and refuses any other folder (a dataset's, a model's) before any work.

Each writer declares its own constant next to it (`grid.SWEEP_OUT`, `pilot.PILOT_OUT`, ...): GRID_ROOT with its own
command name and file list for the message. A new writer into the root adds its names or its result kind here.
"""

from __future__ import annotations

from pathlib import Path

from hybridbatch.outputs import OutFolder, check_out_folder

# cells/<key>/ (sweep, paper, demo; curves and debias-cells add to the cells), pilot/<key>/ (pilot), compare/ (demo);
# <name>.json / .md of sweep --name, report --name, significance*, pilot, pilot-partial, curves, debias-report, and
# the plots (alpha.png, <name>-alpha.png, base_vs_hybrid.png, pilot.png, pilot-partial.png, curves.png). Another
# command's results in a subfolder (results/zero-shot/lsar: eval and compare) are accepted by check_out_folder itself.
GRID_ROOT = OutFolder(
    "sweep", "a grid", "cells/, <name>.json, <name>.md, alpha.png",
    entries=("cells/", "pilot/", "compare/", "*.md", "*.png"),
    records=("*.json",),
    kinds=frozenset({"grid", "significance", "grid-report", "pilot", "pilot_partial", "test_curves",
                     "debias-cells"}),
)


def check_grid_root(out_root: Path | str, spec: OutFolder = GRID_ROOT) -> Path:
    """A grid's --out must be new, empty or a grid's folder (`spec`: GRID_ROOT with the writing command's name),
    never a dataset's or a model's. Checked unlocked: lanes share the root; each cell's training locks its own
    folder."""
    return check_out_folder(out_root, spec, lock=False)
