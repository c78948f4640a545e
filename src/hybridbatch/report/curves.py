"""Learning curves: the checkpoint rule's held-out metric (and the training loss) against the step, for one run
(`learning_curve.png` beside its train.json) or several (a pilot's candidates, the samplers of a convergence grid,
test-set metrics at saved checkpoints). Drawn from train.json's `learning_curve` rows, so a plot can be rebuilt
from the files."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from hybridbatch.report.plots import pyplot, save_figure

METRIC_NAMES = {"eval_lareqa_multi_map": "held-out LAReQA Multi mAP", "eval_loss": "held-out loss"}


def metric_label(metric: str | None) -> str:
    return METRIC_NAMES.get(metric or "", metric or "held-out metric")


def plot_curves(curves: Mapping[str, Sequence[Mapping[str, Any]]], path: Path | str, *, title: str,
                ylabel: str, key: str = "value", marks: Mapping[str, int | None] | None = None) -> Path:
    """One line per run: `curves[label]` rows with `step` and `key`; `marks[label]` a step to circle (the chosen
    checkpoint). Rows without a value are skipped."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for label, rows in curves.items():
        pts = [(r["step"], r[key]) for r in rows if r.get(key) is not None]
        if not pts:
            continue
        line, = ax.plot(*zip(*pts), marker=".", label=label)
        best = (marks or {}).get(label)
        if best is not None and any(s == best for s, _ in pts):
            ax.plot([best], [dict(pts)[best]], "o", ms=10, mfc="none", color=line.get_color())
    ax.set_xlabel("optimizer step")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    if curves:
        ax.legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_panels(curves: Mapping[str, Sequence[Mapping[str, Any]]], metrics: Sequence[tuple[str, str]],
                path: Path | str, *, title: str) -> Path:
    """One panel per (key, name) metric, one line per run (`curves[label]` rows with `step`, the metric keys and
    `chosen`, the kept checkpoint, circled)."""
    plt = pyplot()
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.6 * len(metrics), 3.6), squeeze=False)
    for ax, (key, name) in zip(axes[0], metrics):
        for i, (label, rows) in enumerate(curves.items()):
            ax.plot([r["step"] for r in rows], [r[key] for r in rows], marker=".", color=f"C{i}", label=label)
            ax.plot([r["step"] for r in rows if r.get("chosen")], [r[key] for r in rows if r.get("chosen")], "o",
                    ms=10, mfc="none", color=f"C{i}")
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("optimizer step")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_train_json(train_json: Path | str, path: Path | str | None = None) -> Path | None:
    """`learning_curve.png` beside a run's train.json: the held-out metric and the training loss (second axis),
    the chosen checkpoint circled, why it stopped in the title. None when the run had no held-out evaluation."""
    train_json = Path(train_json)
    tj = json.loads(train_json.read_text(encoding="utf-8"))
    rows = tj.get("learning_curve") or []
    if not rows:
        return None
    metric = (tj.get("selection") or {}).get("metric")
    stop = tj.get("stop") or {}
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.2))
    steps = [r["step"] for r in rows]
    ax.plot(steps, [r["value"] for r in rows], marker=".", color="C0", label=metric_label(metric))
    best = tj.get("best_step")
    if best in steps:
        ax.plot([best], [rows[steps.index(best)]["value"]], "o", ms=10, mfc="none", color="C0",
                label=f"chosen checkpoint (step {best})")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel(metric_label(metric), color="C0")
    losses = [(r["step"], r["train_loss"]) for r in rows if r.get("train_loss") is not None]
    if losses:
        ax2 = ax.twinx()
        ax2.plot(*zip(*losses), color="C1", alpha=0.7, label="training loss (mean since last evaluation)")
        ax2.set_ylabel("training loss", color="C1")
    settings = tj.get("settings") or {}
    ax.set_title(f"{Path(str(tj.get('model', ''))).name or 'model'}: {settings.get('sampler', '?')} sampler, "
                 f"lr {settings.get('lr')}, batch {settings.get('batch_size')}, seed {tj.get('seed')}\n"
                 f"stopped at step {stop.get('step', tj.get('steps'))} ({stop.get('reason', '?')})", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return save_figure(fig, path or train_json.with_name("learning_curve.png"))


__all__ = ["metric_label", "plot_curves", "plot_panels", "plot_train_json"]
