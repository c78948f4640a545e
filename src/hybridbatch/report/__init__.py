"""Report: the Markdown tables and plots of every result, drawn from the result objects or their JSON (so a report
can be rebuilt from its files); one number formatter (`report.format.fmt`). `__all__` names what a user or a later
stage needs; the helpers stay in the module named beside them."""

from hybridbatch.report.alignment import align_markdown, plot_alignment_vs_alpha, write_align_report
from hybridbatch.report.compare import compare_markdown, write_compare_markdown
from hybridbatch.report.curves import plot_curves, plot_panels, plot_train_json
from hybridbatch.report.debias import debias_markdown, sweep_markdown
from hybridbatch.report.evaluation import beir_markdown, eval_markdown, lareqa_markdown, plot_pairs, write_eval
from hybridbatch.report.format import fmt, markdown_table
from hybridbatch.report.grid import compact_markdown, grid_markdown, significance_markdown
from hybridbatch.report.plots import plot_alpha, plot_side_by_side, save_figure
from hybridbatch.report.shift import plot_shift, shift_markdown, write_shift

__all__ = [
    "align_markdown", "plot_alignment_vs_alpha", "write_align_report", "debias_markdown", "sweep_markdown",
    "beir_markdown", "eval_markdown", "lareqa_markdown", "plot_pairs", "write_eval", "fmt",
    "compact_markdown", "grid_markdown", "significance_markdown", "plot_shift", "shift_markdown", "write_shift",
    "compare_markdown", "markdown_table", "plot_alpha", "plot_side_by_side", "save_figure", "write_compare_markdown",
    "plot_curves", "plot_panels", "plot_train_json",
]
