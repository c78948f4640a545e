"""Experiment drivers: sweeps, the paper grid and the demo, thin layers over the public API."""

from hybridbatch.experiments.grid import (  # noqa: F401
    BASE,
    LOSSES,
    OWN_SAMPLERS,
    PAPER_SAMPLERS,
    PRESETS,
    RESULT_FIELDS,
    SEED_CI_METRICS,
    SUMMARY_KEYS,
    Cell,
    Preset,
    aggregate,
    check_inputs,
    clean_models,
    demo,
    expand_grid,
    first_questions,
    grid_markdown,
    paper,
    run_cell,
    run_grid,
    seed_averaged_run,
    significance,
    significance_markdown,
    train_summary,
)
from hybridbatch.experiments.report import moved, report, shift_significance  # noqa: F401
