"""Report: Markdown tables and plots."""

from hybridbatch.report.tables import (  # noqa: F401
    beir_markdown,
    compare_markdown,
    lareqa_markdown,
    lareqa_row,
    markdown_table,
    plot_alpha,
    plot_pairs,
    plot_side_by_side,
    pyplot,
    save_figure,
)
