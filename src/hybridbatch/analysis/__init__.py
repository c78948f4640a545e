"""Analysis: significance between runs, cross-lingual alignment and post-hoc language debiasing."""

from hybridbatch.analysis.alignment import (  # noqa: F401
    MEASURE_TITLES,
    MEASURES,
    PIVOT,
    SOURCE_KIND,
    SOURCES,
    SPLITS,
    TATOEBA_FOLDER,
    AlignResult,
    PairResult,
    ParallelSet,
    align,
    clsim,
    linear_cka,
    linear_cka_debiased,
    load_sources,
    measure_pair,
    parallel_cosine,
    parallel_sets,
    run_align,
    translation_accuracy,
)
from hybridbatch.analysis.alignment_report import difference, heatmaps, markdown, pair_matrix, write_align  # noqa: F401
from hybridbatch.analysis.alignment_sweep import (  # noqa: F401
    SweepCell,
    alignment_vs_alpha,
    bootstrap_spearman,
    correlations,
    spearman,
    sweep_cells,
)
from hybridbatch.analysis.debias import (  # noqa: F401
    DEBIAS_JSON,
    SUBSPACE_NPZ,
    DebiasResult,
    LanguageSubspace,
    TextSource,
    append_projection,
    check_rank,
    debias_model,
    estimate_lir,
    estimate_lsar,
    projection_matrix,
    read_text_files,
    remove_subspace,
    training_sentences,
)
from hybridbatch.analysis.debias_sweep import (  # noqa: F401
    check_equivalence,
    parse_ranks,
    sweep,
    versus_trained,
    write_versus,
)
from hybridbatch.analysis.significance import (  # noqa: F401
    COMPARE_ROWS,
    Run,
    aligned,
    check_same,
    compare,
    load_run,
    macro,
    paired_bootstrap,
    paired_permutation,
    seed_bootstrap,
    write_compare,
)
