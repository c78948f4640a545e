"""Analysis: significance between runs (and over seeds), statistics over a grid's seeds, cross-lingual alignment and
post-hoc language debiasing. Computation and JSON only: the Markdown and plots are drawn by `report`."""

from hybridbatch.analysis.alignment import (  # noqa: F401
    MEASURE_TITLES,
    MEASURES,
    AlignResult,
    PairResult,
    clsim,
    difference,
    linear_cka,
    linear_cka_debiased,
    measure_pair,
    parallel_cosine,
    translation_accuracy,
)
from hybridbatch.analysis.alignment_run import align, align_json, align_models, write_align_json  # noqa: F401
from hybridbatch.analysis.alignment_sweep import (  # noqa: F401
    SweepCell,
    bootstrap_spearman,
    correlations,
    measure_sweep,
    spearman,
    sweep_cells,
)
from hybridbatch.analysis.centring import (  # noqa: F401
    append_centring,
    centre_corpus,
    centre_embeddings,
    nearest_language,
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
    project_corpus,
    sweep,
    versus_trained,
)
from hybridbatch.analysis.grid_stats import SHIFT_KEYS, SUMMARY_KEYS, aggregate, moved  # noqa: F401
from hybridbatch.analysis.parallel import (  # noqa: F401
    PIVOT,
    SOURCE_KIND,
    SOURCES,
    SPLITS,
    TATOEBA_FOLDER,
    ParallelSet,
    load_sources,
    parallel_sets,
)
from hybridbatch.analysis.significance import (  # noqa: F401
    COMPARE_ROWS,
    SEED_CI_METRICS,
    Run,
    aligned,
    check_same,
    compare,
    compare_seeded,
    load_run,
    macro,
    paired_bootstrap,
    paired_permutation,
    seed_averaged_run,
    seed_bootstrap,
    write_compare,
)
