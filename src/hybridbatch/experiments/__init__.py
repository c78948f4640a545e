"""Experiment drivers: grids of cells, the paper's comparison, the demo, reports over finished cells, debiasing of
finished cells and alignment runs; thin layers over the library (analysis computes and writes the JSON, report draws
the Markdown and plots, these call both). `__all__` names what a user needs."""

from hybridbatch.experiments.alignment import alignment_vs_alpha, run_align, write_align
from hybridbatch.experiments.cells import run_cell
from hybridbatch.experiments.debias_cells import debias_report, debias_sweep, run_debias_cells, write_versus
from hybridbatch.experiments.grid import demo, paper, run_grid, significance
from hybridbatch.experiments.convergence import test_curves
from hybridbatch.experiments.grid_report import report
from hybridbatch.experiments.pilot import run_pilot
from hybridbatch.experiments.presets import PRESETS, Cell, Preset, expand_grid, make_preset
from hybridbatch.experiments.recipes import RECIPES, recipe_settings
from hybridbatch.experiments.training import train

__all__ = [
    "alignment_vs_alpha", "run_align", "write_align", "run_cell", "debias_report", "debias_sweep",
    "run_debias_cells", "write_versus", "demo", "paper", "run_grid", "significance",
    "PRESETS", "RECIPES", "recipe_settings", "Cell", "Preset", "expand_grid", "make_preset", "report", "train",
    "run_pilot", "test_curves",
]
