"""Analysis: significance between runs (and over seeds), statistics over a grid's seeds, cross-lingual alignment and
post-hoc language debiasing. Computation and JSON only: the Markdown and plots are drawn by `report`. `__all__` names
what a user or a later stage needs; the helpers stay in the module named beside them."""

from hybridbatch.analysis.alignment import MEASURES, AlignResult, PairResult, measure_pair
from hybridbatch.analysis.alignment_run import align, align_models, write_align_json
from hybridbatch.analysis.alignment_vs_alpha import measure_sweep
from hybridbatch.analysis.centring import append_centring, centre_embeddings
from hybridbatch.analysis.debias import (
    DebiasResult,
    LanguageSubspace,
    debias_model,
    estimate_lir,
    estimate_lsar,
    remove_subspace,
)
from hybridbatch.analysis.debias_ranks import sweep
from hybridbatch.analysis.grid_stats import aggregate, moved
from hybridbatch.analysis.significance import (
    Run,
    compare,
    compare_seeded,
    load_run,
    paired_bootstrap,
    paired_permutation,
    write_compare,
)
from hybridbatch.data.parallel import ALIGN_SOURCES, ParallelSet, load_sources

__all__ = [
    "MEASURES", "AlignResult", "PairResult", "measure_pair", "align", "align_models", "write_align_json",
    "measure_sweep", "ALIGN_SOURCES", "ParallelSet", "load_sources",
    "DebiasResult", "LanguageSubspace", "debias_model", "estimate_lir", "estimate_lsar", "remove_subspace", "sweep",
    "centre_embeddings", "append_centring",
    "aggregate", "moved",
    "Run", "compare", "compare_seeded", "load_run", "paired_bootstrap", "paired_permutation", "write_compare",
]
