"""Experiment drivers: grids of cells, the paper's comparison, the demo, reports over finished cells, debiasing of
finished cells and alignment runs; thin layers over the library (analysis computes and writes the JSON, report draws
the Markdown and plots, these call both)."""

from hybridbatch.experiments.alignment import alignment_vs_alpha, run_align, write_align  # noqa: F401
from hybridbatch.experiments.cells import first_questions, run_cell, train_summary  # noqa: F401
from hybridbatch.experiments.debias_cells import (  # noqa: F401
    DEBIAS_DIR,
    debias_report,
    debias_sweep,
    run_debias_cells,
    write_versus,
)
from hybridbatch.experiments.grid import (  # noqa: F401
    OWN_SAMPLERS,
    PAPER_SAMPLERS,
    check_inputs,
    clean_models,
    demo,
    paper,
    run_grid,
    significance,
)
from hybridbatch.experiments.presets import (  # noqa: F401
    BASE,
    LOSSES,
    PRESETS,
    RESULT_FIELDS,
    Cell,
    Preset,
    check_stem,
    expand_grid,
    make_preset,
)
from hybridbatch.experiments.report import (  # noqa: F401
    SHIFT_ROWS,
    finished_records,
    report,
    seeds_by_group,
    shift_matrix,
    shift_significance,
)
