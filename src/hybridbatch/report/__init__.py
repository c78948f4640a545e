"""Report: the Markdown tables and plots of every result, drawn from the result objects or their JSON (so a report
can be rebuilt from its files); one number formatter (`report.format.fmt`)."""

from hybridbatch.report.alignment import (  # noqa: F401
    align_markdown,
    alignment_vs_alpha_markdown,
    heatmaps,
    pair_matrix,
    plot_alignment_vs_alpha,
    write_align_report,
)
from hybridbatch.report.debias import debias_markdown, sweep_markdown  # noqa: F401
from hybridbatch.report.evaluation import (  # noqa: F401
    beir_markdown,
    eval_markdown,
    lareqa_markdown,
    lareqa_row,
    plot_pairs,
    write_eval,
)
from hybridbatch.report.format import finite, fmt  # noqa: F401
from hybridbatch.report.grid import (  # noqa: F401
    SHIFT_TITLES,
    compact_markdown,
    grid_markdown,
    moved_markdown,
    same_run_lines,
    shift_significance_markdown,
    significance_markdown,
)
from hybridbatch.report.shift import plot_shift, shift_markdown, write_shift  # noqa: F401
from hybridbatch.report.tables import (  # noqa: F401
    compare_markdown,
    markdown_table,
    plot_alpha,
    plot_side_by_side,
    pyplot,
    save_figure,
    write_compare_markdown,
)
